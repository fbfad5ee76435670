"""Write TF V2 checkpoints (``P.index`` + one data shard) without TensorFlow.

The writer copies tensors that already exist in other checkpoints: each is given by where its
bytes are (a data shard, an offset, a size) and by its recorded dtype, shape and masked crc32c.
The bytes are copied in chunks, never decoded, and their crc32c is recomputed on the way: a
tensor whose bytes do not match what its index recorded is refused rather than copied, so a
damaged source can never become a checkpoint that looks healthy.

What is written, byte for byte what TensorFlow's ``BundleWriter`` produces in substance:

- ``P.data-00000-of-00001``: the tensors' bytes back to back, in name order, no padding;
- ``P.index``: a LevelDB table (see :mod:`tf2hf.tfckpt.sstable` for the layout) whose
  empty key holds a ``BundleHeaderProto`` (one shard, little-endian, bundle version 1) and
  whose other keys, in byte order, hold one ``BundleEntryProto`` each. Data blocks of at most
  256 KiB with a restart point every 16 keys, as TensorFlow's table options say; an empty
  metaindex block; an index block that maps the last key of each data block to its handle;
  every block followed by its compression byte (0) and masked crc32c; the 48-byte footer.

The writer writes exactly the two paths it is given; choosing temporary names and renaming
them into place is the caller's job (see :mod:`tf2hf.tools.slim`).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

import crc32c

from tf2hf.tfckpt.sstable import BLOCK_TRAILER_SIZE, FOOTER_SIZE, TABLE_MAGIC, mask_crc, read_varint
from tf2hf.errors import CheckpointFormatError, CrcMismatchError, MissingShardError, ShortShardError
from tf2hf.sources import open_regular

#: TensorFlow's table options for tensor bundles (tensorflow/core/lib/io/table_options.h).
BLOCK_SIZE = 256 * 1024
RESTART_INTERVAL = 16
#: Bytes copied at a time; large embeddings never sit in memory whole.
CHUNK = 16 << 20

#: ``DataType`` codes whose stored bytes are the raw little-endian elements, so that the
#: crc32c is that of the bytes as they lie in the shard.
_PLAIN_DTYPES = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22, 23})
_STRING = 7


@dataclass(frozen=True)
class SourceTensor:
    """One tensor to copy: its bundle entry fields and where its bytes are."""

    name: str
    dtype: int  # TF DataType enum value
    shape: tuple[int, ...]
    size: int
    crc32c: int  # masked, as recorded by the source index
    shard: Path
    offset: int


@dataclass(frozen=True)
class WrittenBundle:
    """What :func:`write_bundle` wrote."""

    tensors: int
    index_bytes: int
    data_bytes: int


# --- protobuf encoding ------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 fields encode negatives as 10-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int_field(field: int, value: int) -> bytes:
    """A varint field, omitted when zero (proto3 does not write default values)."""
    return _key(field, 0) + _varint(value) if value else b""


def _message_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def encode_header(num_shards: int = 1, producer: int = 1) -> bytes:
    """``BundleHeaderProto``: shard count, little-endian (the default 0), ``VersionDef``."""
    return _int_field(1, num_shards) + _message_field(3, _int_field(1, producer))


def encode_entry(dtype: int, shape: tuple[int, ...], shard_id: int, offset: int, size: int, crc: int) -> bytes:
    """``BundleEntryProto``; the shape is always present (empty for a scalar), one ``Dim`` per axis."""
    dims = b"".join(_message_field(2, _int_field(1, d)) for d in shape)
    out = _int_field(1, dtype) + _message_field(2, dims) + _int_field(3, shard_id) + _int_field(4, offset) + _int_field(5, size)
    if crc:
        out += _key(6, 5) + struct.pack("<I", crc)
    return out


# --- LevelDB table ----------------------------------------------------------------------------


class _Block:
    """Entries with prefix-compressed keys, then the restart offsets and their count."""

    def __init__(self, restart_interval: int) -> None:
        self.interval = restart_interval
        self.buffer = bytearray()
        self.restarts: list[int] = [0]
        self.count = 0
        self.last = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count % self.interval == 0:
            if self.count:
                self.restarts.append(len(self.buffer))
        else:
            limit = min(len(key), len(self.last))
            while shared < limit and key[shared] == self.last[shared]:
                shared += 1
        self.buffer += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        self.buffer += key[shared:] + value
        self.last = key
        self.count += 1

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buffer) + struct.pack(f"<{len(self.restarts)}I", *self.restarts) + struct.pack("<I", len(self.restarts))


class TableWriter:
    """Build a LevelDB table from keys added in strictly increasing byte order."""

    def __init__(self, out: BinaryIO, *, block_size: int = BLOCK_SIZE, restart_interval: int = RESTART_INTERVAL) -> None:
        self.out = out
        self.block_size = block_size
        self.restart_interval = restart_interval
        self.offset = 0
        self.block = _Block(restart_interval)
        self.index = _Block(1)
        self.last: bytes | None = None

    def add(self, key: bytes, value: bytes) -> None:
        if self.last is not None and key <= self.last:
            raise ValueError(f"table keys must be added in increasing order: {key!r} after {self.last!r}")
        self.block.add(key, value)
        self.last = key
        if self.block.size_estimate() >= self.block_size:
            self._flush()

    def _write_block(self, contents: bytes) -> bytes:
        """Write a block and its trailer; return its handle (offset, size as varints)."""
        handle = _varint(self.offset) + _varint(len(contents))
        crc = crc32c.crc32c(b"\x00", crc32c.crc32c(contents))
        self.out.write(contents + b"\x00" + struct.pack("<I", mask_crc(crc)))
        self.offset += len(contents) + BLOCK_TRAILER_SIZE
        return handle

    def _flush(self) -> None:
        if not self.block.count:
            return
        # The last key of the block separates it from the next one: every key in the block is
        # <= it and every later key is greater, which is all a reader needs.
        handle = self._write_block(self.block.finish())
        self.index.add(self.block.last, handle)
        self.block = _Block(self.restart_interval)

    def finish(self) -> int:
        """Write the pending block, the metaindex, the index and the footer; return the size."""
        self._flush()
        meta_handle = self._write_block(_Block(self.restart_interval).finish())
        index_handle = self._write_block(self.index.finish())
        handles = meta_handle + index_handle
        footer = handles + b"\x00" * (FOOTER_SIZE - 8 - len(handles)) + struct.pack("<Q", TABLE_MAGIC)
        self.out.write(footer)
        self.offset += len(footer)
        return self.offset


# --- copying tensors --------------------------------------------------------------------------


def string_tensor_crc(data: bytes, count: int) -> int:
    """TensorFlow's checksum of a string tensor, unmasked.

    A string tensor is stored as the varint lengths of its ``count`` elements, the masked crc32c
    of those lengths (each taken as a little-endian uint32), then the bytes of the elements; the
    checksum runs over the lengths (as uint32), the 4 checksum bytes and the element bytes.
    """
    pos = 0
    crc = 0
    for _ in range(count):
        length, pos = read_varint(data, pos, len(data))
        crc = crc32c.crc32c(struct.pack("<I", length & 0xFFFFFFFF), crc)
    crc = crc32c.crc32c(data[pos : pos + 4], crc)
    return crc32c.crc32c(data[pos + 4 :], crc)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class _Shards:
    """Open source shards once each, with their sizes."""

    def __init__(self) -> None:
        self.handles: dict[Path, tuple[BinaryIO, int]] = {}

    def get(self, tensor: SourceTensor) -> BinaryIO:
        if tensor.shard not in self.handles:
            try:
                handle = open_regular(tensor.shard, CheckpointFormatError, "this data shard")  # a FIFO would block
            except FileNotFoundError:
                raise MissingShardError(
                    f"{tensor.shard}: data shard is missing (it holds variable '{tensor.name}'); copy every data shard of the checkpoint next to its .index"
                ) from None
            except OSError as error:
                raise CheckpointFormatError(f"{tensor.shard}: cannot read this data shard ({error.strerror or error}); check the file") from None
            self.handles[tensor.shard] = (handle, os.fstat(handle.fileno()).st_size)
        handle, size = self.handles[tensor.shard]
        end = tensor.offset + tensor.size
        if end > size:
            raise ShortShardError(
                f"{tensor.shard}: data shard is truncated ({size} bytes, but variable '{tensor.name}' needs bytes {tensor.offset} to {end}); copy the file again"
            )
        return handle

    def close(self) -> None:
        for handle, _size in self.handles.values():
            handle.close()
        self.handles.clear()


def _copy_tensor(tensor: SourceTensor, source: BinaryIO, out: BinaryIO) -> None:
    """Copy the tensor's bytes to ``out``, checking them against the recorded crc32c."""
    source.seek(tensor.offset)
    if tensor.dtype == _STRING:
        data = source.read(tensor.size)
        out.write(data)
        crc: int | None = string_tensor_crc(data, _numel(tensor.shape)) if len(data) == tensor.size else None
    else:
        crc = 0
        remaining = tensor.size
        while remaining:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                break
            out.write(chunk)
            crc = crc32c.crc32c(chunk, crc)
            remaining -= len(chunk)
        if remaining:
            crc = None
        if tensor.dtype not in _PLAIN_DTYPES:
            return  # resource/variant payloads: copied as they are, their checksum is not ours to recompute
    if crc is None:
        raise ShortShardError(f"{tensor.shard}: data shard ended while reading variable '{tensor.name}'; copy the file again")
    if mask_crc(crc) != tensor.crc32c:
        raise CrcMismatchError(
            f"{tensor.shard}: variable '{tensor.name}' is corrupt (the crc32c of its {tensor.size} bytes at offset {tensor.offset} "
            "does not match the index); the file was damaged, copy it again"
        )


