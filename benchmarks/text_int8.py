"""INT8 speed and size of the text Transformer against ONNX Runtime FP32 of the same model,
and where the time goes.

    python benchmarks/text_int8.py [--hidden 64 256] [--batches 32 128] [--repeats 30] [--record]

For each width: the customer_service MoE Transformer (2 blocks, 4 heads, 4 experts, top-2,
FFN 2x the width) over a BPE tokenizer trained on simulated tickets, exported and quantized
exactly as the quantize stage does (pipelines.modalities.text.onnx_variants.export_text_variants).
Its
weights are untrained: latency depends on shapes, not on values (MoE routing of random gates
spreads tokens about evenly, as a trained load-balanced gate does). Inputs are real ticket
lengths: 512 simulated tickets, each batch cut to its longest text.

Latency: every variant in the same process, timed round-robin (pipelines.evaluation.
interleaved_latency), same threads. Where the time goes: ONNX Runtime's profiler, total node
time per operator type, for FP32 and INT8 dynamic at the first batch size. Goal (GOALS.md):
INT8 >= 2.0x ONNX Runtime FP32 at batch 32-256, size <= 30%, quality >= 99.5% (quality is the
evaluate stage's figure: README).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from int8_table import int8_arguments, print_speedups, variant_rows
from ort_profile import operator_profile
from results_file import write_results

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines.core.onnx_variants import PROBABILITIES  # noqa: E402
from pipelines.io import quiet_datasets  # noqa: E402
from pipelines.modalities.text.onnx_variants import export_text_variants, text_feed  # noqa: E402
from pipelines.modalities.text.simulator import NO_DIRT, simulate_tickets  # noqa: E402
from pipelines.modalities.text.tokenizer import PAD, TokenizerConfig, encode, train_tokenizer  # noqa: E402
from pipelines.models.text import TextClassifier  # noqa: E402
from pipelines.schema.compression import QuantizeConfig  # noqa: E402
from pipelines.schema.model import ModelConfig  # noqa: E402

MAX_LENGTH = 96
GOAL_SPEEDUP, GOAL_SIZE = 2.0, 0.30


def build_model(hidden: int, vocab_size: int, n_classes: int, pad_id: int) -> TextClassifier:
    cfg = ModelConfig(
        name="moe_transformer",
        hidden_dim=hidden,
        num_blocks=2,
        num_heads=4,
        ffn_dim=2 * hidden,
        num_experts=4,
        top_k=2,
        seq_len=MAX_LENGTH,
        dropout=0.0,
    )
    torch.manual_seed(0)
    return TextClassifier(vocab_size, n_classes, pad_id, cfg).eval()


def op_profile(path: Path, ids: np.ndarray, pad_id: int, threads: int, runs: int) -> dict:
    """Share of total node time per operator type (ONNX Runtime's profiler)."""
    return operator_profile(path, text_feed(pad_id)(ids), PROBABILITIES, threads, runs)


def measure(hidden: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    quiet_datasets()
    tickets = simulate_tickets(4000, seed=0, dirt=NO_DIRT)
    texts, labels = tickets["text"][:], tickets["label"][:]
    settings = TokenizerConfig(vocab_size=4000, max_length=MAX_LENGTH)
    tokenizer = train_tokenizer(texts[:3000], settings)
    pad_id = tokenizer.token_to_id(PAD)
    ids, _ = encode(tokenizer, texts[3000:3512])
    model = build_model(hidden, tokenizer.get_vocab_size(), len(set(labels)), pad_id)
    folder = work / f"hidden{hidden}"
    paths = export_text_variants(model, folder, ids, pad_id, QuantizeConfig())
    result: dict[str, Any] = {"parameters": sum(p.numel() for p in model.parameters())}
    feed = text_feed(pad_id)
    result.update(variant_rows(paths, feed, ids, args.batches, args.repeats, args.threads))
    first = ids[: args.batches[0]]
    result["profile"] = {
        name: op_profile(paths[name], first, pad_id, args.threads, args.repeats)
        for name in ("fp32", "int8_dynamic")
    }
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = int8_arguments(__doc__.splitlines()[0], [32, 128])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        widths = {str(h): measure(h, args, Path(tmp)) for h in args.hidden}
    results = {
        "command": "python benchmarks/text_int8.py " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "goal": {"speedup_vs_onnx_fp32": GOAL_SPEEDUP, "size_vs_fp32": GOAL_SIZE},
        "widths": widths,
    }
    print_speedups(widths, ("int8_dynamic", "int8_static"), args.batches)
    write_results("text_int8", results, args.record)
    return results


if __name__ == "__main__":
    main()
