"""The TensorFlow-free checkpoint reader, checked against TensorFlow itself.

TensorFlow is the oracle: checkpoints are written with it, then every name, dtype, shape and
byte our reader returns is compared with what ``tf.train.load_checkpoint`` returns. Error
cases assert the exact one-line message a user will see.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import crc32c
import numpy as np
import pytest

from tf2hf.tfckpt import Checkpoint, TensorInfo, open_checkpoint
from tf2hf.errors import (
    CheckpointFormatError,
    CrcMismatchError,
    MissingShardError,
    ShortShardError,
    UnsupportedDtypeError,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoints"
MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)


# --- TensorFlow, the oracle --------------------------------------------------------------


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


def _save(tf, prefix: Path, tensors: dict[str, object]) -> Path:
    """Write one single-shard V2 bundle with TF's own SaveV2 kernel."""
    names = list(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tensors[n] for n in names],
    )
    return prefix


def _dtype_zoo(tf) -> dict[str, object]:
    """Variables of every readable dtype: scalars, empty tensors, odd and large-ish shapes."""
    rng = np.random.default_rng(1234)
    special = np.array([np.nan, -np.inf, np.inf, -0.0, 1e-40, 65504.0], dtype=np.float32)
    zoo: dict[str, object] = {}
    floats = {
        "float32": tf.float32, "float16": tf.float16, "float64": tf.float64, "bfloat16": tf.bfloat16
    }
    for name, dtype in floats.items():
        values = rng.standard_normal((37, 11)).astype(np.float32)
        values.flat[: special.size] = special
        zoo[f"floats/{name}/matrix"] = tf.cast(tf.constant(values), dtype)
        zoo[f"floats/{name}/scalar"] = tf.cast(tf.constant(-2.5), dtype)
        zoo[f"floats/{name}/empty"] = tf.zeros((0, 4), dtype)
    ints = {
        "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
        "int32": np.int32, "int64": np.int64, "uint32": np.uint32, "uint64": np.uint64,
    }
    for name, np_type in ints.items():
        info = np.iinfo(np_type)
        values = rng.integers(info.min, info.max, size=(5, 3, 2), dtype=np_type, endpoint=True)
        values.flat[0], values.flat[1] = info.min, info.max
        zoo[f"ints/{name}/cube"] = tf.constant(values)
        zoo[f"ints/{name}/scalar"] = tf.constant(np_type(7))
        zoo[f"ints/{name}/empty"] = tf.constant(np.zeros((3, 0), np_type))
    zoo["bool/mask"] = tf.constant(rng.integers(0, 2, size=(4, 9)).astype(bool))
    zoo["bool/scalar"] = tf.constant(True)
    zoo["complex/c64"] = tf.constant((rng.standard_normal(6) + 1j).astype(np.complex64))
    zoo["bert/encoder/layer_0/attention/self/query/kernel"] = tf.constant(
        rng.standard_normal((512, 768)).astype(np.float32)
    )
    zoo["big/int64"] = tf.constant(rng.integers(-(2**62), 2**62, size=200_003, dtype=np.int64))
    zoo["global_step"] = tf.constant(np.int64(123456789012))
    zoo["名前/ünïcode"] = tf.constant([1.0, 2.0])
    zoo["rank5"] = tf.constant(rng.standard_normal((2, 1, 3, 1, 2)).astype(np.float32))
    return zoo


