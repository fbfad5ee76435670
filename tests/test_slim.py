"""``tf2hf slim``: the TensorFlow-free writer, held against TensorFlow's own reader.

The oracle is ``tf.train.load_checkpoint``: the slim checkpoint must list exactly the source's
variables minus the optimizer slots and bookkeeping (the expected list is computed here from
TensorFlow's listing of the source and name patterns written out in this file), and every kept
tensor must be bit-identical to what TensorFlow reads from the source.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from support import fixture, shared
from tf2hf.tfckpt import open_checkpoint
from tf2hf.cli import app
from tf2hf.errors import CrcMismatchError, OutputError
from tf2hf.tools.slim import slim

runner = CliRunner()

# Written out independently of tf2hf.engine.nonweights: the variables a slim checkpoint must not hold.
NOT_WEIGHTS = re.compile(
    r".+/(adam_m|adam_v|lamb_m|lamb_v|Adam|Adam_1|Momentum|Adagrad)"
    r"|(.+/)?(beta1_power|beta2_power|global_step|current_loss_scale|good_steps)"
)


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


def _tf_variables(tf, prefix) -> dict[str, tuple]:
    return {name: tuple(shape) for name, shape in tf.train.list_variables(str(prefix))}


def _assert_slim_matches_tf(tf, source: Path, out: Path) -> set[str]:
    reader_in = tf.train.load_checkpoint(str(source))
    reader_out = tf.train.load_checkpoint(str(out))
    before = _tf_variables(tf, source)
    expected = {name for name in before if not NOT_WEIGHTS.fullmatch(name)}
    after = _tf_variables(tf, out)
    assert set(after) == expected
    dtypes_in = reader_in.get_variable_to_dtype_map()
    dtypes_out = reader_out.get_variable_to_dtype_map()
    for name in expected:
        assert dtypes_out[name] == dtypes_in[name], name
        assert after[name] == before[name], name
        a, b = reader_in.get_tensor(name), reader_out.get_tensor(name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if a.dtype == object:
            assert list(a.flat) == list(b.flat), name
        else:
            assert a.tobytes() == b.tobytes(), name  # bit-identical, NaNs and -0.0 included
    return expected


def _prefix(folder: Path) -> Path:
    (index,) = sorted(folder.glob("*.index"))
    return index.with_suffix("")


@pytest.mark.tf
@pytest.mark.parametrize("name", ["bert_pretrain", "bert_slots_zoo", "albert_pretrain_g2i2", "bright_classifier"])
def test_slim_fixture_reads_back_in_tensorflow(tf, tmp_path, name):
    source = _prefix(fixture(name))
    result = slim(source, tmp_path / "slim" / "model.ckpt-1")
    kept = _assert_slim_matches_tf(tf, source, tmp_path / "slim" / "model.ckpt-1")
    assert result.variables_after == len(kept)
    assert result.variables_before == len(_tf_variables(tf, source))
    assert sum(v["count"] for v in result.dropped.values()) == result.variables_before - result.variables_after
    # The folder gets a `checkpoint` file, so TF finds the checkpoint from the folder too.
    assert set(_tf_variables(tf, tmp_path / "slim")) == kept
    sizes = [p.stat().st_size for p in (tmp_path / "slim").glob("model.ckpt-1.*")]
    assert result.bytes_after == sum(sizes) < result.bytes_before


@pytest.mark.tf
def test_slim_hub_prefixed_names_keep_their_prefix(tf, tmp_path):
    source = _prefix(fixture("bert_slots_zoo"))
    slim(source, tmp_path / "s")
    names = set(_tf_variables(tf, tmp_path / "s"))
    assert "module/bert/embeddings/word_embeddings" in names and "output_weights" in names
    assert not any(n.endswith(("/adam_m", "/Adam_1", "/Momentum", "/lamb_v")) for n in names)
    assert not {"beta1_power", "global_step", "current_loss_scale", "good_steps"} & names


@pytest.mark.tf
def test_slim_two_shard_non_bert_checkpoint_with_int32(tf, tmp_path):
    source = shared("real", "t2t-2shard-nonbert") / "model.ckpt-1"
    result = slim(source, tmp_path / "t2t" / "model.ckpt-1")
    kept = _assert_slim_matches_tf(tf, source, tmp_path / "t2t" / "model.ckpt-1")
    # Variables no family maps are kept: the whole Tensor2Tensor model and its int32 counter.
    assert "train_stats/problem_0_steps" in kept
    assert tf.train.load_checkpoint(str(tmp_path / "t2t" / "model.ckpt-1")).get_variable_to_dtype_map()["train_stats/problem_0_steps"] == tf.int32
    assert any(n.startswith("transformer/") for n in kept)
    assert result.dropped["optimizer slot"]["count"] == 164
    assert sorted(p.name for p in (tmp_path / "t2t").iterdir()) == ["checkpoint", "model.ckpt-1.data-00000-of-00001", "model.ckpt-1.index"]


@pytest.mark.tf
def test_slim_many_variables_span_several_index_blocks(tf, tmp_path):
    """Enough long names that the index needs more than one 256 KiB data block; odd dtypes."""
    rng = np.random.default_rng(3)
    tensors = {
        f"enc/block_{i:05d}/{i * 7919 % 10007:05d}_scope/{i * 104729 % 65521:05x}/w": tf.constant(np.full((2,), i, np.float32))
        for i in range(6000)
    }
    tensors.update({
        f"enc/block_{i:05d}/{i * 7919 % 10007:05d}_scope/{i * 104729 % 65521:05x}/w/adam_m": tf.constant(np.zeros((2,), np.float32))
        for i in range(0, 6000, 7)
    })
    tensors["half"] = tf.constant(rng.standard_normal((3, 5)).astype(np.float16))
    tensors["brain"] = tf.cast(tf.constant(rng.standard_normal((4, 4)).astype(np.float32)), tf.bfloat16)
    tensors["text"] = tf.constant(["a", "ünïcode", ""])
    tensors["empty"] = tf.zeros((0, 3))
    tensors["scalar64"] = tf.constant(np.int64(-5))
    tensors["global_step"] = tf.constant(np.int64(9))
    source = tmp_path / "in" / "model.ckpt-5"
    names = list(tensors)
    tf.raw_ops.SaveV2(prefix=str(source), tensor_names=names, shape_and_slices=[""] * len(names), tensors=[tensors[n] for n in names])
    assert (tmp_path / "in" / "model.ckpt-5.index").stat().st_size > 256 * 1024
    slim(source, tmp_path / "out" / "model.ckpt-5")
    kept = _assert_slim_matches_tf(tf, source, tmp_path / "out" / "model.ckpt-5")
    assert len(kept) == 6000 + 5


@pytest.mark.tf
def test_slimmed_checkpoint_converts(tf, tmp_path):
    folder = tmp_path / "slim"
    slim(fixture("bert_pretrain"), folder / "model.ckpt-1")
    for name in ("bert_config.json", "vocab.txt"):
        shutil.copy(fixture("bert_pretrain") / name, folder / name)
    result = runner.invoke(app, ["convert", "auto", "--tf", str(folder), "--out", str(tmp_path / "hf"), "--gelu", "tanh"])
    assert result.exit_code == 0, result.output
    assert "BertForPreTraining" in result.stdout and "dropped: nothing" in result.stdout and "passed" in result.stdout


def test_refuses_existing_prefix_unless_force(tmp_path):
    source = _prefix(fixture("bert_pretrain"))
    slim(source, tmp_path / "m")
    first = (tmp_path / "m.index").read_bytes()
    with pytest.raises(OutputError) as caught:
        slim(source, tmp_path / "m")
    assert str(caught.value) == (
        f"{tmp_path / 'm'}: a checkpoint with this prefix already exists (m.index); choose another --out or pass --force to replace it"
    )
    # --force replaces it, and removes shards of another shard count that belonged to the old one.
    (tmp_path / "m.data-00001-of-00002").write_bytes(b"old")
    slim(fixture("bert_classifier"), tmp_path / "m", force=True)
    assert (tmp_path / "m.index").read_bytes() != first
    # The config and vocabulary come along, so that the slimmed checkpoint converts as it is.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert_config.json", "checkpoint", "m.data-00000-of-00001", "m.index", "vocab.txt"]


def test_refuses_to_overwrite_the_source(tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(fixture("bert_pretrain"), folder)
    with pytest.raises(OutputError, match="this is the source checkpoint"):
        slim(folder, folder / "model.ckpt-1", force=True)
    with pytest.raises(OutputError, match="this is the source checkpoint"):
        slim(folder, folder, force=True)  # a folder means "the source's prefix name in it"


def test_existing_checkpoint_state_file_is_left_alone(tmp_path):
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "other"\n')
    result = slim(fixture("bert_pretrain"), tmp_path / "slim")
    assert result.state_file is None
    assert (tmp_path / "checkpoint").read_text() == 'model_checkpoint_path: "other"\n'


def test_corrupt_source_writes_nothing(tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(fixture("bert_pretrain"), folder)
    data = folder / "model.ckpt-1.data-00000-of-00001"
    with open_checkpoint(folder) as ckpt:
        where = ckpt.variables["bert/pooler/dense/kernel"].offset  # a weight: slim copies it
    raw = bytearray(data.read_bytes())
    raw[where + 5] ^= 0xFF
    data.write_bytes(bytes(raw))
    out = tmp_path / "out"
    with pytest.raises(CrcMismatchError, match=r"model.ckpt-1.data-00000-of-00001: variable 'bert/pooler/dense/kernel' is corrupt"):
        slim(folder, out / "model.ckpt-1")
    assert list(out.iterdir()) == []  # no index, no data, no staging folder


def test_cli_reports_sizes_and_exit_codes(tmp_path):
    out = tmp_path / "s" / "model.ckpt-1"
    result = runner.invoke(app, ["slim", str(fixture("bert_pretrain")), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"slimmed {_prefix(fixture('bert_pretrain'))} -> {out}"
    assert lines[1] == "  kept 46 of 139 variables; dropped 1 bookkeeping (8 B), 92 optimizer slot (48.7 KiB)"
    assert lines[2].startswith("  size: ") and "->" in lines[2]

    again = runner.invoke(app, ["slim", str(fixture("bert_pretrain")), "--out", str(out)])
    assert again.exit_code == 1
    assert again.stderr.strip() == f"error: {out}: a checkpoint with this prefix already exists (model.ckpt-1.index); choose another --out or pass --force to replace it"

    missing = runner.invoke(app, ["slim", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and missing.stderr.startswith(f"error: {tmp_path / 'nope'}")
