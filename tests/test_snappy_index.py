"""Snappy-compressed index blocks (table block type 1), as real releases were written.

TensorFlow writes bundle indexes uncompressed, but its table reader accepts snappy blocks, and
Google's albert_tiny_zh_google release (among others) has them. Here a checkpoint written by
TF's own SaveV2 has its index re-encoded with every block snappy-compressed by a real snappy
compressor (cramjam's); TensorFlow and tf2hf must then read the same tensors.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cramjam
import numpy as np
import pytest

from support import SHARED
from test_checkpoint_reader import MAGIC, _block, _masked_crc, _varint
from tf2hf.errors import CheckpointFormatError
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt.sstable import read_table


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


def _snappy_table(pairs: list[tuple[bytes, bytes]], per_block: int, forged_first: bytes | None = None) -> bytes:
    """A table with data blocks of ``per_block`` entries, every block (data, metaindex and
    index) snappy-compressed with its crc over the compressed bytes, as LevelDB writes it.
    ``forged_first`` replaces the stored bytes of the first data block."""
    out = bytearray()

    def put(contents: bytes | None, stored: bytes | None = None) -> bytes:
        packed = stored if stored is not None else bytes(cramjam.snappy.compress_raw(contents))
        handle = _varint(len(out)) + _varint(len(packed))
        out.extend(packed + b"\x01" + struct.pack("<I", _masked_crc(packed + b"\x01")))
        return handle

    index = []
    for start in range(0, len(pairs), per_block):
        chunk = pairs[start:start + per_block]
        stored = forged_first if start == 0 else None
        index.append((chunk[-1][0], put(_block(chunk), stored)))
    meta_handle = put(_block([]))
    index_handle = put(_block(index))
    return bytes(out) + (meta_handle + index_handle).ljust(40, b"\x00") + MAGIC


@pytest.mark.tf
def test_snappy_index_reads_as_tensorflow_reads_it(tf, tmp_path):
    rng = np.random.default_rng(7)
    tensors = {
        "bert/embeddings/word_embeddings": rng.standard_normal((50, 16)).astype(np.float32),
        "bert/encoder/layer_0/attention/self/query/kernel": rng.standard_normal((16, 16)).astype(np.float32),
        "bert/encoder/layer_0/attention/self/query/bias": np.zeros(16, np.float32),  # compresses well
        "global_step": np.array(1234, np.int64),
    }
    prefix = tmp_path / "model.ckpt-1234"
    names = list(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    index = prefix.with_name(prefix.name + ".index")
    pairs = read_table(index.read_bytes())
    index.write_bytes(_snappy_table(pairs, per_block=2))

    oracle = tf.train.load_checkpoint(str(prefix))
    with open_checkpoint(prefix) as ckpt:
        assert sorted(ckpt.variables) == sorted(oracle.get_variable_to_shape_map())
        for name in ckpt.variables:
            np.testing.assert_array_equal(ckpt.read(name), oracle.get_tensor(name))
            np.testing.assert_array_equal(ckpt.read(name), tensors[name])


def test_a_declared_size_beyond_what_snappy_can_encode_is_refused(tmp_path):
    # 2 GiB declared by a 7-byte block: refused before anything is allocated.
    prefix = tmp_path / "model.ckpt-1"
    forged = _varint(1 << 31) + b"\x00\x00"
    prefix.with_name("model.ckpt-1.index").write_bytes(_snappy_table([(b"", b"")], 1, forged_first=forged))
    with pytest.raises(CheckpointFormatError) as caught:
        open_checkpoint(prefix)
    assert str(caught.value) == (
        f"{prefix}.index: not a valid TF checkpoint index (data block at offset 0 declares "
        f"2147483648 bytes once decompressed, more than 7 compressed bytes can hold); "
        "the file is damaged or truncated, copy it again"
    )


@pytest.mark.parametrize("name", ["34127chi-albert_zh_sr-albert_tiny_zh_google", "rohan400-distilbert-squad-model.ckpt-6910"])
def test_real_snappy_indexes_are_read(name):
    folder = SHARED / "real-index" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is not available")
    raw = next(folder.glob("*.index")).read_bytes()
    # The file really is snappy-compressed: the first data block starts at offset 0, and the
    # first entry of the (uncompressed) index block holds its size; its trailer says type 1.
    index_offset, index_size = _footer_index_handle(raw)
    size = _first_handle_size(raw[index_offset:index_offset + index_size])
    assert raw[size] == 1
    with open_checkpoint(folder) as ckpt:
        assert len(ckpt.variables) > 90


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _footer_index_handle(raw: bytes) -> tuple[int, int]:
    pos = len(raw) - 48
    _, pos = _read_varint(raw, pos)
    _, pos = _read_varint(raw, pos)
    offset, pos = _read_varint(raw, pos)
    size, _ = _read_varint(raw, pos)
    return offset, size


def _first_handle_size(index_block: bytes) -> int:
    # Entry: shared (0), non_shared, value_len, key, value = varint offset (0), varint size.
    _, pos = _read_varint(index_block, 0)
    key_len, pos = _read_varint(index_block, pos)
    _, pos = _read_varint(index_block, pos)
    offset, pos = _read_varint(index_block, pos + key_len)
    assert offset == 0
    return _read_varint(index_block, pos)[0]