@pytest.fixture(scope="module")
def zoo_ckpt(tf, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    return _save(tf, folder / "model.ckpt-7", _dtype_zoo(tf))


@pytest.fixture(scope="module")
def merged_ckpt(tf, tmp_path_factory) -> Path:
    """Two bundles merged by TF into one checkpoint with 2 data shards.

    The second part has thousands of long-named variables so that the index grows past
    TF's 256 KiB table block size and is split over several data blocks.
    """
    folder = tmp_path_factory.mktemp("merged")
    rng = np.random.default_rng(7)
    first = _save(tf, folder / "parts" / "part-00000-of-00002", {
        "alpha/kernel": tf.constant(rng.standard_normal((16, 8)).astype(np.float32)),
        "alpha/kernel/adam_m": tf.constant(rng.standard_normal((16, 8)).astype(np.float32)),
        "beta/steps": tf.constant(np.arange(10, dtype=np.int32)),
    })
    # Scrambled name parts defeat most of the index's key prefix compression.
    many = {
        f"encoder/block_{i:05d}/{i * 7919 % 10007:05d}_sub_scope/{i * 104729 % 65521:05x}/weights":
            tf.constant(np.full((2,), i, dtype=np.float32))
        for i in range(6000)
    }
    many["omega/half"] = tf.constant(rng.standard_normal((3, 3)).astype(np.float16))
    second = _save(tf, folder / "parts" / "part-00001-of-00002", many)
    prefix = folder / "model.ckpt-1000"
    tf.raw_ops.MergeV2Checkpoints(
        checkpoint_prefixes=[str(first), str(second)], destination_prefix=str(prefix)
    )
    return prefix


def _assert_matches_tf(tf, prefix: Path) -> Checkpoint:
    """Every variable: same names, dtypes, shapes and bytes as TensorFlow reads."""
    oracle = tf.train.load_checkpoint(str(prefix))
    tf_dtypes = oracle.get_variable_to_dtype_map()
    tf_shapes = oracle.get_variable_to_shape_map()
    ckpt = open_checkpoint(prefix)
    assert list(ckpt.variables) == sorted(tf_dtypes)
    for name, info in ckpt.variables.items():
        assert info.name == name
        assert info.dtype == tf_dtypes[name].name, name
        assert list(info.shape) == tf_shapes[name], name
        ours = ckpt.read(name)
        theirs = np.asarray(oracle.get_tensor(name))
        if info.dtype == "bfloat16":
            theirs = theirs.astype(np.float32)
        assert ours.dtype == theirs.dtype, name
        assert ours.shape == theirs.shape, name
        assert ours.flags.c_contiguous and ours.flags.aligned, name
        assert ours.tobytes() == theirs.tobytes(), name
        assert info.nbytes == info.size and info.numel == theirs.size
    return ckpt


# --- agreement with TensorFlow -----------------------------------------------------------


@pytest.mark.tf
def test_every_dtype_matches_tensorflow(tf, zoo_ckpt):
    with _assert_matches_tf(tf, zoo_ckpt) as ckpt:
        dtypes = {info.dtype for info in ckpt.variables.values()}
        assert {"float32", "float16", "bfloat16", "float64", "int32", "int64", "bool",
                "int8", "uint8"} <= dtypes
        assert ckpt.read("floats/float16/matrix").dtype == np.float16
        assert ckpt.read("floats/bfloat16/matrix").dtype == np.float32
        assert ckpt.read("bool/mask").dtype == np.bool_
        assert ckpt.read("floats/float32/scalar").shape == ()
        assert ckpt.read("ints/int32/empty").shape == (3, 0)


@pytest.mark.tf
def test_bfloat16_is_widened_exactly(tf, zoo_ckpt):
    oracle = tf.train.load_checkpoint(str(zoo_ckpt))
    expected = tf.cast(oracle.get_tensor("floats/bfloat16/matrix"), tf.float32).numpy()
    with open_checkpoint(zoo_ckpt) as ckpt:
        got = ckpt.read("floats/bfloat16/matrix")
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got.flat[0]) and np.isneginf(got.flat[1])
    assert not (got.view(np.uint32) & 0xFFFF).any()


@pytest.mark.tf
def test_tensor_info_and_files(zoo_ckpt):
    with open_checkpoint(zoo_ckpt) as ckpt:
        assert ckpt.prefix == zoo_ckpt
        assert ckpt.index_path == zoo_ckpt.with_name("model.ckpt-7.index")
        assert ckpt.shard_paths == [zoo_ckpt.with_name("model.ckpt-7.data-00000-of-00001")]
        assert ckpt.files == [ckpt.index_path, *ckpt.shard_paths]
        assert "" not in ckpt.variables
        assert list(ckpt.variables) == sorted(ckpt.variables)
        info = ckpt.variables["bert/encoder/layer_0/attention/self/query/kernel"]
        assert isinstance(info, TensorInfo)
        assert (info.dtype, info.shape, info.shard) == ("float32", (512, 768), 0)
        assert info.numel == 512 * 768 and info.nbytes == info.size == 512 * 768 * 4
        with pytest.raises(AttributeError):
            info.size = 0  # frozen


