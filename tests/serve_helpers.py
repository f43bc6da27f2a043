"""Shared by the serving tests: a small export folder built by the real stages, and a real
server (uvicorn on a free port) on a thread of the test process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from pipelines.io import read_columns
from pipelines.serve.app import ServerState
from pipelines.serve.config import load_serve_config
from pipelines.serve.runner import build_server


@dataclass
class Export:
    root: Path  # holds both export folders: the admin API's serve.admin.export_root
    folder: Path  # model.onnx, model_card.json, reference_profile.json
    other: Path  # the same model quantized (different scores, another version): reload target
    features: list[str]
    train: np.ndarray  # clean train split rows, the drift reference's population
    test: np.ndarray


def build_export(root: Path) -> Export:
    """Run every stage on small data into `root`, as tests/test_stages.py does, and derive a
    second export folder holding the static INT8 variant of the same model (static: fixed
    activation scales, so a row's score does not depend on its batch-mates, which dynamic
    INT8's per-batch activation ranges make it do)."""
    from pipelines.config import load_params
    from pipelines.layout import Layout
    from stages import augment, clean, evaluate, export, ingest, profile, quantize, train
    from tests.small import small_params

    # one epoch: the server tests need a real exported model, not a good one
    cfg = load_params(small_params(root / "params.yaml", ["trainer.max_epochs=1"]))
    layout = Layout(root / "run")
    for stage in (ingest, profile, clean, augment, train, quantize, evaluate, export):
        stage.run(cfg, layout)
    other = root / "export_int8"
    shutil.copytree(layout.export_dir, other)
    shutil.copyfile(layout.onnx_dir / "model_int8_static.onnx", other / "model.onnx")
    card = json.loads((other / "model_card.json").read_text())
    card["sha256"]["model.onnx"] = hashlib.sha256((other / "model.onnx").read_bytes()).hexdigest()
    card["variant"], card["version"] = "int8_static", "reloaded-int8"
    (other / "model_card.json").write_text(json.dumps(card))
    features = card["inputs"]["features"]

    def rows(split: str) -> np.ndarray:
        table = read_columns(layout.split(layout.cleaned, split), features)
        return np.column_stack([table.column(f).to_numpy() for f in features]).astype(np.float32)

    return Export(root, layout.export_dir, other, features, rows("train"), rows("test"))


def admin_overrides(folder: Path, export_root: Path | None = None) -> list[str]:
    """Server overrides that switch the admin API on: a token in a file under `folder` (the
    token is `ADMIN_TOKEN`), reloads allowed under `export_root`."""
    token_file = folder / "admin.token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    root = [f"serve.admin.export_root={export_root}"] if export_root else []
    return [f"serve.admin.token_file={token_file}", *root]


ADMIN_TOKEN = "admin-token-for-tests-7f3a9c2e51"
BEARER = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def as_rows(x: np.ndarray, features: list[str]) -> list[dict[str, float]]:
    return [dict(zip(features, map(float, row), strict=True)) for row in x]


@dataclass
class Running:
    url: str
    state: ServerState


@contextlib.contextmanager
def running_server(export_dir: Path, *overrides: str) -> Iterator[Running]:
    """A real uvicorn server on a free port, on a thread; stopped (gracefully) on exit."""
    cfg = load_serve_config(
        overrides=[f"serve.export_dir={export_dir}", "serve.port=0", "serve.warmup_rounds=1",
                   *overrides]
    )  # fmt: skip
    ready = threading.Event()
    server, sock, state = build_server(cfg, on_ready=lambda _: ready.set())
    state.on_fatal = lambda message: (ready.set(), setattr(server, "should_exit", True))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not ready.wait(60) or not state.ready:
            raise RuntimeError(f"server did not become ready: {state.load_error}")
        yield Running(state.url, state)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


TABLE_FEATURES = ["age", "amount", "hour"]
TABLE_CLASSES = ["low", "medium", "high", "fraud"]


def multiclass_table_folder(
    folder: Path,
    seed: int = 0,
    version: str | None = None,
    sharpness: float = 1.0,
    binary: bool = False,
    test_metrics: dict[str, float] | None = None,
) -> tuple[list[str], list[str]]:
    """A three-feature, four-class table model (linear + softmax, weights from `seed`) as an
    export folder in a second: the tabular card's features, labels.json naming the classes;
    `binary`: one sigmoid probability instead (no labels.json, a label_map in the card).
    The release tests serve two of them side by side; `sharpness` scales the weights (a
    sharper model is more confident: its scores move away from the others')."""
    import torch

    torch.manual_seed(seed)
    head = (torch.nn.Linear(3, 1), torch.nn.Sigmoid()) if binary else (
        torch.nn.Linear(3, 4), torch.nn.Softmax(dim=1))  # fmt: skip
    model = torch.nn.Sequential(*head).eval()
    with torch.no_grad():
        model[0].weight.mul_(sharpness)
    folder.mkdir(parents=True)
    torch.onnx.export(
        model,
        (torch.zeros(1, 3),),
        str(folder / "model.onnx"),
        input_names=["features"],
        output_names=["probabilities"],
        dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}},
        dynamo=False,
    )
    card = {
        "model": "linear",
        "version": version or f"linear-seed{seed}",
        "inputs": {"features": TABLE_FEATURES, "shape": ["batch", 3]},
        "test_metrics": test_metrics or {},
    }
    if binary:
        card["label_map"] = {"1": "fraud", "0": "legit"}
    else:
        (folder / "labels.json").write_text(json.dumps({"labels": TABLE_CLASSES}))
    (folder / "model_card.json").write_text(json.dumps(card))
    return TABLE_FEATURES, ["legit", "fraud"] if binary else TABLE_CLASSES


def post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    """POST each body to /predict at once (concurrent requests, so they can share batches)."""

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(client.post(f"{url}/predict", json=b) for b in bodies))

    return asyncio.run(send())
