"""Fuzzing the checkpoint reader: whatever the bytes, only its typed errors come out.

Property-based (hypothesis) tests of the index parser (:mod:`tf2hf.tfckpt.sstable`), the
entry decoder (:mod:`tf2hf.tfckpt.bundle`) and :func:`open_checkpoint` plus ``read`` on
files. Inputs are random bytes, random protobuf messages, and real indexes (every fixture and
shared checkpoint) mutated by bit flips, truncation, insertion, deletion and splices from other
indexes — at the file level, and inside a data block whose crc32c is then made valid again, so
that parsing gets past the checksums into block structure, entry decoding and tensor bounds.
The only exceptions allowed are :class:`~tf2hf.errors.CheckpointFormatError` and its
subclasses; anything else (IndexError, ValueError, MemoryError, a numpy error...) would reach
the user as a crash.

Every property runs twice: a deterministic CI-sized run (a few thousand cases in all, a few
seconds), and a long randomised run marked ``fuzz`` (``pytest -m fuzz``; deselected by
default; ``TF2HF_FUZZ_EXAMPLES`` sets the examples per property). The number of cases tried is
printed at the end of the module.
"""

from __future__ import annotations

import math
from pathlib import Path

import cramjam
import numpy as np
import pytest
from hypothesis import strategies as st

from fuzzing import Fuzzing
from support import FIXTURES, SHARED
from test_checkpoint_reader import (
    MAGIC,
    _block,
    _entry,
    _good_pairs,
    _header,
    _pb_bytes,
    _table,
    _table_around,
    _varint,
)
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt.bundle import MAX_ELEMENTS, MAX_RANK, BundleEntry, parse_entry, parse_header
from tf2hf.tfckpt.sstable import MalformedIndexError, _iter_block, read_table, read_varint
from tf2hf.errors import CheckpointFormatError

FUZZ = Fuzzing("fuzz")
twice = FUZZ.twice
report = FUZZ.report_fixture()


# --- real indexes to mutate ------------------------------------------------------------------


def _real_indexes() -> list[tuple[Path, bytes]]:
    """(index path, bytes) of every fixture and shared checkpoint index."""
    paths = sorted(FIXTURES.glob("*/*.index"))
    if SHARED.exists():
        paths += sorted(SHARED.glob("*/*/*.index"))
    return [(p, p.read_bytes()) for p in paths if p.stat().st_size < 1 << 20]


REAL = _real_indexes()
DONORS = [raw for _, raw in REAL]


def _data_blocks(raw: bytes) -> list[bytes]:
    """The data blocks (contents, without trailer) of a valid index, as TensorFlow wrote them."""
    end = len(raw) - 8
    pos = len(raw) - 48
    _meta_offset, pos = read_varint(raw, pos, end)
    _meta_size, pos = read_varint(raw, pos, end)
    index_offset, pos = read_varint(raw, pos, end)
    index_size, pos = read_varint(raw, pos, end)
    blocks = []
    for _separator, handle in _iter_block(raw[index_offset : index_offset + index_size], "index block"):
        offset, hpos = read_varint(handle, 0, len(handle))
        size, _ = read_varint(handle, hpos, len(handle))
        blocks.append(raw[offset : offset + size])
    return blocks


BLOCKS = [(path, block) for path, raw in REAL for block in _data_blocks(raw)]


def _plain(block: bytes, raw: bytes) -> bytes:
    """A data block's entries: stored blocks of snappy-compressed indexes are decompressed."""
    at = raw.find(block)
    if raw[at + len(block)] == 1:
        return bytes(cramjam.snappy.decompress_raw(block))
    return block


# Every real data block, uncompressed, to be compressed again (mutated before or after).
PLAIN_BLOCKS = [(path, _plain(block, raw)) for path, raw in REAL for block in _data_blocks(raw)]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _place(fuzz_dir: Path, source: Path, index_bytes: bytes) -> Path:
    """Write ``index_bytes`` as the index of a copy of ``source``'s checkpoint whose data shards
    are links to the real ones (read-only), so that reads reach real tensor bytes."""
    prefix_name = source.name[: -len(".index")]
    folder = fuzz_dir / f"{source.parent.parent.name}-{source.parent.name}"
    if not folder.exists():
        folder.mkdir()
        for shard in source.parent.glob(f"{prefix_name}.data-*"):
            (folder / shard.name).symlink_to(shard)
    (folder / source.name).write_bytes(index_bytes)
    return folder / prefix_name


def _open_and_read_all(prefix: Path) -> None:
    """Open and read every variable; only CheckpointFormatError (or a subclass) may escape."""
    try:
        with open_checkpoint(prefix) as ckpt:
            for name, info in ckpt.variables.items():
                try:
                    array = ckpt.read(name)
                except CheckpointFormatError:
                    continue
                assert array.shape == info.shape
                assert array.size == math.prod(info.shape)
    except CheckpointFormatError:
        pass


# --- mutations ------------------------------------------------------------------------------