@pytest.mark.tf
def test_arrays_are_read_only_or_own_their_memory_and_outlive_close(zoo_ckpt):
    ckpt = open_checkpoint(zoo_ckpt)
    arrays = {name: ckpt.read(name) for name in ckpt.variables}
    copies = {name: array.copy() for name, array in arrays.items()}
    ckpt.close()
    for name, array in arrays.items():
        assert not array.flags.writeable or array.flags.owndata, name
        assert array.tobytes() == copies[name].tobytes(), name
    ckpt.close()  # closing twice is harmless


@pytest.mark.tf
def test_merged_multi_shard_matches_tensorflow(tf, merged_ckpt):
    assert merged_ckpt.with_name("model.ckpt-1000.index").stat().st_size > 300_000
    with _assert_matches_tf(tf, merged_ckpt) as ckpt:
        assert [p.name for p in ckpt.shard_paths] == [
            "model.ckpt-1000.data-00000-of-00002",
            "model.ckpt-1000.data-00001-of-00002",
        ]
        assert all(p.stat().st_size > 0 for p in ckpt.shard_paths)
        shards = {info.shard for info in ckpt.variables.values()}
        assert shards == {0, 1}
        assert ckpt.variables["alpha/kernel"].shard != ckpt.variables["omega/half"].shard


# --- real checkpoints written by other people's code ---------------------------------------


def _shared(relative: str) -> Path:
    folder = SHARED / relative
    if not folder.is_dir():
        pytest.skip(f"{folder} is not available")
    return folder


REAL_COMPLETE = [
    "real/t2t-2shard-nonbert",
    "real/keras-bert-tiny",
    "upstream/bert_pre",
    "upstream/albert_g1i1",
    "upstream/bright_postln",
]
REAL_INDEX_ONLY = sorted(p.name for p in (SHARED / "real-index").glob("*") if p.is_dir()) or [
    "heytgala-bert_tiny_squad"
]


@pytest.mark.tf
@pytest.mark.parametrize("relative", REAL_COMPLETE)
def test_real_checkpoint_matches_tensorflow(tf, relative):
    folder = _shared(relative)
    with open_checkpoint(folder) as ckpt:
        prefix = ckpt.prefix
    with _assert_matches_tf(tf, prefix) as ckpt:
        assert len(ckpt.variables) > 0


def test_real_two_shard_checkpoint_uses_both_shards():
    folder = _shared("real/t2t-2shard-nonbert")
    with open_checkpoint(folder) as ckpt:
        assert len(ckpt.shard_paths) == 2
        assert {info.shard for info in ckpt.variables.values()} == {0, 1}
        assert {info.dtype for info in ckpt.variables.values()} >= {"int32", "float32", "int64"}
        assert any(name.endswith("/Adam_1") for name in ckpt.variables)
        for name in ckpt.variables:
            ckpt.read(name)


def _vars_txt(folder: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    (listing,) = folder.glob("*.VARS.txt")
    result = {}
    for line in listing.read_text().splitlines():
        name, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("[]").split(",") if d.strip())
        result[name] = (dims, dtype)
    return result


@pytest.mark.parametrize("name", REAL_INDEX_ONLY)
def test_real_index_without_data_lists_variables(name):
    folder = _shared(f"real-index/{name}")
    with open_checkpoint(folder) as ckpt:
        listed = {n: (i.shape, i.dtype) for n, i in ckpt.variables.items()}
        # Folders added in 2026-12 carry no VARS.txt; test_real_index_lists_what_tensorflow_lists
        # holds every folder's listing against TensorFlow's own.
        if list(folder.glob("*.VARS.txt")):
            assert listed == _vars_txt(folder)
        # TF2 object-based checkpoints start with the string _CHECKPOINTABLE_OBJECT_GRAPH.
        first = next(n for n, i in ckpt.variables.items() if i.dtype != "string")
        shard = ckpt.shard_paths[ckpt.variables[first].shard]
        count = len(ckpt.shard_paths)
        assert not shard.exists()
        with pytest.raises(MissingShardError) as caught:
            ckpt.read(first)
    assert str(caught.value) == (
        f"{shard}: data shard {ckpt.variables[first].shard + 1} of {count} is missing (it holds variable '{first}'); copy every "
        f"{ckpt.prefix.name}.data-*-of-{count:05d} file next to {ckpt.prefix.name}.index"
    )


