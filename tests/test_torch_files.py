"""No pickle from outside runs code: a checkpoint folder whose DeepSpeed expert file holds a
pickle that would write a marker file is refused in one line naming the file, and the marker
never appears; DeepSpeed's and Lightning's own readers are made weights-only the same way."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from pipelines.errors import PipelineError
from pipelines.torch_files import load_weights, weights_only_loads
from pipelines.training import _best_state_dict, read_checkpoint


class WritesMarker:
    """Unpickling this runs `exec`, which writes `marker`: what a hostile checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('ran')",))


def hostile_moe_checkpoint(root: Path, marker: Path) -> Path:
    """A DeepSpeed MoE checkpoint folder as the train stage finds it (tag "checkpoint"): the
    module's state, one clean expert file and one whose payload runs code."""
    folder = root / "best.ckpt"
    tag = folder / "checkpoint"
    tag.mkdir(parents=True)
    torch.save({"module": {"model.head.weight": torch.ones(2)}}, tag / "mp_rank_00_model_states.pt")
    clean = {"model.blocks.0.moe.deepspeed_moe.experts.deepspeed_experts.0.0.weight": torch.ones(3)}
    torch.save(clean, tag / "layer_0_expert_0_mp_rank_00_model_states.pt")
    hostile = dict(clean, payload=WritesMarker(marker))
    torch.save(hostile, tag / "layer_0_expert_1_mp_rank_00_model_states.pt")
    return folder


def test_the_hostile_expert_file_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The control: the file below is refused for what it is, not for being unreadable."""
    marker = tmp_path / "marker"
    folder = hostile_moe_checkpoint(tmp_path, marker)
    expert = folder / "checkpoint" / "layer_0_expert_1_mp_rank_00_model_states.pt"
    torch.load(expert, weights_only=False)
    assert marker.read_text() == "ran"


def test_an_moe_checkpoint_with_a_code_running_expert_file_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    folder = hostile_moe_checkpoint(tmp_path, marker)
    with pytest.raises(PipelineError) as err:
        _best_state_dict(folder, tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"{folder / 'checkpoint' / 'layer_0_expert_1_mp_rank_00_model_states.pt'}: refused to load"
    )
    assert "the Python object exec" in message
    assert not marker.exists()


def test_the_train_stages_checkpoint_is_read_weights_only(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "model.ckpt"
    torch.save({"format": 1, "state_dict": {}, "extra": WritesMarker(marker)}, path)
    with pytest.raises(PipelineError, match=r"model.ckpt: refused to load: .* object exec"):
        read_checkpoint(path, "tabular")
    assert not marker.exists()


def test_a_truncated_torch_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    torch.save({"w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(PipelineError, match=r"cut.pt: not a readable torch file"):
        load_weights(path)


def test_third_party_loads_that_ask_for_full_pickle_get_weights_only_inside_the_guard(
    tmp_path: Path,
) -> None:
    """DeepSpeed's zero_to_fp32 and Lightning's converter call torch.load(weights_only=False);
    inside weights_only_loads() that call refuses code and still reads DeepSpeed's own types."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum

    marker = tmp_path / "marker"
    hostile, optim = tmp_path / "hostile.pt", tmp_path / "optim.pt"
    torch.save({"payload": WritesMarker(marker)}, hostile)
    torch.save({"loss_scaler": LossScaler(scale=128.0), "zero_stage": ZeroStageEnum(2)}, optim)
    with weights_only_loads():
        with pytest.raises(pickle.UnpicklingError):
            torch.load(hostile, weights_only=False)
        state = torch.load(optim, weights_only=False)
    assert not marker.exists()
    assert state["loss_scaler"].cur_scale == 128.0 and state["zero_stage"] == ZeroStageEnum(2)
