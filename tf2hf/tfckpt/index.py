"""The ``.index`` file of a checkpoint: every variable's dtype, shape and place, checked.

Everything a conversion plans from comes from here, so what the index claims is checked before
anything is sized from it: the header's byte order, format version and shard count, and for each
entry its shard and its byte size against its shape and dtype.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tf2hf.errors import CheckpointFormatError, CheckpointNotFoundError
from tf2hf.sources import open_regular
from tf2hf.tfckpt.bundle import BIG_ENDIAN, BUNDLE_VERSION, BundleEntry, BundleHeader, dtype_name, parse_entry, parse_header
from tf2hf.tfckpt.sstable import MalformedIndexError, read_table

#: Upper bound on the shard count in a header; real checkpoints have a handful.
MAX_SHARDS = 100_000
#: Upper bound on the size of an index file. An index holds ~100 bytes per variable, so
#: real ones are kilobytes to a few megabytes; this keeps a wrong file from filling memory.
MAX_INDEX_BYTES = 256 << 20

#: How each readable dtype is stored in a data shard. bfloat16 is read as raw uint16 and
#: widened to float32 (numpy has no bfloat16).
STORAGE_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "float32": "<f4",
        "float64": "<f8",
        "float16": "<f2",
        "bfloat16": "<u2",
        "int8": "i1",
        "int16": "<i2",
        "int32": "<i4",
        "int64": "<i8",
        "uint8": "u1",
        "uint16": "<u2",
        "uint32": "<u4",
        "uint64": "<u8",
        "bool": "?",
        "complex64": "<c8",
        "complex128": "<c16",
    }.items()
}

# Slices of a partitioned variable are stored under keys that start with a zero byte (an
# ordered-code encoding of name and extent); they are not variables of their own.
_SLICE_KEY_PREFIX = b"\x00"


@dataclass(frozen=True)
class TensorInfo:
    """Where and how one variable is stored.

    ``crc32c`` is the masked crc32c exactly as recorded in the index. ``shard``, ``offset`` and
    ``size`` are 0 for a partitioned variable, whose slices are stored separately.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int

    @property
    def nbytes(self) -> int:
        return self.size

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Index:
    """What an index file says: the shard count, every variable, and which are partitioned
    (name -> slice count)."""

    num_shards: int
    variables: dict[str, TensorInfo]
    partitioned: dict[str, int]


def read_index(index_path: Path) -> Index:
    """Read and check the index file; no tensor data is read."""
    try:
        with open_regular(index_path, CheckpointFormatError, "the index") as handle:  # a FIFO would block
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_INDEX_BYTES:
                raise CheckpointFormatError(
                    f"{index_path}: the index is {size} bytes, far larger than any checkpoint "
                    "index; pass the checkpoint's real .index file"
                )
            data = handle.read()
    except OSError as error:
        raise CheckpointNotFoundError(
            f"{index_path}: cannot read the index ({error.strerror or error}); check the file"
        ) from None
    try:
        return parse_index(data, index_path)
    except MalformedIndexError as error:
        raise CheckpointFormatError(
            f"{index_path}: not a valid TF checkpoint index ({error}); "
            "the file is damaged or truncated, copy it again"
        ) from None


def parse_index(data: bytes, index_path: Path) -> Index:
    """Decode the header and every entry of an index file."""
    entries = read_table(data)
    if not entries or entries[0][0] != b"":
        raise MalformedIndexError("no header entry")
    header = parse_header(entries[0][1])
    _check_header(header, index_path)
    variables: dict[str, TensorInfo] = {}
    partitioned: dict[str, int] = {}
    for key, value in entries[1:]:
        if key.startswith(_SLICE_KEY_PREFIX):
            continue
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedIndexError(f"variable name {key[:60]!r} is not valid UTF-8") from None
        entry = parse_entry(value)
        if entry.num_slices:
            partitioned[name] = entry.num_slices
        elif entry.shard_id >= header.num_shards:
            raise MalformedIndexError(
                f"variable '{name}' is in shard {entry.shard_id}, "
                f"but the header says there are {header.num_shards}"
            )
        else:
            _check_size(name, entry, index_path)
        variables[name] = _tensor_info(name, entry)
    return Index(header.num_shards, variables, partitioned)


def _check_header(header: BundleHeader, index_path: Path) -> None:
    """Refuse byte orders and format versions this reader cannot honour, and absurd shard counts."""
    if header.endianness == BIG_ENDIAN:
        raise CheckpointFormatError(
            f"{index_path}: the checkpoint was written in big-endian byte order, which tf2hf "
            "does not read; re-save it on a little-endian machine"
        )
    if header.endianness != 0:
        raise MalformedIndexError(f"unknown byte order {header.endianness} in the header")
    if header.min_consumer > BUNDLE_VERSION or BUNDLE_VERSION in header.bad_consumers:
        raise CheckpointFormatError(
            f"{index_path}: the checkpoint uses a newer tensor-bundle format (needs reader "
            f"version {header.min_consumer}); re-save it with an older TensorFlow"
        )
    if not 1 <= header.num_shards <= MAX_SHARDS:
        raise MalformedIndexError(f"the header says num_shards={header.num_shards}")


def _check_size(name: str, entry: BundleEntry, index_path: Path) -> None:
    """A numeric tensor's byte size follows from its shape: check it while parsing, so that a
    garbled shape (say 10**12 elements) is refused before anything is sized from it."""
    storage = STORAGE_DTYPES.get(dtype_name(entry.dtype))
    if storage is None:
        return  # strings and other variable-width dtypes: checked when (if ever) read
    expected = math.prod(entry.shape) * storage.itemsize
    if entry.size != expected:
        raise CheckpointFormatError(
            f"{index_path}: variable '{name}' is recorded with {entry.size} bytes, but shape "
            f"{list(entry.shape)} of {dtype_name(entry.dtype)} needs {expected}; "
            "the index is corrupt, copy it again"
        )


def _tensor_info(name: str, entry: BundleEntry) -> TensorInfo:
    return TensorInfo(
        name=name,
        dtype=dtype_name(entry.dtype),
        shape=entry.shape,
        shard=entry.shard_id,
        offset=entry.offset,
        size=entry.size,
        crc32c=entry.crc32c,
    )