@pytest.mark.tf
@pytest.mark.parametrize("name", REAL_INDEX_ONLY)
def test_real_index_lists_what_tensorflow_lists(tf, name):
    folder = _shared(f"real-index/{name}")
    with open_checkpoint(folder) as ckpt:
        oracle = tf.train.load_checkpoint(str(ckpt.prefix))
        tf_dtypes = oracle.get_variable_to_dtype_map()
        tf_shapes = oracle.get_variable_to_shape_map()
        assert list(ckpt.variables) == sorted(tf_dtypes)
        for var, info in ckpt.variables.items():
            assert (info.dtype, list(info.shape)) == (tf_dtypes[var].name, tf_shapes[var])


# --- damaged data shards -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ckpt(tf, tmp_path_factory) -> Path:
    """Three variables in one shard: two float vectors and a string tensor, in key order."""
    folder = tmp_path_factory.mktemp("small")
    return _save(tf, folder / "model.ckpt-5", {
        "a/first": tf.constant(np.arange(64, dtype=np.float32)),
        "b/second": tf.constant(np.arange(64, dtype=np.float32) * -1.5),
        "c/text": tf.constant(["not", "a", "weight"]),
    })


def _copy(prefix: Path, destination: Path, with_data: bool = True) -> Path:
    """Copy a checkpoint into a writable folder (the shared files are read-only)."""
    destination.mkdir(parents=True, exist_ok=True)
    for source in prefix.parent.glob(prefix.name + ".*"):
        if with_data or not source.name.startswith(prefix.name + ".data-"):
            target = destination / source.name
            shutil.copyfile(source, target)
            target.chmod(0o644)
    return destination / prefix.name


@pytest.mark.tf
def test_missing_shard_message(small_ckpt, tmp_path):
    prefix = _copy(small_ckpt, tmp_path, with_data=False)
    with open_checkpoint(prefix) as ckpt:  # planning needs no data
        assert list(ckpt.variables) == ["a/first", "b/second", "c/text"]
        with pytest.raises(MissingShardError) as caught:
            ckpt.read("b/second")
    assert str(caught.value) == (
        f"{tmp_path}/model.ckpt-5.data-00000-of-00001: data shard 1 of 1 is missing "
        "(it holds variable 'b/second'); copy every model.ckpt-5.data-*-of-00001 file "
        "next to model.ckpt-5.index"
    )


@pytest.mark.tf
def test_short_shard_message_and_earlier_tensor_still_reads(small_ckpt, tmp_path):
    prefix = _copy(small_ckpt, tmp_path)
    shard = tmp_path / "model.ckpt-5.data-00000-of-00001"
    with open_checkpoint(prefix) as ckpt:
        second = ckpt.variables["b/second"]
    with shard.open("r+b") as handle:
        handle.truncate(second.offset + 10)
    with open_checkpoint(prefix) as ckpt:
        np.testing.assert_array_equal(ckpt.read("a/first"), np.arange(64, dtype=np.float32))
        with pytest.raises(ShortShardError) as caught:
            ckpt.read("b/second")
    assert str(caught.value) == (
        f"{shard}: data shard is truncated ({second.offset + 10} bytes, but variable "
        f"'b/second' needs bytes {second.offset} to {second.offset + 256}); copy the file again"
    )


@pytest.mark.tf
def test_crc_mismatch_message_and_other_tensor_still_reads(small_ckpt, tmp_path):
    prefix = _copy(small_ckpt, tmp_path)
    shard = tmp_path / "model.ckpt-5.data-00000-of-00001"
    with open_checkpoint(prefix) as ckpt:
        second = ckpt.variables["b/second"]
    raw = bytearray(shard.read_bytes())
    raw[second.offset + 100] ^= 0x01
    shard.write_bytes(bytes(raw))
    with open_checkpoint(prefix) as ckpt:
        np.testing.assert_array_equal(ckpt.read("a/first"), np.arange(64, dtype=np.float32))
        with pytest.raises(CrcMismatchError) as caught:
            ckpt.read("b/second")
    assert str(caught.value) == (
        f"{shard}: variable 'b/second' is corrupt (the crc32c of its 256 bytes at offset "
        f"{second.offset} does not match the index); the file was damaged, copy it again"
    )


