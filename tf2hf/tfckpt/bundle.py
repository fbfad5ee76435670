"""Decoding of the two protobuf messages stored in a checkpoint index, without protobuf.

The empty key holds a ``BundleHeaderProto``; every other key holds a ``BundleEntryProto``:

    BundleHeaderProto { int32 num_shards = 1; Endianness endianness = 2;
                        VersionDef version = 3; }
    VersionDef        { int32 producer = 1; int32 min_consumer = 2;
                        repeated int32 bad_consumers = 3; }
    BundleEntryProto  { DataType dtype = 1; TensorShapeProto shape = 2; int32 shard_id = 3;
                        int64 offset = 4; int64 size = 5; fixed32 crc32c = 6;
                        repeated TensorSliceProto slices = 7; }
    TensorShapeProto  { repeated Dim dim = 2; bool unknown_rank = 3; }
    Dim               { int64 size = 1; string name = 2; }

Only the wire format is needed: varints (type 0), fixed64 (1), length-delimited (2) and
fixed32 (5). Unknown fields are skipped, as protobuf does; a known field with the wrong wire
type, a negative size or an out-of-range number is a :class:`MalformedIndexError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from tf2hf.tfckpt.sstable import MalformedIndexError, read_varint

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5

#: TensorFlow's ``DataType`` enum (tensorflow/core/framework/types.proto), by the names
#: ``tf.dtypes.DType.name`` uses.
DTYPE_NAMES: dict[int, str] = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    8: "complex64",
    9: "int64",
    10: "bool",
    11: "qint8",
    12: "quint8",
    13: "qint32",
    14: "bfloat16",
    15: "qint16",
    16: "quint16",
    17: "uint16",
    18: "complex128",
    19: "float16",
    20: "resource",
    21: "variant",
    22: "uint32",
    23: "uint64",
    24: "float8_e5m2",
    25: "float8_e4m3fn",
    26: "float8_e4m3fnuz",
    27: "float8_e4m3b11fnuz",
    28: "float8_e5m2fnuz",
    29: "int4",
    30: "uint4",
    31: "int2",
    32: "uint2",
    33: "float4_e2m1fn",
}

#: Element count above which a shape is treated as corrupt (2**40 elements is 4 TiB of
#: float32, far beyond any real weight).
MAX_ELEMENTS = 2**40
#: TensorFlow's own limit on the rank of a tensor.
MAX_RANK = 254
#: TensorFlow's tensor-bundle format version this reader implements.
BUNDLE_VERSION = 1

BIG_ENDIAN = 1


@dataclass(frozen=True)
class BundleHeader:
    """The decoded ``BundleHeaderProto``."""

    num_shards: int
    endianness: int  # 0 = little, 1 = big
    producer: int
    min_consumer: int
    bad_consumers: tuple[int, ...]


@dataclass(frozen=True)
class BundleEntry:
    """The decoded ``BundleEntryProto`` of one tensor."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, exactly as stored
    num_slices: int  # > 0 for a partitioned variable, whose bytes live under other keys


def dtype_name(code: int) -> str:
    """The name of a ``DataType`` enum value; unknown values get a descriptive placeholder."""
    return DTYPE_NAMES.get(code, f"unknown_dtype_{code}")


def parse_header(data: bytes) -> BundleHeader:
    """Decode a ``BundleHeaderProto``."""
    num_shards = 0
    endianness = 0
    producer = min_consumer = 0
    bad_consumers: list[int] = []
    for field, wire, value in iter_fields(data):
        if field == 1:
            num_shards = _as_int32(_expect_int(field, wire, value, _VARINT), "num_shards")
        elif field == 2:
            endianness = _as_int32(_expect_int(field, wire, value, _VARINT), "endianness")
        elif field == 3:
            for vfield, vwire, vvalue in iter_fields(_expect_bytes(field, wire, value)):
                if vfield == 1:
                    producer = _as_int32(_expect_int(vfield, vwire, vvalue, _VARINT), "producer")
                elif vfield == 2:
                    min_consumer = _as_int32(
                        _expect_int(vfield, vwire, vvalue, _VARINT), "min_consumer"
                    )
                elif vfield == 3:
                    bad_consumers.extend(_repeated_int32(vwire, vvalue, "bad_consumers"))
    return BundleHeader(num_shards, endianness, producer, min_consumer, tuple(bad_consumers))


