"""Components a user names by `_target_` in the config, Hydra's convention: the dotted path
is imported (from any folder on PYTHONPATH, ours or the user's) and called with the entry's
other keys as arguments. Whatever goes wrong is one line naming the config key, e.g.
"data.clean.rules[0]._target_ = 'x.Y': module x not found", not Hydra's traceback."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate

from pipelines.errors import PipelineError

TARGET = "_target_"


def resolve_target(key: str, target: object) -> Any:
    """The object `target` ("package.module.Name") names; `key` is the entry's config key."""
    where = f"{key}.{TARGET} = {target!r}"
    if not isinstance(target, str) or "." not in target.strip("."):
        raise PipelineError(f"{where}: expected a dotted path such as 'my_rules.DropShortRows'")
    module_name, _, attribute = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or module_name
        if module_name == missing or module_name.startswith(f"{missing}."):
            raise PipelineError(
                f"{where}: module {missing} not found (is its folder on PYTHONPATH?)"
            ) from None
        raise PipelineError(f"{where}: importing {module_name} failed: {err}") from None
    except Exception as err:  # the user's module raised while importing
        raise PipelineError(
            f"{where}: importing {module_name} failed: {type(err).__name__}: {err}"
        ) from None
    if not hasattr(module, attribute):
        raise PipelineError(f"{where}: module {module_name} has no attribute {attribute!r}")
    return getattr(module, attribute)


def build(key: str, entry: object) -> Any:
    """`entry` ({_target_: ..., arguments}) built with hydra.utils.instantiate, after the
    target is resolved here so that a wrong path fails in one line."""
    if not isinstance(entry, Mapping) or TARGET not in entry:
        raise PipelineError(
            f"{key} = {entry!r}: expected a mapping with {TARGET} (a dotted class path) and "
            "the class's arguments"
        )
    target = entry[TARGET]
    resolve_target(key, target)
    try:
        return instantiate(dict(entry), _convert_="all")
    except Exception as err:
        cause = err.__cause__ or err  # Hydra wraps the constructor's own error
        reason = str(cause).splitlines()[0] if str(cause) else ""
        raise PipelineError(
            f"{key}: building {target} failed: {type(cause).__name__}: {reason}"
        ) from None