@pytest.mark.tf
def test_string_tensor_message(small_ckpt):
    with open_checkpoint(small_ckpt) as ckpt:
        assert ckpt.variables["c/text"].dtype == "string"
        with pytest.raises(UnsupportedDtypeError) as caught:
            ckpt.read("c/text")
    assert str(caught.value) == (
        f"{small_ckpt}.index: variable 'c/text' has dtype string, which tf2hf cannot read as "
        "a weight (only numeric and bool tensors can be read); leave it out of the conversion"
    )


@pytest.mark.tf
def test_partitioned_variable_is_listed_but_refused(tf, tmp_path):
    prefix = tmp_path / "model.ckpt-1"
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=["emb", "emb", "plain"],
        shape_and_slices=["4 2 0,2:-", "4 2 2,2:-", ""],
        tensors=[tf.ones((2, 2)), tf.zeros((2, 2)), tf.constant([1.0])],
    )
    with open_checkpoint(prefix) as ckpt:
        assert list(ckpt.variables) == ["emb", "plain"]
        assert ckpt.variables["emb"].shape == (4, 2)
        assert ckpt.read("plain").tolist() == [1.0]
        with pytest.raises(CheckpointFormatError) as caught:
            ckpt.read("emb")
    assert str(caught.value) == (
        f"{prefix}.index: variable 'emb' is a partitioned variable saved as 2 slices, which "
        "tf2hf does not read; re-save the checkpoint without a partitioner"
    )


# --- damaged index files -----------------------------------------------------------------


def _index_error(index: Path, detail: str) -> str:
    return (
        f"{index}: not a valid TF checkpoint index ({detail}); "
        "the file is damaged or truncated, copy it again"
    )


def _damage_index(prefix: Path, tmp_path: Path, damage) -> Path:
    copy = _copy(prefix, tmp_path)
    index = copy.with_name(copy.name + ".index")
    index.write_bytes(damage(index.read_bytes()))
    return index