def parse_entry(data: bytes) -> BundleEntry:
    """Decode a ``BundleEntryProto``; sizes, offsets and the shape are range-checked."""
    dtype = 0
    shape: tuple[int, ...] = ()
    shard_id = offset = size = crc = 0
    num_slices = 0
    for field, wire, value in iter_fields(data):
        if field == 1:
            dtype = _as_int32(_expect_int(field, wire, value, _VARINT), "dtype")
        elif field == 2:
            shape = _parse_shape(_expect_bytes(field, wire, value))
        elif field == 3:
            shard_id = _as_int32(_expect_int(field, wire, value, _VARINT), "shard_id")
        elif field == 4:
            offset = _as_int64(_expect_int(field, wire, value, _VARINT))
        elif field == 5:
            size = _as_int64(_expect_int(field, wire, value, _VARINT))
        elif field == 6:
            crc = _expect_int(field, wire, value, _FIXED32)
        elif field == 7:
            _expect_bytes(field, wire, value)
            num_slices += 1
    if dtype <= 0:
        raise MalformedIndexError(f"an entry has the invalid dtype {dtype}")
    if shard_id < 0 or offset < 0 or size < 0:
        raise MalformedIndexError("an entry has a negative shard id, offset or size")
    return BundleEntry(dtype, shape, shard_id, offset, size, crc, num_slices)


def _parse_shape(data: bytes) -> tuple[int, ...]:
    dims: list[int] = []
    for field, wire, value in iter_fields(data):
        if field == 2:
            dim_size = 0
            for dfield, dwire, dvalue in iter_fields(_expect_bytes(field, wire, value)):
                if dfield == 1:
                    dim_size = _as_int64(_expect_int(dfield, dwire, dvalue, _VARINT))
            if dim_size < 0:
                raise MalformedIndexError(f"a shape has the unknown or negative size {dim_size}")
            dims.append(dim_size)
            if len(dims) > MAX_RANK:
                raise MalformedIndexError(f"a shape has more than {MAX_RANK} dimensions")
        elif field == 3:
            if _expect_int(field, wire, value, _VARINT):
                raise MalformedIndexError("a stored tensor has a shape of unknown rank")
    if math.prod(dims) > MAX_ELEMENTS:
        raise MalformedIndexError(
            f"a shape {list(dims)} has more than 2**40 elements, which no real tensor has"
        )
    if math.prod(d for d in dims if d) > MAX_ELEMENTS:
        # Empty, but numpy still refuses to build an array whose other sides multiply past
        # its limits; no real tensor is shaped so.
        raise MalformedIndexError(
            f"an empty shape {list(dims)} has other sizes multiplying past 2**40, "
            "which no real tensor has"
        )
    return tuple(dims)


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)``: an int for numbers, bytes for messages."""
    pos = 0
    end = len(data)
    while pos < end:
        tag, pos = read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 0 or field >= 1 << 29:
            raise MalformedIndexError(f"invalid protobuf field number {field}")
        value: int | bytes
        if wire == _VARINT:
            value, pos = read_varint(data, pos, end)
        elif wire == _FIXED64 or wire == _FIXED32:
            width = 8 if wire == _FIXED64 else 4
            if pos + width > end:
                raise MalformedIndexError("a fixed-width protobuf field runs past its message")
            value = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        elif wire == _LENGTH_DELIMITED:
            length, pos = read_varint(data, pos, end)
            if pos + length > end:
                raise MalformedIndexError("a length-delimited protobuf field runs past its message")
            value = bytes(data[pos : pos + length])
            pos += length
        else:
            raise MalformedIndexError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _expect_int(field: int, wire: int, value: int | bytes, expected: int) -> int:
    if wire != expected or not isinstance(value, int):
        raise MalformedIndexError(f"protobuf field {field} has the wrong wire type {wire}")
    return value


def _expect_bytes(field: int, wire: int, value: int | bytes) -> bytes:
    if wire != _LENGTH_DELIMITED or not isinstance(value, bytes):
        raise MalformedIndexError(f"protobuf field {field} has the wrong wire type {wire}")
    return value


def _repeated_int32(wire: int, value: int | bytes, what: str) -> Iterator[int]:
    """A repeated int32 arrives either one varint at a time or packed in one byte string."""
    if isinstance(value, int) and wire == _VARINT:
        yield _as_int32(value, what)
        return
    packed = _expect_bytes(3, wire, value)
    pos = 0
    while pos < len(packed):
        item, pos = read_varint(packed, pos, len(packed))
        yield _as_int32(item, what)


def _as_int64(raw: int) -> int:
    """Reinterpret a 64-bit varint as the two's-complement int64 protobuf encodes."""
    return raw - (1 << 64) if raw >= 1 << 63 else raw


def _as_int32(raw: int, what: str) -> int:
    """Reinterpret a varint as int32 (negative int32 values are sign-extended to 64 bits)."""
    value = _as_int64(raw)
    if not -(1 << 31) <= value < 1 << 31:
        raise MalformedIndexError(f"{what} {value} does not fit in an int32")
    return value