INTERESTING_BYTES = st.one_of(st.sampled_from([0, 1, 2, 5, 0x7F, 0x80, 0xFF]), st.integers(0, 255))
OPERATIONS = ("flip", "set", "truncate", "delete", "insert", "splice", "duplicate")


def _mutate(draw, raw: bytes, max_ops: int = 4) -> bytes:
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(OPERATIONS))
        if not data:
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(INTERESTING_BYTES)
        elif op == "truncate":
            del data[pos:]
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "splice":
            donor = draw(st.sampled_from(DONORS))
            start = draw(st.integers(0, len(donor) - 1))
            data[pos : pos + draw(st.integers(1, 64))] = donor[start : start + draw(st.integers(1, 64))]
        else:  # duplicate
            length = draw(st.integers(1, 32))
            data[pos:pos] = data[pos : pos + length]
    return bytes(data)


# --- whole files ----------------------------------------------------------------------------


def check_random_index_bytes(fuzz_dir, raw, with_magic):
    prefix = fuzz_dir / "random"
    prefix.with_name("random.index").write_bytes(raw + (MAGIC if with_magic else b""))
    _open_and_read_all(prefix)


test_random_index_bytes, test_random_index_bytes_long = twice(
    300, raw=st.binary(max_size=400), with_magic=st.booleans()
)(check_random_index_bytes)


def check_mutated_real_index(fuzz_dir, data):
    source, raw = data.draw(st.sampled_from(REAL))
    _open_and_read_all(_place(fuzz_dir, source, _mutate(data.draw, raw)))


test_mutated_real_index, test_mutated_real_index_long = twice(500, data=st.data())(check_mutated_real_index)


# --- behind a valid crc32c: block structure, keys, entries, tensor bounds ---------------------------


def check_mutated_real_block(fuzz_dir, data):
    """A real data block, mutated, then given a correct trailer: parsing goes past the crc."""
    source, block = data.draw(st.sampled_from(BLOCKS))
    _open_and_read_all(_place(fuzz_dir, source, _table_around(_mutate(data.draw, block), b"\xff")))


test_mutated_real_block, test_mutated_real_block_long = twice(600, data=st.data())(check_mutated_real_block)


def check_mutated_snappy_block(fuzz_dir, data):
    """A real block, mutated, snappy-compressed, with a correct trailer (type 1): the entries
    behind a valid decompression are parsed with every bound check."""
    source, block = data.draw(st.sampled_from(PLAIN_BLOCKS))
    packed = bytes(cramjam.snappy.compress_raw(_mutate(data.draw, block)))
    _open_and_read_all(_place(fuzz_dir, source, _table_around(packed, b"\xff", kind=1)))


test_mutated_snappy_block, test_mutated_snappy_block_long = twice(300, data=st.data())(check_mutated_snappy_block)


def check_mutated_snappy_bytes(fuzz_dir, data):
    """The compressed bytes themselves mutated (preamble, tags, offsets), behind a valid crc:
    the decompressor and the size bounds see garbage."""
    source, block = data.draw(st.sampled_from(PLAIN_BLOCKS))
    packed = _mutate(data.draw, bytes(cramjam.snappy.compress_raw(block)))
    _open_and_read_all(_place(fuzz_dir, source, _table_around(packed, b"\xff", kind=1)))


test_mutated_snappy_bytes, test_mutated_snappy_bytes_long = twice(300, data=st.data())(check_mutated_snappy_bytes)


def check_mutated_handmade_block(fuzz_dir, data):
    """The test writer's block (a restart at every entry), bytes overwritten with edge values."""
    pairs, payload = _good_pairs()
    block = bytearray(_block(pairs))
    for _ in range(data.draw(st.integers(1, 6))):
        block[data.draw(st.integers(0, len(block) - 1))] = data.draw(INTERESTING_BYTES)
    prefix = fuzz_dir / "model.ckpt-1"
    prefix.with_name("model.ckpt-1.index").write_bytes(_table_around(bytes(block), b"\xff"))
    prefix.with_name("model.ckpt-1.data-00000-of-00001").write_bytes(payload)
    _open_and_read_all(prefix)


test_mutated_handmade_block, test_mutated_handmade_block_long = twice(200, data=st.data())(check_mutated_handmade_block)


# Field values that sit on the edges of what the reader must check.
WILD_INT = st.one_of(
    st.integers(-3, 40),
    st.integers(0, 1 << 20),
    st.sampled_from([2**31 - 1, 2**31, 2**32, 2**40, 2**40 + 1, 2**62, 2**63 - 1, -1, -(2**31), -(2**63)]),
)