@pytest.mark.tf
def test_truncated_index(small_ckpt, tmp_path):
    index = _damage_index(small_ckpt, tmp_path, lambda raw: raw[: len(raw) // 2])
    with pytest.raises(CheckpointFormatError) as caught:
        open_checkpoint(index)
    assert str(caught.value) == _index_error(index, "wrong magic number at the end of the file")


@pytest.mark.tf
def test_tiny_index(small_ckpt, tmp_path):
    index = _damage_index(small_ckpt, tmp_path, lambda raw: raw[-10:])
    with pytest.raises(CheckpointFormatError) as caught:
        open_checkpoint(index)
    assert str(caught.value) == _index_error(
        index, "the file is 10 bytes, shorter than the 48-byte table footer"
    )


@pytest.mark.tf
def test_wrong_magic(small_ckpt, tmp_path):
    index = _damage_index(small_ckpt, tmp_path, lambda raw: raw[:-1] + b"\x00")
    with pytest.raises(CheckpointFormatError) as caught:
        open_checkpoint(index)
    assert str(caught.value) == _index_error(index, "wrong magic number at the end of the file")


@pytest.mark.tf
def test_garbled_index_bytes(small_ckpt, tmp_path):
    def garble(raw: bytes) -> bytes:
        damaged = bytearray(raw)
        damaged[20] ^= 0xFF  # inside the first data block, which starts at offset 0
        return bytes(damaged)

    index = _damage_index(small_ckpt, tmp_path, garble)
    with pytest.raises(CheckpointFormatError) as caught:
        open_checkpoint(index)
    assert str(caught.value) == _index_error(index, "data block at offset 0 fails its crc32c check")


# --- hand-made indexes: cases TensorFlow never writes --------------------------------------
#
# A minimal writer for the same format, independent of the reader: restart at every entry,
# one data block. test_handmade_index_is_read_by_tensorflow proves TF accepts its output.


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative protobuf ints are sent as 64-bit two's complement
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _pb_int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _pb_bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _pb_fixed32(field: int, value: int) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<I", value)


def _masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _header(num_shards: int = 1, endianness: int = 0) -> bytes:
    return _pb_int(1, num_shards) + _pb_int(2, endianness) + _pb_bytes(3, _pb_int(1, 1))


def _entry(dtype: int, shape: tuple[int, ...], offset: int = 0, size: int = 0,
           crc: int = 0, shard: int = 0) -> bytes:
    dims = b"".join(_pb_bytes(2, _pb_int(1, d)) for d in shape)
    return (_pb_int(1, dtype) + _pb_bytes(2, dims) + _pb_int(3, shard) + _pb_int(4, offset)
            + _pb_int(5, size) + _pb_fixed32(6, crc))


def _block(pairs: list[tuple[bytes, bytes]]) -> bytes:
    body = bytearray()
    restarts = []
    for key, value in pairs:
        restarts.append(len(body))
        body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    restarts = restarts or [0]
    restart_array = struct.pack(f"<{len(restarts)}I", *restarts)
    return bytes(body) + restart_array + struct.pack("<I", len(restarts))


def _with_trailer(contents: bytes, kind: int = 0) -> bytes:
    return contents + bytes((kind,)) + struct.pack("<I", _masked_crc(contents + bytes((kind,))))


def _table_around(data_block: bytes, last_key: bytes, kind: int = 0) -> bytes:
    """A full table file: the given data block, an empty metaindex, the index, the footer."""
    data = _with_trailer(data_block, kind)
    meta = _with_trailer(_block([]))
    index = _with_trailer(_block([(last_key, _varint(0) + _varint(len(data_block)))]))
    meta_handle = _varint(len(data)) + _varint(len(meta) - 5)
    index_handle = _varint(len(data) + len(meta)) + _varint(len(index) - 5)
    return data + meta + index + (meta_handle + index_handle).ljust(40, b"\x00") + MAGIC


def _table(pairs: list[tuple[bytes, bytes]], kind: int = 0) -> bytes:
    return _table_around(_block(pairs), pairs[-1][0] if pairs else b"", kind)


def _handmade(folder: Path, pairs: list[tuple[bytes, bytes]], data: bytes | None = None,
              kind: int = 0) -> Path:
    prefix = folder / "model.ckpt-1"
    prefix.with_name("model.ckpt-1.index").write_bytes(_table(pairs, kind))
    if data is not None:
        prefix.with_name("model.ckpt-1.data-00000-of-00001").write_bytes(data)
    return prefix


def _good_pairs() -> tuple[list[tuple[bytes, bytes]], bytes]:
    first = np.arange(6, dtype=np.float32).tobytes()
    second = np.array([[1, -2], [3, -4]], dtype=np.int64).tobytes()
    pairs = [
        (b"", _header()),
        (b"layer/bias", _entry(1, (6,), 0, len(first), _masked_crc(first))),
        (b"layer/kernel", _entry(9, (2, 2), len(first), len(second), _masked_crc(second))),
    ]
    return pairs, first + second


@pytest.mark.tf
def test_handmade_index_is_read_by_tensorflow(tf, tmp_path):
    pairs, data = _good_pairs()
    prefix = _handmade(tmp_path, pairs, data)
    _assert_matches_tf(tf, prefix).close()


def test_handmade_index_reads(tmp_path):
    pairs, data = _good_pairs()
    with open_checkpoint(_handmade(tmp_path, pairs, data)) as ckpt:
        assert ckpt.read("layer/kernel").tolist() == [[1, -2], [3, -4]]
        assert ckpt.read("layer/bias").tolist() == [0, 1, 2, 3, 4, 5]


def _open_error(prefix: Path) -> str:
    with pytest.raises(CheckpointFormatError) as caught:
        open_checkpoint(prefix)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("pairs", "detail"),
    [
        ([(b"x", _entry(1, (1,)))], "no header entry"),
        ([(b"", _header(num_shards=0))], "the header says num_shards=0"),
        ([(b"", _header(num_shards=-3))], "the header says num_shards=-3"),
        ([(b"", _header(num_shards=100_001))], "the header says num_shards=100001"),
        ([(b"", _header(endianness=7))], "unknown byte order 7 in the header"),
        (
            [(b"", _header()), (b"huge", _entry(1, (2**21, 2**20)))],
            "a shape [2097152, 1048576] has more than 2**40 elements, which no real tensor has",
        ),
        ([(b"", _header()), (b"neg", _entry(1, (-1, 3)))],
         "a shape has the unknown or negative size -1"),
        ([(b"", _header()), (b"x", _entry(1, (1,), shard=1))],
         "variable 'x' is in shard 1, but the header says there are 1"),
        ([(b"", _header()), (b"x", _entry(1, (1,), offset=-5))],
         "an entry has a negative shard id, offset or size"),
        ([(b"", _header()), (b"x", _entry(0, (1,)))], "an entry has the invalid dtype 0"),
        ([(b"", _header()), (b"bad\xff", _entry(1, (1,)))],
         "variable name b'bad\\xff' is not valid UTF-8"),
        ([(b"", _header()), (b"b", _entry(1, ())), (b"a", _entry(1, ()))],
         "keys are not in strictly increasing order"),
        ([(b"", _header()), (b"a", _entry(1, ())), (b"a", _entry(1, ()))],
         "keys are not in strictly increasing order"),
        ([(b"", _header()), (b"x", _pb_int(1, 1) + b"\x12\x7f")],
         "a length-delimited protobuf field runs past its message"),
        ([(b"", _header()), (b"x", _pb_bytes(1, b"oops"))],
         "protobuf field 1 has the wrong wire type 2"),
    ],
)
def test_malformed_index_contents(tmp_path, pairs, detail):
    prefix = _handmade(tmp_path, pairs)
    assert _open_error(prefix) == _index_error(prefix.with_name("model.ckpt-1.index"), detail)


def test_unknown_compression_type_is_refused(tmp_path):
    # TF's table format knows no compression (0) and snappy (1); anything else is damage.
    pairs, _ = _good_pairs()
    prefix = _handmade(tmp_path, pairs, kind=2)
    assert _open_error(prefix) == _index_error(
        prefix.with_name("model.ckpt-1.index"),
        "data block at offset 0 uses compression type 2; "
        "only uncompressed (0) and snappy (1) blocks exist in TensorFlow's table format",
    )


def test_block_marked_snappy_that_is_not_snappy_is_refused(tmp_path):
    # The uncompressed bytes of a block whose trailer says snappy: its first byte (0, the
    # restart's shared length) reads as a declared size of 0, which its content contradicts.
    pairs, _ = _good_pairs()
    prefix = _handmade(tmp_path, pairs, kind=1)
    assert _open_error(prefix) == _index_error(
        prefix.with_name("model.ckpt-1.index"), "data block at offset 0 is not valid snappy data"
    )


def _raw_block(entries: list[bytes], restarts: list[int]) -> bytes:
    body = b"".join(entries)
    return body + struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))


