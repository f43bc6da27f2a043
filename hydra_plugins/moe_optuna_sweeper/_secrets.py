"""A storage DSN's password (`hydra.sweeper.storage=postgresql://user:PASSWORD@host/db`) stays
in the sweeper's memory and the trials' process environment, never in what a sweep writes:
Hydra saves the sweep's overrides and config in every job's `.hydra/` folder, so the sweeper
rewrites them with the password masked (SQLAlchemy's own `***`) before any job is composed,
and its log lines name the storage masked too. So is the command line in `sys.argv`, which
others record as they find it (W&B keeps a run's `args` in its run files: a leak
tests/test_no_secrets.py found)."""

from __future__ import annotations

import sys

from omegaconf import DictConfig, open_dict, read_write

STORAGE_KEY = "hydra.sweeper.storage"


def hide_password(url: str) -> str:
    """The URL with its password as `***`; anything SQLAlchemy does not parse as a URL with a
    password is returned as it is."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def _masked_override(override: str) -> str:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_override(override)
    except HydraException:  # not an override (an option such as --config-dir)
        return override
    value = parsed.value()
    if parsed.key_or_group != STORAGE_KEY or not isinstance(value, str):
        return override
    masked = hide_password(value)
    if masked == value:
        return override
    prefix = override[: len(override) - len(override.lstrip("+~"))]
    quoted = "'" + masked.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return f"{prefix}{STORAGE_KEY}={quoted}"


def mask_storage_in_config(config: DictConfig) -> None:
    """Mask the password in `hydra.sweeper.storage` and in the command line's hydra overrides
    that set it: the launcher composes each job (and Hydra saves its hydra.yaml) from these."""
    with read_write(config), open_dict(config):
        overrides = config.hydra.overrides.hydra
        for i, override in enumerate(list(overrides)):
            overrides[i] = _masked_override(override)
        storage = config.hydra.sweeper.get("storage")
        if isinstance(storage, str) and hide_password(storage) != storage:
            config.hydra.sweeper.storage = hide_password(storage)


def mask_storage_in_argv() -> None:
    """The same in this process's command line, for whatever reads `sys.argv` later (the
    jobs run in this process or are started from it)."""
    sys.argv[1:] = [_masked_override(arg) if STORAGE_KEY in arg else arg for arg in sys.argv[1:]]
