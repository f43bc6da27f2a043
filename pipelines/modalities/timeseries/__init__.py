"""Sensor time-series modality: multichannel series sampled at a declared rate (a seeded
machine-signal simulator, UEA/UCR sets the aeon package ships, long-format CSV/Parquet and .ts
files), cleaned per series, cut into windows for an InceptionTime-like 1-D CNN with MoE
blocks (docs/tutorials/sensor-series.md)."""

# what one row of this modality's evaluate report is called
ROWS = "windows"
# what the latency figures of its evaluate report take as input
LATENCY_INPUTS = (
    "normalised windows in (MiniRocket and catch22 timings include their transforms; "
    "normalising is timed as normalise_only in outputs/latency/latency.json)"
)
