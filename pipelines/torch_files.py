"""Reading torch files back without letting them run code.

A `.pt`/`.ckpt` file is a pickle: loaded with `weights_only=False`, a file from someone else
runs whatever its `__reduce__` names. Everything the pipeline reads back goes through
`torch.load(weights_only=True)`, which rebuilds tensors and plain data only and refuses any
other global. DeepSpeed's optimizer-state files hold three small data types of DeepSpeed's
(checked on the ZeRO 1/2/3 checkpoints of tests/test_strategies.py); those, and nothing else,
are allowed where DeepSpeed's own readers load its files.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import PipelineError


def deepspeed_safe_globals() -> list[Any]:
    """The non-tensor types in DeepSpeed's `*_optim_states.pt`: the fp16 loss scaler (a few
    numbers), the ZeRO stage (an int enum) and a parameter fragment's address (two ints).
    Rebuilding them runs their constructors with plain values; nothing a file names."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, ZeroStageEnum, fragment_address]


def refused(path: Path, err: pickle.UnpicklingError) -> PipelineError:
    named = re.search(r"GLOBAL ([\w.]+)", str(err))
    what = f"the Python object {named.group(1)}" if named else "Python objects"
    return PipelineError(
        f"{path}: refused to load: it holds {what} beyond tensors and plain data, which could "
        "run code (torch.load weights_only=True); use checkpoints the train stage wrote"
    )


def load_weights(path: Path) -> Any:
    """A torch file's tensors and plain data; a pickle that names anything else (code) is
    refused in one line naming the file, before any of it runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise refused(path, err) from None
    except (RuntimeError, EOFError) as err:  # torch's reader on a truncated or foreign file
        reason = " ".join(str(err).split())[:200]
        raise PipelineError(f"{path}: not a readable torch file: {reason}") from None


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Every `torch.load` inside, third-party ones that pass weights_only=False included
    (DeepSpeed's zero_to_fp32, Lightning's converter), loads weights only, with DeepSpeed's
    data types allowed. Sets an environment variable torch reads per call: use it around
    single-threaded work only (the end of the train stage)."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        with torch.serialization.safe_globals(deepspeed_safe_globals()):
            yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous
