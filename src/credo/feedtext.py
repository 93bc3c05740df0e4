"""Typed feed values as text: what every feed column is read as (``credo.feeds``).

Why text: validation, not the reader, decides what is wrong with a value. A JSON
Lines row or an API batch brings JSON values, a Parquet file typed columns; each
is turned into the text a CSV would have held for it, so one set of checks reads
every format alike (a whole-number float as that integer, booleans as ``true``,
nested values as their JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from credo.errors import UnreadableFeed


def text_column(values: list[Any]) -> pa.Array:
    """Text as it is; numbers, booleans and nested values of a JSON row as their JSON text."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([as_text(v) for v in values], pa.string())


def as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return orjson.dumps(value).decode()


def column_text(path: Path, name: str, column: pa.ChunkedArray, first: int) -> pa.Array:
    """Any Parquet column as text: strings as they are, numbers and dates by Arrow's cast (a float
    holding a whole number, as pandas writes integer columns with gaps, as that integer), nested
    values as JSON."""
    values = column.combine_chunks()
    kind = values.type
    if pa.types.is_dictionary(kind):
        values = values.cast(kind.value_type)
        kind = values.type
    if pa.types.is_string(kind):
        return values
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_floating(kind):
        as_float = values.cast(pa.float64())
        floats = pc.fill_null(as_float, 0.0).to_numpy(zero_copy_only=False)
        valid = pc.is_valid(as_float).to_numpy(zero_copy_only=False)
        whole = valid & np.isfinite(floats) & (np.floor(floats) == floats) & (np.abs(floats) < 2**53)
        ints = pa.array(np.where(whole, floats, 0).astype(np.int64)).cast(pa.string())
        return pc.if_else(pa.array(whole), ints, as_float.cast(pa.string()))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_large_string(kind) \
            or pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
        try:
            return values.cast(pa.string())
        except pa.ArrowInvalid:
            for i, v in enumerate(values.to_pylist()):
                if isinstance(v, bytes):
                    try:
                        v.decode("utf-8")
                    except UnicodeDecodeError:
                        raise UnreadableFeed(f"{path}: row {first + i + 1}, column {name!r}: "
                                             "bytes that are not UTF-8") from None
            raise
    if pa.types.is_nested(kind) or pa.types.is_map(kind):
        return pa.array([None if v is None else orjson.dumps(v, default=str).decode()
                         for v in values.to_pylist()], pa.string())
    try:
        return values.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())