def check_edited_real_entries(fuzz_dir, data):
    """Real entries with fields replaced by wild values, re-encoded into a valid table, read
    against the real data shard: every bounds check of ``read`` is exercised."""
    source, raw = data.draw(st.sampled_from(REAL))
    pairs = read_table(raw)
    count = len(pairs) - 1
    if count < 1:
        return
    edited: dict[int, dict] = {}
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(1, count))
        if at not in edited:
            entry = parse_entry(pairs[at][1])
            edited[at] = dict(dtype=entry.dtype, shape=entry.shape, offset=entry.offset, size=entry.size,
                              crc=entry.crc32c, shard=entry.shard_id)
        fields = edited[at]
        field = data.draw(st.sampled_from(["dtype", "shape", "offset", "size", "crc", "shard"]))
        if field == "shape":
            fields["shape"] = tuple(data.draw(st.lists(WILD_INT, max_size=6)))
        elif field == "crc":
            fields["crc"] = data.draw(st.integers(0, 2**32 - 1))
        else:
            fields[field] = data.draw(WILD_INT)
        pairs[at] = (pairs[at][0], _entry(**fields))
    if data.draw(st.booleans()):
        pairs[0] = (b"", _header(num_shards=data.draw(st.sampled_from([0, 1, 2, 3, -1, 100_001]))))
    _open_and_read_all(_place(fuzz_dir, source, _table(pairs)))


test_edited_real_entries, test_edited_real_entries_long = twice(400, data=st.data())(check_edited_real_entries)


# --- the decoders on their own ------------------------------------------------------------------


@st.composite
def protobuf_fields(draw) -> bytes:
    """Random protobuf wire data: plausible fields (1-8) with any wire type, and some junk."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 8))):
        field = draw(st.one_of(st.integers(1, 8), st.integers(0, 1 << 30)))
        wire = draw(st.one_of(st.sampled_from([0, 2, 5]), st.integers(0, 7)))
        out += _varint(field << 3 | wire)
        if wire == 0:
            out += _varint(draw(WILD_INT))
        elif wire == 1:
            out += draw(st.binary(min_size=0, max_size=8))
        elif wire == 2:
            inner = draw(st.one_of(st.binary(max_size=24), st.builds(
                lambda dims: b"".join(_pb_bytes(2, _varint(1 << 3) + _varint(d)) for d in dims),
                st.lists(WILD_INT, max_size=8))))
            length = draw(st.one_of(st.just(len(inner)), st.integers(0, 1 << 40)))
            out += _varint(length) + inner
        elif wire == 5:
            out += draw(st.binary(min_size=0, max_size=4))
        if draw(st.integers(0, 9)) == 0:
            out += draw(st.binary(max_size=4))
    return bytes(out)


def _valid_entry(entry: BundleEntry) -> None:
    assert entry.dtype > 0 and entry.shard_id >= 0 and entry.offset >= 0 and entry.size >= 0
    assert len(entry.shape) <= MAX_RANK and all(d >= 0 for d in entry.shape)
    assert math.prod(d for d in entry.shape if d) <= MAX_ELEMENTS
    assert 0 <= entry.crc32c < 2**32


def check_parse_entry(raw):
    try:
        entry = parse_entry(raw)
    except MalformedIndexError:
        return
    _valid_entry(entry)
    if 0 in entry.shape:
        assert np.zeros(entry.shape, dtype=np.float32).size == 0  # how the reader builds empty tensors


test_parse_entry, test_parse_entry_long = twice(500, raw=st.one_of(protobuf_fields(), st.binary(max_size=64)))(
    check_parse_entry
)


def check_parse_header(raw):
    try:
        header = parse_header(raw)
    except MalformedIndexError:
        return
    assert -(2**31) <= header.num_shards < 2**31


test_parse_header, test_parse_header_long = twice(200, raw=st.one_of(protobuf_fields(), st.binary(max_size=48)))(
    check_parse_header
)


def check_varint(value, raw):
    encoded = _varint(value)
    assert read_varint(encoded, 0, len(encoded)) == (value, len(encoded))
    try:
        decoded, end = read_varint(raw, 0, len(raw))
    except MalformedIndexError:
        return
    assert 0 <= decoded < 2**64 and 1 <= end <= min(len(raw), 10)


test_varint, test_varint_long = twice(200, value=st.integers(0, 2**64 - 1), raw=st.binary(max_size=12))(check_varint)


def check_entry_roundtrip(dtype, shape, offset, size, crc, shard):
    """What the writer encodes, the decoder gives back."""
    entry = parse_entry(_entry(dtype, tuple(shape), offset, size, crc, shard))
    assert (entry.dtype, entry.shape, entry.offset, entry.size, entry.crc32c, entry.shard_id) == (
        dtype, tuple(shape), offset, size, crc, shard)


test_entry_roundtrip, test_entry_roundtrip_long = twice(
    100,
    dtype=st.integers(1, 33),
    shape=st.lists(st.integers(1, 1 << 10), max_size=4),
    offset=st.integers(0, 2**63 - 1),
    size=st.integers(0, 2**63 - 1),
    crc=st.integers(0, 2**32 - 1),
    shard=st.integers(0, 2**31 - 1),
)(check_entry_roundtrip)


def test_there_are_real_indexes_to_mutate():
    assert len(REAL) >= 10 and len(BLOCKS) >= len(REAL)
    for path, raw in REAL:
        assert len(read_table(raw)) > 1, path
