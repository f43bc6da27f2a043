"""Turn a /predict body into the model's float32 matrix, or one line saying what is wrong
and with which field. Nothing here raises anything but BadRequest."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


class BadRequest(Exception):
    """A client error: `status` is the HTTP code, `kind` the errors metric label, the message
    the one line the client reads."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


def _reject_constant(token: str) -> float:
    # Python's json accepts NaN and Infinity, which are not JSON; name them as such
    raise ValueError(f"{token} is not valid JSON (send finite numbers)")


def parse_json(body: bytes) -> Any:
    if not body:
        raise BadRequest(400, "not_json", 'empty body: expected JSON such as {"rows": [{...}]}')
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest(400, "not_json", "body is not UTF-8 JSON") from None
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise BadRequest(400, "not_json", f"body is not valid JSON: {err.msg} at {where}") from None
    except (ValueError, RecursionError) as err:
        raise BadRequest(400, "not_json", f"body is not valid JSON: {err}") from None


def describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return f"{type(value).__name__} {text[:40]}"


def listed(payload: Any, field: str, example: str, unit: str, max_rows: int) -> list[Any]:
    """The list under `field` of a JSON object body (rows, texts, images), 1 to `max_rows`
    items long."""
    if not isinstance(payload, dict) or field not in payload:
        raise BadRequest(422, "missing_field", f"field '{field}': missing; expected {example}")
    items = payload[field]
    if not isinstance(items, list):
        raise BadRequest(
            422, "wrong_type", f"field '{field}': expected a list, got {describe(items)}"
        )
    check_count(len(items), field, unit, max_rows)
    return items


def check_strings(items: list[Any], field: str, expected: str) -> list[str]:
    """`items`, each a string, else a 422 naming the first that is not."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise BadRequest(
                422,
                "wrong_type",
                f"field '{field}[{i}]': expected {expected}, got {describe(item)}",
            )
    return items


def check_count(count: int, field: str, unit: str, max_rows: int) -> None:
    if not count:
        raise BadRequest(422, "empty", f"field '{field}': empty list; send at least one {unit}")
    if count > max_rows:
        raise BadRequest(
            413,
            "too_many_rows",
            f"field '{field}': {count} {unit}s > serve.max_rows_per_request = {max_rows}",
        )


def rows_matrix(payload: Any, features: list[str], max_rows: int) -> np.ndarray:
    """{"rows": [{feature: number, ...}, ...]} -> float32 [rows, features] in model order.
    Extra keys in a row are ignored (callers often send an id along); a missing or
    non-numeric feature, a non-finite number and too many rows are errors."""
    rows = listed(payload, "rows", '{"rows": [{feature: number}]}', "row", max_rows)
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(
                422, "wrong_type", f"field 'rows[{i}]': expected an object, got {describe(row)}"
            )
        try:
            values = [row[name] for name in features]
        except KeyError:
            missing = [name for name in features if name not in row]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise BadRequest(
                422, "missing_feature", f"field 'rows[{i}].{missing[0]}': missing{more}"
            ) from None
        for name, value in zip(features, values, strict=True):
            # exact types: bool is an int subclass, and numpy would turn "1.5" or True into a
            # number without complaint; neither is a feature value
            if type(value) is not float and type(value) is not int:
                raise BadRequest(
                    422,
                    "wrong_type",
                    f"field 'rows[{i}].{name}': expected a number, got {describe(value)}",
                )
        try:
            with np.errstate(over="ignore"):  # 1e39 becomes inf in float32: reported below
                x[i] = values
        except OverflowError:  # an int beyond float range
            x[i] = [float(v) if abs(v) < 1e300 else np.inf for v in values]
    if not np.isfinite(x).all():
        # float32 overflow (1e39) as well as out-of-range ints end up here
        i, j = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise BadRequest(
            422,
            "non_finite",
            f"field 'rows[{i}].{features[j]}': {repr(rows[i][features[j]])[:40]} is not a "
            "finite float32",
        )
    return x