def _raw_entry(shared: int, suffix: bytes, value: bytes, value_len: int | None = None) -> bytes:
    length = len(value) if value_len is None else value_len
    return _varint(shared) + _varint(len(suffix)) + _varint(length) + suffix + value


@pytest.mark.parametrize(
    ("entries", "restarts", "detail"),
    [
        (
            [_raw_entry(0, b"", _header()), _raw_entry(3, b"x", _entry(1, ()))],
            [0],
            "data block at offset 0 has an entry with an invalid shared key prefix",
        ),
        (
            [_raw_entry(0, b"", _header()), _raw_entry(0, b"x", _entry(1, ()), value_len=200)],
            [0],
            "data block at offset 0 has an entry that runs past the end of the block",
        ),
        (
            [_raw_entry(0, b"", _header()), _raw_entry(0, b"x", _entry(1, ()))],
            [0, 5],
            "data block at offset 0 has restart points that are not entry boundaries",
        ),
        (
            [_raw_entry(0, b"", _header()), _raw_entry(0, b"x", _entry(1, ()))],
            [1],
            "data block at offset 0 does not start at a restart point",
        ),
        ([_raw_entry(0, b"", _header())[:-1] + b"\xff" * 11], [0],
         "a number is encoded with too many bytes"),
    ],
)
def test_malformed_block_structure(tmp_path, entries, restarts, detail):
    index = tmp_path / "model.ckpt-1.index"
    index.write_bytes(_table_around(_raw_block(entries, restarts), b"x"))
    assert _open_error(index) == _index_error(index, detail)


def test_restart_count_larger_than_the_block(tmp_path):
    index = tmp_path / "model.ckpt-1.index"
    index.write_bytes(_table_around(b"\x00" * 8 + struct.pack("<I", 50), b"x"))
    assert _open_error(index) == _index_error(
        index, "data block at offset 0 claims 50 restart points, more than fit"
    )


