"""Where every artifact lives, relative to a root: the repo for `dvc repro`, a Hydra run
directory for `train.py`. dvc.yaml declares the same paths; a test keeps the two equal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")

    def _p(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    # ingest
    @property
    def ingested(self) -> Path:
        return self._p("data", "ingested")

    # profile
    @property
    def profile_report(self) -> Path:
        return self._p("reports", "profile")

    @property
    def profile_metrics(self) -> Path:
        return self._p("metrics", "profile.json")

    @property
    def profile_diagnosis(self) -> Path:
        """A failed gate's report: kept for diagnosis outside DVC's outputs, so nothing is
        cached for a failed gate."""
        return self._p("outputs", "profile-failed")

    # clean
    @property
    def cleaned(self) -> Path:
        return self._p("data", "clean")

    @property
    def quarantine(self) -> Path:
        return self._p("data", "quarantine.parquet")

    @property
    def clean_metrics(self) -> Path:
        return self._p("metrics", "clean.json")

    # augment
    @property
    def augmented_train(self) -> Path:
        return self._p("data", "augmented", "train.arrow")

    @property
    def augment_metrics(self) -> Path:
        return self._p("metrics", "augment.json")

    @property
    def data_stage_outputs(self) -> list[Path]:
        """Everything ingest, profile, clean and augment write (what a sweep caches)."""
        return [
            self.ingested,
            self.profile_report,
            self.profile_metrics,
            self.cleaned,
            self.quarantine,
            self.clean_metrics,
            self.augmented_train,
            self.augment_metrics,
        ]

    # train
    @property
    def checkpoint(self) -> Path:
        return self._p("models", "model.ckpt")

    @property
    def train_metrics(self) -> Path:
        return self._p("metrics", "train.json")

    @property
    def train_history(self) -> Path:
        return self._p("plots", "train_history.csv")

    @property
    def train_work(self) -> Path:
        """Lightning's own logs and last-epoch checkpoints: not a DVC output."""
        return self._p("outputs", "train")

    # quantize
    @property
    def onnx_dir(self) -> Path:
        return self._p("models", "onnx")

    @property
    def quantize_metrics(self) -> Path:
        return self._p("metrics", "quantize.json")

    # evaluate
    @property
    def evaluate_metrics(self) -> Path:
        return self._p("metrics", "evaluate.json")

    @property
    def baselines_onnx_dir(self) -> Path:
        """The scikit-learn baselines as ONNX graphs with the model's interface
        (model_sklearn_<kind>.onnx): export candidates like the model's variants."""
        return self._p("models", "baselines")

    @property
    def headline_metrics(self) -> Path:
        """The few numbers `dvc metrics diff` and `dvc exp show` compare runs by."""
        return self._p("metrics", "headline.json")

    @property
    def roc_curves(self) -> Path:
        """One CSV per variant (DVC plots)."""
        return self._p("plots", "roc")

    @property
    def pr_curves(self) -> Path:
        return self._p("plots", "pr")

    @property
    def evaluate_report(self) -> Path:
        return self._p("reports", "evaluate")

    @property
    def latency_report(self) -> Path:
        """Latency and throughput per variant: measured, so different every run; kept out of
        DVC's outputs (a changing hash would rewrite dvc.lock on every `dvc repro`)."""
        return self._p("outputs", "latency")

    # export
    @property
    def export_dir(self) -> Path:
        return self._p("export")

    @property
    def staging(self) -> Path:
        return self._p(".staging")

    def split(self, directory: Path, name: str) -> Path:
        """One memory-mapped Arrow file per split (see pipelines/io.py for why)."""
        return directory / f"{name}.arrow"

    @property
    def schema_file(self) -> Path:
        return self.ingested / "schema.json"

    @property
    def features_file(self) -> Path:
        return self.cleaned / "features.json"
