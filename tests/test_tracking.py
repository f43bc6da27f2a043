"""W&B needs no account by default and goes online only when the user gives it a key."""

from __future__ import annotations

import pytest

from pipelines.tracking import wandb_mode


@pytest.fixture
def no_wandb_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    return monkeypatch


def test_auto_is_offline_without_a_key(no_wandb_env: pytest.MonkeyPatch) -> None:
    assert wandb_mode("auto") == "offline"


def test_auto_goes_online_when_a_key_is_set(no_wandb_env: pytest.MonkeyPatch) -> None:
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"


def test_wandb_mode_in_the_environment_wins_over_auto(no_wandb_env: pytest.MonkeyPatch) -> None:
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    no_wandb_env.setenv("WANDB_MODE", "offline")
    assert wandb_mode("auto") == "offline"


@pytest.mark.parametrize("mode", ["offline", "online", "disabled"])
def test_an_explicit_mode_is_kept(no_wandb_env: pytest.MonkeyPatch, mode: str) -> None:
    no_wandb_env.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode(mode) == mode
