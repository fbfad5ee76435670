"""The values of a training graph's node attributes: ``AttrValue``, ``TensorProto``,
``TensorShapeProto``, decoded without protobuf (field numbers in :mod:`tf2hf.tfckpt.metagraph`).

Every length is checked before use; constants past :data:`MAX_CONST_VALUES` elements keep only
their dtype and shape.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tf2hf.tfckpt.bundle import dtype_name, iter_fields
from tf2hf.tfckpt.sstable import MalformedIndexError, read_varint

#: Constants with more elements keep only their dtype and shape (the reshape targets and
#: scalars tf2hf reads are a handful of numbers).
MAX_CONST_VALUES = 4096
_MAX_RANK = 254
_LENGTH_DELIMITED = 2
_STRUCT = {"float32": ("f", 4), "float64": ("d", 8), "int32": ("i", 4), "int64": ("q", 8), "bool": ("?", 1)}


@dataclass(frozen=True)
class Tensor:
    """A ``TensorProto``: dtype name, shape (``None``: unknown rank), values when small."""

    dtype: str
    shape: tuple[int, ...] | None
    values: tuple | None



def attr_value(data: bytes) -> Any:
    """Decode an ``AttrValue`` (see :mod:`tf2hf.tfckpt.metagraph` for the fields read)."""
    for field, wire, value in iter_fields(data):
        if field == 1:
            return _list_value(_need_bytes(wire, value))
        if field == 2:
            return _need_bytes(wire, value)
        if field == 3:
            return _int64(_need_int(wire, value, 0))
        if field == 4:
            return struct.unpack("<f", _need_int(wire, value, 5).to_bytes(4, "little"))[0]
        if field == 5:
            return bool(_need_int(wire, value, 0))
        if field == 6:
            return dtype_name(_need_int(wire, value, 0))
        if field == 7:
            return _shape(_need_bytes(wire, value))
        if field == 8:
            return _tensor(_need_bytes(wire, value))
    return None


def _list_value(data: bytes) -> list:
    items: list = []
    for field, wire, value in iter_fields(data):
        if field == 2:
            items.append(_need_bytes(wire, value))
        elif field in (3, 5, 6):
            for raw in _packed_varints(wire, value):
                items.append(_int64(raw) if field == 3 else bool(raw) if field == 5 else dtype_name(raw))
        elif field == 4:
            items.extend(_packed_fixed(wire, value, "f", 4))
        elif field == 7:
            items.append(_shape(_need_bytes(wire, value)))
        elif field == 8:
            items.append(_tensor(_need_bytes(wire, value)))
    return items


def _shape(data: bytes) -> tuple[int, ...] | None:
    dims: list[int] = []
    for field, wire, value in iter_fields(data):
        if field == 2:
            size = 0  # proto3's default; an unknown size is written as -1
            for dfield, dwire, dvalue in iter_fields(_need_bytes(wire, value)):
                if dfield == 1:
                    size = _int64(_need_int(dwire, dvalue, 0))
            if size < -1:
                raise MalformedIndexError(f"a shape has the size {size}")
            dims.append(size)
            if len(dims) > _MAX_RANK:
                raise MalformedIndexError(f"a shape has more than {_MAX_RANK} dimensions")
        elif field == 3 and _need_int(wire, value, 0):
            return None
    return tuple(dims)


def _tensor(data: bytes) -> Tensor:
    dtype, shape = "unknown_dtype_0", ()
    content: bytes | None = None
    listed: list = []
    for field, wire, value in iter_fields(data):
        if field == 1:
            dtype = dtype_name(_need_int(wire, value, 0))
        elif field == 2:
            shape = _shape(_need_bytes(wire, value))
        elif field == 4:
            content = _need_bytes(wire, value)
        elif field == 5:
            listed.extend(_packed_fixed(wire, value, "f", 4))
        elif field == 6:
            listed.extend(_packed_fixed(wire, value, "d", 8))
        elif field in (7, 10, 11):
            listed.extend(_int64(raw) if field != 11 else bool(raw) for raw in _packed_varints(wire, value))
        elif field == 8:
            listed.append(_need_bytes(wire, value))
        if len(listed) > MAX_CONST_VALUES:
            return Tensor(dtype, shape, None)
    return Tensor(dtype, shape, _values(dtype, shape, content, listed))


def _values(dtype: str, shape: tuple[int, ...] | None, content: bytes | None, listed: list) -> tuple | None:
    """The tensor's values in order, as TF expands them (a short list repeats its last value)."""
    if shape is None or any(d < 0 for d in shape):
        return None
    count = math.prod(shape)
    if count > MAX_CONST_VALUES:
        return None
    if content is not None:
        if dtype not in _STRUCT:
            return None
        code, width = _STRUCT[dtype]
        if len(content) != count * width:
            raise MalformedIndexError(f"a {dtype} constant of shape {list(shape)} has {len(content)} bytes of content")
        return struct.unpack(f"<{count}{code}", content)
    if not listed:
        return (0,) * count if count else ()
    if len(listed) > count:
        raise MalformedIndexError(f"a constant of shape {list(shape)} lists {len(listed)} values")
    return tuple(listed) + (listed[-1],) * (count - len(listed))


def _packed_varints(wire: int, value) -> Iterator[int]:
    if wire == 0 and isinstance(value, int):
        yield value
        return
    packed = _need_bytes(wire, value)
    pos = 0
    while pos < len(packed):
        item, pos = read_varint(packed, pos, len(packed))
        yield item


def _packed_fixed(wire: int, value, code: str, width: int) -> list:
    if wire in (1, 5) and isinstance(value, int):
        if width != (8 if wire == 1 else 4):
            raise MalformedIndexError(f"a fixed-width value has the wrong wire type {wire}")
        return list(struct.unpack(f"<{code}", value.to_bytes(width, "little")))
    packed = _need_bytes(wire, value)
    if len(packed) % width:
        raise MalformedIndexError("a packed fixed-width field is not a whole number of values")
    if len(packed) // width > MAX_CONST_VALUES:
        return [0.0] * (MAX_CONST_VALUES + 1)  # too many to keep: the caller drops the values
    return list(struct.unpack(f"<{len(packed) // width}{code}", packed))


def _need_bytes(wire: int, value) -> bytes:
    if wire != _LENGTH_DELIMITED or not isinstance(value, bytes):
        raise MalformedIndexError(f"a protobuf field has the wrong wire type {wire}")
    return value


def _need_int(wire: int, value, expected: int) -> int:
    if wire != expected or not isinstance(value, int):
        raise MalformedIndexError(f"a protobuf field has the wrong wire type {wire}")
    return value


def _int64(raw: int) -> int:
    return raw - (1 << 64) if raw >= 1 << 63 else raw
