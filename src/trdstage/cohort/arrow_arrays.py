"""Arrow columns to NumPy arrays and back, through the buffers, without pandas.

pyarrow's own conversions (`Array.to_numpy`, `pa.array` on a list or an array) import pandas the
first time they run, which costs about as much as the whole bare DuckDB scan the cohort
benchmark measures against. The scan engine's columns are plain numbers, days, booleans
and a few labels, so it reads and builds them from the Arrow buffers directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

_ARROW_OF: dict[type[np.generic], Any] = {
    np.int8: pa.int8(), np.int32: pa.int32(), np.int64: pa.int64(), np.float64: pa.float64(),
    np.bool_: pa.bool_(),
}
_NUMPY_OF = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def _bits(buffer: Any, offset: int, length: int) -> npt.NDArray[np.bool_]:
    """An Arrow bitmap (least significant bit first) as booleans."""
    raw = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little", count=offset + length)[offset:].astype(bool)


def _chunk_values(chunk: Any, dtype: type[np.generic], fill: Any, what: str) -> Any:
    target = _ARROW_OF[dtype]
    if chunk.type != target:
        source = pa.int32() if pa.types.is_date32(chunk.type) else None
        chunk = pc.cast(chunk.view(source) if source is not None else chunk, target)
    n, offset = len(chunk), chunk.offset
    validity, data = chunk.buffers()[:2]
    if dtype is np.bool_:
        values: Any = _bits(data, offset, n) if n else np.zeros(0, bool)
    else:
        width = np.dtype(dtype).itemsize
        values = np.frombuffer(data, dtype=dtype, count=n, offset=offset * width) if n \
            else np.zeros(0, dtype)
    if chunk.null_count:
        if fill is None:
            raise ValueError(f"{what}: {chunk.null_count} null value(s) where none may be")
        values = values.copy()
        values[~_bits(validity, offset, n)] = fill
    return values


def numpy_of(column: Any, dtype: type[np.generic], fill: Any = None,
             what: str = "column") -> Any:
    """A column (Array or ChunkedArray) as one NumPy array of `dtype` (int8, int32, int64,
    float64 or bool; date32 as day numbers); nulls become `fill` (an error when `fill` is None).
    Columns of another numeric type are cast by Arrow first. The result may be read-only."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [_chunk_values(c, dtype, fill, what) for c in chunks]
    if not parts:
        return np.zeros(0, dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def arrow_of(values: npt.NDArray[Any], arrow_type: Any,
             valid: npt.NDArray[np.bool_] | None = None) -> Any:
    """An Arrow array of `arrow_type` (int32, int64, float64, bool or date32 from day numbers)
    over `values`; null where `valid` is False."""
    n = len(values)
    if pa.types.is_boolean(arrow_type):
        data = pa.py_buffer(np.packbits(np.asarray(values, bool), bitorder="little"))
    else:
        dtype = np.int32 if pa.types.is_date32(arrow_type) else _NUMPY_OF[arrow_type]
        data = pa.py_buffer(np.ascontiguousarray(values, dtype=dtype))
    bitmap, nulls = None, 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(np.asarray(valid, bool), bitorder="little"))
        nulls = int(n - np.count_nonzero(valid))
    return pa.Array.from_buffers(arrow_type, n, [bitmap, data], null_count=nulls)


def strings_of(labels: Sequence[str | None], index: npt.NDArray[Any],
               valid: npt.NDArray[np.bool_] | None = None) -> Any:
    """labels[index] as an Arrow string array: null where `valid` is False or the label is
    None."""
    encoded = [(label or "").encode() for label in labels] or [b""]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    dictionary = pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])
    index = np.asarray(index, np.int32)
    keep = np.array([label is not None for label in labels] or [False], bool)[index]
    if valid is not None:
        keep &= valid
    return pc.take(dictionary, arrow_of(index, pa.int32(), keep))


__all__ = ["arrow_of", "numpy_of", "strings_of"]