def write_bundle(index_path: Path, data_path: Path, tensors: Iterable[SourceTensor]) -> WrittenBundle:
    """Write ``tensors`` as a one-shard V2 checkpoint to exactly these two paths.

    Tensors are written in name order (the index requires it; names are compared as UTF-8
    bytes, as TensorFlow does). Both files are fsync'd before returning. On any error the
    caller removes the two paths.
    """
    ordered = sorted(tensors, key=lambda t: t.name.encode("utf-8"))
    names = [t.name for t in ordered]
    if len(set(names)) != len(names):
        raise ValueError("two tensors have the same name")
    entries: list[tuple[bytes, bytes]] = [(b"", encode_header(1))]
    shards = _Shards()
    offset = 0
    try:
        with open(data_path, "wb") as data:
            for tensor in ordered:
                _copy_tensor(tensor, shards.get(tensor), data)
                entries.append((tensor.name.encode("utf-8"), encode_entry(tensor.dtype, tensor.shape, 0, offset, tensor.size, tensor.crc32c)))
                offset += tensor.size
            data.flush()
            os.fsync(data.fileno())
    finally:
        shards.close()
    with open(index_path, "wb") as index:
        table = TableWriter(index)
        for key, value in entries:
            table.add(key, value)
        index_bytes = table.finish()
        index.flush()
        os.fsync(index.fileno())
    return WrittenBundle(tensors=len(ordered), index_bytes=index_bytes, data_bytes=offset)