def test_prefix_compressed_keys(tmp_path):
    """Keys that share a prefix with the previous key, restarting every two entries."""
    data = np.arange(3, dtype=np.int32).tobytes()
    value = _entry(3, (1,), 0, 4, _masked_crc(data[:4]))
    entries = [
        _raw_entry(0, b"", _header()),
        _raw_entry(0, b"bert/a", value),
        _raw_entry(0, b"bert/b", value),
        _raw_entry(5, b"c", value),
    ]
    restarts = [0, len(entries[0]) + len(entries[1])]
    prefix = tmp_path / "model.ckpt-1"
    table = _table_around(_raw_block(entries, restarts), b"bert/c")
    prefix.with_name("model.ckpt-1.index").write_bytes(table)
    prefix.with_name("model.ckpt-1.data-00000-of-00001").write_bytes(data)
    with open_checkpoint(prefix) as ckpt:
        assert list(ckpt.variables) == ["bert/a", "bert/b", "bert/c"]
        assert ckpt.read("bert/c").tolist() == [0]


def test_data_blocks_listed_twice_are_refused(tmp_path):
    pairs, _ = _good_pairs()
    block = _block(pairs)
    data = _with_trailer(block)
    handle = _varint(0) + _varint(len(block))
    index = _with_trailer(_block([(b"layer/bias", handle), (b"layer/kernel", handle)]))
    handles = _varint(0) + _varint(0) + _varint(len(data)) + _varint(len(index) - 5)
    path = tmp_path / "model.ckpt-1.index"
    path.write_bytes(data + index + handles.ljust(40, b"\x00") + MAGIC)
    assert _open_error(path) == _index_error(
        path, "data block at offset 0 overlaps the previous one"
    )


def test_big_endian_bundle_is_refused(tmp_path):
    prefix = _handmade(tmp_path, [(b"", _header(endianness=1))])
    assert _open_error(prefix) == (
        f"{prefix}.index: the checkpoint was written in big-endian byte order, which tf2hf does "
        "not read; re-save it on a little-endian machine"
    )


def test_oversized_index_is_refused_without_reading_it(tmp_path):
    index = tmp_path / "model.ckpt-1.index"
    with index.open("wb") as handle:
        handle.truncate(300 << 20)  # sparse: takes no disk space
    assert _open_error(index) == (
        f"{index}: the index is {300 << 20} bytes, far larger than any checkpoint index; "
        "pass the checkpoint's real .index file"
    )


def test_size_that_disagrees_with_shape(tmp_path):
    # Refused while parsing the index, before any size is derived from the shape.
    data = np.zeros(4, dtype=np.float32).tobytes()
    pairs = [(b"", _header()), (b"w", _entry(1, (2, 3), 0, len(data), _masked_crc(data)))]
    with pytest.raises(CheckpointFormatError) as caught:
        open_checkpoint(_handmade(tmp_path, pairs, data))
    assert str(caught.value) == (
        f"{tmp_path}/model.ckpt-1.index: variable 'w' is recorded with 16 bytes, but shape "
        "[2, 3] of float32 needs 24; the index is corrupt, copy it again"
    )


def test_empty_tensor_in_empty_shard(tmp_path):
    pairs = [(b"", _header()), (b"e", _entry(1, (0, 5), 0, 0, _masked_crc(b"")))]
    with open_checkpoint(_handmade(tmp_path, pairs, b"")) as ckpt:
        array = ckpt.read("e")
    assert array.shape == (0, 5) and array.dtype == np.float32


def test_unknown_dtype_is_listed_and_refused_on_read(tmp_path):
    pairs = [(b"", _header()), (b"f8", _entry(24, (3,), 0, 3, _masked_crc(b"abc"))),
             (b"future", _entry(99, (1,)))]
    with open_checkpoint(_handmade(tmp_path, pairs, b"abc")) as ckpt:
        assert ckpt.variables["f8"].dtype == "float8_e5m2"
        assert ckpt.variables["future"].dtype == "unknown_dtype_99"
        for name in ("f8", "future"):
            with pytest.raises(UnsupportedDtypeError):
                ckpt.read(name)


# Fuzzing of the index parser and entry decoding lives in tests/test_fuzz.py.


# --- the reader stands alone ----------------------------------------------------------------


def test_reader_imports_no_heavy_framework():
    code = (
        "import sys, tf2hf.tfckpt\n"
        "heavy = {'tensorflow', 'torch', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
