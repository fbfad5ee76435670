"""Reader for the LevelDB table format that TensorFlow uses for a checkpoint's ``.index`` file.

Layout (all integers little-endian):

- The file ends with a 48-byte footer: two block handles (metaindex, index), each a pair of
  varints ``offset, size``, zero-padded to 40 bytes, then the 8-byte magic number.
- Every block is followed by a 5-byte trailer: the compression type (1 byte: 0 = none, 1 =
  snappy; TensorFlow writes bundles uncompressed, but other writers of real releases — e.g.
  Google's ``albert_tiny_zh_google`` — used snappy, and TensorFlow reads both) and the masked
  crc32c of the stored (compressed) block bytes plus that type byte.
- A block is a run of entries followed by an array of uint32 restart offsets and their count.
  Each entry is ``varint shared, varint non_shared, varint value_len, key suffix, value``: its
  key is the first ``shared`` bytes of the previous key plus the suffix. At a restart point
  ``shared`` is 0.
- The index block maps a separator key to the handle of each data block; data blocks hold the
  actual ``key -> value`` pairs in strictly increasing key order.

Every length and offset read from the file is checked against the bytes actually present, so
garbage input raises :class:`MalformedIndexError` and nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import cramjam
import crc32c

from tf2hf.errors import CheckpointFormatError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
_MAGIC_BYTES = struct.pack("<Q", TABLE_MAGIC)
_NO_COMPRESSION = 0
_SNAPPY = 1
# Snappy's densest encoding is a 2-byte copy of 64 bytes, so no valid block expands more than
# 32x; a declared size beyond that (or beyond the cap) is garbage, refused before allocating.
_SNAPPY_MAX_RATIO = 32
_MAX_BLOCK_BYTES = 256 << 20
_CRC_MASK_DELTA = 0xA282EAD8


class MalformedIndexError(CheckpointFormatError):
    """The bytes of an index are not a valid table or bundle entry.

    Raised by the parsers with a description of the problem but without the file name; the
    reader re-raises it as a :class:`CheckpointFormatError` whose message names the file.
    """


def mask_crc(crc: int) -> int:
    """Mask a crc32c the way LevelDB and TensorFlow store it.

    Storing the crc of data that itself contains crcs makes accidental matches likely, so the
    stored value is rotated right by 15 bits and offset by a constant.
    """
    crc &= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def read_varint(buf: bytes, pos: int, end: int, max_bytes: int = 10) -> tuple[int, int]:
    """Decode one base-128 varint from ``buf[pos:end]``; return ``(value, next_pos)``.

    ``max_bytes`` is 5 for LevelDB's 32-bit varints and 10 for protobuf's 64-bit ones.
    """
    value = 0
    shift = 0
    for i in range(max_bytes):
        if pos >= end:
            raise MalformedIndexError("a number runs past the end of its data")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            limit = 32 if max_bytes == 5 else 64
            if value >> limit:
                raise MalformedIndexError("a number is too large")
            return value, pos
        shift += 7
    raise MalformedIndexError("a number is encoded with too many bytes")


def has_table_magic(tail: bytes) -> bool:
    """True when ``tail`` (the last 8 bytes of a file) is the LevelDB table magic number."""
    return tail == _MAGIC_BYTES


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """Return every ``(key, value)`` pair of the table in ``data``, in key order.

    Keys are checked to be strictly increasing across the whole table, and data blocks must
    follow each other without overlapping, which also bounds the work done on garbage input
    to one pass over the file.
    """
    size = len(data)
    if size < FOOTER_SIZE:
        raise MalformedIndexError(
            f"the file is {size} bytes, shorter than the {FOOTER_SIZE}-byte table footer"
        )
    footer_start = size - FOOTER_SIZE
    if not has_table_magic(bytes(data[size - 8 :])):
        raise MalformedIndexError("wrong magic number at the end of the file")
    pos = footer_start
    handle_end = size - 8
    _meta_offset, pos = read_varint(data, pos, handle_end)
    _meta_size, pos = read_varint(data, pos, handle_end)
    index_offset, pos = read_varint(data, pos, handle_end)
    index_size, pos = read_varint(data, pos, handle_end)

    index_block = _read_block(data, index_offset, index_size, footer_start, "index block")
    entries: list[tuple[bytes, bytes]] = []
    next_free = 0
    for _separator, handle in _iter_block(index_block, "index block"):
        offset, hpos = read_varint(handle, 0, len(handle))
        block_size, hpos = read_varint(handle, hpos, len(handle))
        if offset < next_free:
            raise MalformedIndexError(f"data block at offset {offset} overlaps the previous one")
        block = _read_block(data, offset, block_size, footer_start, "data block")
        next_free = offset + block_size + BLOCK_TRAILER_SIZE
        for key, value in _iter_block(block, f"data block at offset {offset}"):
            if entries and key <= entries[-1][0]:
                raise MalformedIndexError("keys are not in strictly increasing order")
            entries.append((key, value))
    return entries


def _read_block(data: bytes, offset: int, size: int, limit: int, what: str) -> bytes:
    """Return the contents of the block at ``offset`` after checking its trailer and crc."""
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > limit:
        raise MalformedIndexError(
            f"{what} at offset {offset} with {size} bytes runs past the end of the file"
        )
    contents = bytes(data[offset:end])
    kind = data[end]
    (stored_crc,) = struct.unpack_from("<I", data, end + 1)
    actual_crc = crc32c.crc32c(bytes((kind,)), crc32c.crc32c(contents))
    if mask_crc(actual_crc) != stored_crc:
        raise MalformedIndexError(f"{what} at offset {offset} fails its crc32c check")
    if kind == _SNAPPY:
        return _snappy_block(contents, offset, what)
    if kind != _NO_COMPRESSION:
        raise MalformedIndexError(
            f"{what} at offset {offset} uses compression type {kind}; "
            "only uncompressed (0) and snappy (1) blocks exist in TensorFlow's table format"
        )
    return contents


def _snappy_block(contents: bytes, offset: int, what: str) -> bytes:
    """Decompress a snappy block after bounding its declared size (the varint preamble)."""
    declared, _ = read_varint(contents, 0, len(contents), max_bytes=5)
    if declared > min(_MAX_BLOCK_BYTES, _SNAPPY_MAX_RATIO * len(contents)):
        raise MalformedIndexError(
            f"{what} at offset {offset} declares {declared} bytes once decompressed, "
            f"more than {len(contents)} compressed bytes can hold"
        )
    try:
        plain = bytes(cramjam.snappy.decompress_raw(contents))
    except Exception:  # cramjam raises its own DecompressionError; its wording adds nothing
        raise MalformedIndexError(f"{what} at offset {offset} is not valid snappy data") from None
    if len(plain) != declared:
        raise MalformedIndexError(f"{what} at offset {offset} decompresses to {len(plain)} bytes, not the {declared} it declares")
    return plain


def _iter_block(block: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
    """Yield the ``(key, value)`` entries of one block, expanding prefix-compressed keys."""
    size = len(block)
    if size < 4:
        raise MalformedIndexError(f"{what} is {size} bytes, too short for its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, size - 4)
    if 4 + 4 * num_restarts > size:
        raise MalformedIndexError(f"{what} claims {num_restarts} restart points, more than fit")
    entries_end = size - 4 - 4 * num_restarts
    if entries_end == 0:
        return  # an empty block (e.g. the metaindex) still carries one restart point
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, entries_end))
    if 0 not in restarts:
        raise MalformedIndexError(f"{what} does not start at a restart point")

    key = b""
    pos = 0
    seen_restarts = 0
    while pos < entries_end:
        at_restart = pos in restarts
        shared, pos2 = read_varint(block, pos, entries_end, max_bytes=5)
        non_shared, pos2 = read_varint(block, pos2, entries_end, max_bytes=5)
        value_len, pos2 = read_varint(block, pos2, entries_end, max_bytes=5)
        if shared > len(key) or (at_restart and shared != 0):
            raise MalformedIndexError(f"{what} has an entry with an invalid shared key prefix")
        value_start = pos2 + non_shared
        value_end = value_start + value_len
        if value_end > entries_end:
            raise MalformedIndexError(f"{what} has an entry that runs past the end of the block")
        key = key[:shared] + block[pos2:value_start]
        seen_restarts += at_restart
        yield key, block[value_start:value_end]
        pos = value_end
    if seen_restarts != len(restarts):
        raise MalformedIndexError(f"{what} has restart points that are not entry boundaries")
