"""Every kind of bad input, through the real command line: one line on stderr, exit code 1,
nothing written.

Each case builds its bad input in a fresh folder (from a fixture, a shared real checkpoint, or
TensorFlow itself), runs ``tf2hf convert`` and checks the exact message. The output folder's
parent is created empty beforehand, so "nothing written" means it is still empty afterwards: no
output folder, no staging leftovers.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from support import fixture, shared
from test_checkpoint_reader import _entry, _header, _table
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt.bundle import parse_entry
from tf2hf.tfckpt.sstable import read_table
from tf2hf.cli import app
import tf2hf.engine.registry
from tf2hf.engine.registry import families, group_names
from tf2hf.sources import MAX_CONFIG_BYTES
from tf2hf.output.spiece import MAX_MODEL_BYTES
from tf2hf.output.vocab import MAX_VOCAB_BYTES

runner = CliRunner()


def _tf():
    return pytest.importorskip("tensorflow")


# --- building bad inputs ---------------------------------------------------------------------


def _copy(name: str, to: Path) -> Path:
    shutil.copytree(fixture(name), to)
    for path in to.iterdir():
        path.chmod(0o644)
    return to


def _bert(tmp: Path) -> Path:
    """A writable copy of the bert_pretrain fixture (prefix model.ckpt-1)."""
    return _copy("bert_pretrain", tmp / "src")


def _shard(src: Path) -> Path:
    (shard,) = src.glob("model.ckpt-1.data-*")
    return shard


def _is_weight(name: str) -> bool:
    return not name.endswith(("/adam_m", "/adam_v")) and name != "global_step"


def _rewrite_index(src: Path, edit: Callable[[list[tuple[bytes, bytes]]], list[tuple[bytes, bytes]]]) -> Path:
    """Re-encode the index with the test writer after editing its (key, value) pairs."""
    index = src / "model.ckpt-1.index"
    pairs = read_table(index.read_bytes())
    index.write_bytes(_table(edit(pairs)))
    return index


def _edit_entry(pairs, name: str, **changes):
    """Replace one entry by a re-encoded copy with some fields changed."""
    out = []
    for key, value in pairs:
        if key == name.encode():
            entry = parse_entry(value)
            fields = dict(dtype=entry.dtype, shape=entry.shape, offset=entry.offset, size=entry.size,
                          crc=entry.crc32c, shard=entry.shard_id)
            fields.update(changes)
            value = _entry(**fields)
        out.append((key, value))
    return out


def truncated_shard(tmp: Path) -> dict:
    src = _bert(tmp)
    shard = _shard(src)
    with open_checkpoint(src) as ckpt:
        last = max((i for n, i in ckpt.variables.items() if _is_weight(n)), key=lambda i: i.offset)
    cut = last.offset + last.size // 2  # inside the last weight: only optimizer slots lie beyond
    os.truncate(shard, cut)
    return dict(src=src, shard=shard, cut=cut, name=last.name, start=last.offset, end=last.offset + last.size)


def flipped_byte(tmp: Path) -> dict:
    src = _bert(tmp)
    shard = _shard(src)
    with open_checkpoint(src) as ckpt:
        info = ckpt.variables["bert/embeddings/word_embeddings"]
    raw = bytearray(shard.read_bytes())
    raw[info.offset + info.size // 2] ^= 0x10
    shard.write_bytes(bytes(raw))
    return dict(src=src, shard=shard, size=info.size, offset=info.offset)


def _damaged_index(damage: Callable[[bytes], bytes]) -> Callable[[Path], dict]:
    def build(tmp: Path) -> dict:
        src = _bert(tmp)
        index = src / "model.ckpt-1.index"
        index.write_bytes(damage(index.read_bytes()))
        return dict(src=src, index=index)

    return build


def _flip(position: int) -> Callable[[bytes], bytes]:
    def damage(raw: bytes) -> bytes:
        out = bytearray(raw)
        out[position] ^= 0xFF
        return bytes(out)

    return damage


def missing_data_shard(tmp: Path) -> dict:
    src = _bert(tmp)
    _shard(src).unlink()
    return dict(src=src)


def missing_second_shard(tmp: Path) -> dict:
    src = tmp / "src"
    shutil.copytree(_two_shard_bert(), src)
    (src / "model.ckpt-1.data-00001-of-00002").unlink()
    return dict(src=src)


def header_says_two_shards(tmp: Path) -> dict:
    src = _bert(tmp)
    _rewrite_index(src, lambda pairs: [(b"", _header(num_shards=2)), *pairs[1:]])
    return dict(src=src)


def entry_past_the_end(tmp: Path) -> dict:
    src = _bert(tmp)
    shard_size = _shard(src).stat().st_size
    with open_checkpoint(src) as ckpt:
        size = ckpt.variables["bert/embeddings/word_embeddings"].size
    index = _rewrite_index(src, lambda pairs: _edit_entry(pairs, "bert/embeddings/word_embeddings", offset=shard_size))
    return dict(src=src, index=index, start=shard_size, end=shard_size + size, shard_size=shard_size)


def absurd_shape(tmp: Path) -> dict:
    src = _bert(tmp)
    index = _rewrite_index(src, lambda pairs: _edit_entry(pairs, QUERY, shape=(10**6, 10**6)))
    return dict(src=src, index=index)


def absurd_shape_and_size(tmp: Path) -> dict:
    """Shape and size agree (4 TB), so the index itself is consistent: planning refuses it."""
    src = _bert(tmp)
    _rewrite_index(src, lambda pairs: _edit_entry(pairs, QUERY, shape=(10**6, 10**6), size=4 * 10**12))
    return dict(src=src)


QUERY = "bert/encoder/layer_0/attention/self/query/kernel"


def _config_edit(**changes) -> Callable[[Path], dict]:
    def build(tmp: Path) -> dict:
        src = _bert(tmp)
        config = src / "bert_config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), **changes}))
        return dict(src=src, config=config)

    return build


def _bad_file(name: str, content: bytes | int) -> Callable[[Path], dict]:
    """A file beside the copy; an int makes a sparse file of that many bytes (no disk used)."""

    def build(tmp: Path) -> dict:
        src = _bert(tmp)
        path = tmp / name
        if isinstance(content, int):
            with path.open("wb") as handle:
                handle.truncate(content)
        else:
            path.write_bytes(content)
        return dict(src=src, file=path, size=path.stat().st_size)

    return build


def _dev_zero() -> Path:
    path = Path("/dev/zero")
    if not path.exists():
        pytest.skip("no /dev/zero on this system")
    return path


def vocab_one_token_more(tmp: Path) -> dict:
    src = _bert(tmp)
    vocab = src / "vocab.txt"
    vocab.write_text(vocab.read_text() + "extra\n")
    return dict(src=src, vocab=vocab)


def non_bert(tmp: Path) -> dict:
    return dict(src=shared("real", "t2t-2shard-nonbert"), known=", ".join(group_names()))


def tf2_object_based(tmp: Path) -> dict:
    """A tiny model saved by tf.train.Checkpoint: not one of the TF2 layouts tf2hf reads."""
    tf = _tf()
    module = tf.Module()
    module.dense = tf.Module()
    module.dense.kernel = tf.Variable(tf.ones((4, 3)))
    module.dense.bias = tf.Variable(tf.zeros((3,)))
    prefix = tf.train.Checkpoint(model=module).write(str(tmp / "src" / "ckpt-1"))
    # Once a family reads TF2 names (tensorflow/models BERT), the message says which.
    message = TF2_KNOWN if "tf2_bert" in families() else TF2_NOT_YET
    return dict(src=tmp / "src", prefix=prefix, tf2=message.format(prefix=prefix))


def preln(tmp: Path) -> dict:
    src = fixture("bright_pretrain_preln")
    return dict(src=src, config=src / "albert_config.json")


def empty_folder(tmp: Path) -> dict:
    (tmp / "src").mkdir()
    return dict(src=tmp / "src")


def state_file_elsewhere_two_checkpoints(tmp: Path) -> dict:
    """The state file names a path of the training machine; the folder holds two others."""
    src = _bert(tmp)
    for path in list(src.glob("model.ckpt-1.*")):
        shutil.copyfile(path, src / path.name.replace("ckpt-1", "ckpt-2"))
    (src / "checkpoint").write_text('model_checkpoint_path: "/train/run3/model.ckpt-9"\n')
    return dict(src=src)


# A real 2-shard BERT checkpoint, written by TensorFlow: the bert_pretrain tensors saved as two
# bundles (cls/* in the second) and merged by MergeV2Checkpoints, as a sharded Saver does.


@functools.cache
def _two_shard_bert() -> Path:
    tf = _tf()
    folder = Path(tempfile.mkdtemp(prefix="tf2hf-two-shard-"))
    atexit.register(shutil.rmtree, folder, True)
    source = fixture("bert_pretrain")
    reader = tf.train.load_checkpoint(str(source / "model.ckpt-1"))
    names = sorted(reader.get_variable_to_shape_map())
    parts = []
    for i, group in enumerate(([n for n in names if not n.startswith("cls/")], [n for n in names if n.startswith("cls/")])):
        part = folder / "parts" / f"part-{i}"
        tf.raw_ops.SaveV2(prefix=str(part), tensor_names=group, shape_and_slices=[""] * len(group),
                          tensors=[reader.get_tensor(n) for n in group])
        parts.append(str(part))
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=str(folder / "model.ckpt-1"))
    shutil.rmtree(folder / "parts", ignore_errors=True)
    for name in ("bert_config.json", "vocab.txt"):
        shutil.copyfile(source / name, folder / name)
    return folder


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], dict]  # makes the bad input under the test's folder; returns names for args and message
    args: tuple[str, ...]  # after "convert"; "{out}" is the output folder
    message: str  # the exact line after "error: "


BERT = ("bert", "--tf", "{src}", "--out", "{out}")
INDEX = "{src}/model.ckpt-1.index: not a valid TF checkpoint index ({detail}); the file is damaged or truncated, copy it again"
PRELN = (
    "{config}: ln_type is 'preln': a pre-LayerNorm graph (brightmart's xxlarge configs and code of 2019-10-04…07): "
    "its layer norms sit before attention and feed-forward, and no transformers class computes that; "
    "converting it to post-LN classes would give outputs off by ~10. Nothing was written"
)
CONTRADICTS = "{config}: the config contradicts the checkpoint: {what}; pass the config that belongs to this checkpoint"
TF1_INSTEAD = "convert a TF1 name-based checkpoint (tf.compat.v1.train.Saver) of the model instead"
TF2_NOT_YET = (
    "{prefix}: this is a TF2 object-based checkpoint (tf.train.Checkpoint, names ending in /.ATTRIBUTES/VARIABLE_VALUE), "
    "which tf2hf cannot convert yet; " + TF1_INSTEAD
)
TF2_KNOWN = (
    "{prefix}: a TF2 object-based checkpoint (tf.train.Checkpoint) that matches no known family; of TF2 checkpoints "
    "tf2hf converts only tf2_bert, transformers_tf_bert, transformers_tf_albert, transformers_tf_electra, bert_for_tf2, bert_for_tf2_albert; first variables: _CHECKPOINTABLE_OBJECT_GRAPH, model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE, "
    "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE; " + TF1_INSTEAD
)

CASES = [
    # damaged or incomplete data
    Case("truncated data shard", truncated_shard, BERT,
         "{shard}: data shard is truncated ({cut} bytes, but variable '{name}' needs bytes {start} to {end}); copy the file again"),
    Case("flipped byte in a tensor", flipped_byte, BERT,
         "{shard}: variable 'bert/embeddings/word_embeddings' is corrupt (the crc32c of its {size} bytes at offset {offset} "
         "does not match the index); the file was damaged, copy it again"),
    Case("missing data shard", missing_data_shard, BERT,
         "{src}/model.ckpt-1.data-00000-of-00001: data shard 1 of 1 is missing (it holds variable 'bert/embeddings/LayerNorm/beta'); "
         "copy every model.ckpt-1.data-*-of-00001 file next to model.ckpt-1.index"),
    Case("second of two shards missing", missing_second_shard, BERT,
         "{src}/model.ckpt-1.data-00001-of-00002: data shard 2 of 2 is missing (it holds variable 'cls/predictions/output_bias'); "
         "copy every model.ckpt-1.data-*-of-00002 file next to model.ckpt-1.index"),
    Case("header says 2 shards, 1 file present", header_says_two_shards, BERT,
         "{src}/model.ckpt-1.data-00000-of-00002: data shard 1 of 2 is missing (it holds variable 'bert/embeddings/LayerNorm/beta'), "
         "but model.ckpt-1.data-00000-of-00001 is there: the index and the data files come from different saves; "
         "copy the .index and .data-* files of one save together"),
    # damaged index
    Case("truncated index", _damaged_index(lambda raw: raw[: len(raw) // 2]), BERT,
         INDEX.replace("{detail}", "wrong magic number at the end of the file")),
    Case("garbled index", _damaged_index(_flip(20)), BERT,
         INDEX.replace("{detail}", "data block at offset 0 fails its crc32c check")),
    Case("wrong magic", _damaged_index(lambda raw: raw[:-8] + b"\0" * 8), BERT,
         INDEX.replace("{detail}", "wrong magic number at the end of the file")),
    Case("index entry past the end of its shard", entry_past_the_end, BERT,
         "{index}: variable 'bert/embeddings/word_embeddings' is recorded at bytes {start} to {end} of "
         "model.ckpt-1.data-00000-of-00001, past the end of that shard ({shard_size} bytes, enough for all its variables); "
         "the index is damaged, copy it again"),
    Case("absurd shape (10**12 elements)", absurd_shape, BERT,
         "{index}: variable '" + QUERY + "' is recorded with 1024 bytes, but shape [1000000, 1000000] of float32 "
         "needs 4000000000000; the index is corrupt, copy it again"),
    Case("absurd shape with a matching size", absurd_shape_and_size, BERT,
         "{src}/model.ckpt-1: cannot convert to BertForPreTraining: 1 shape mismatch(es): shape mismatch: "
         "bert.encoder.layer.0.attention.self.query.weight: " + QUERY + " [1000000, 1000000] gives [1000000, 1000000] "
         "via transpose, expected [16, 16]"),
    # config and vocabulary
    Case("config: hidden size", _config_edit(hidden_size=32), BERT,
         CONTRADICTS.replace("{what}", "hidden_size=32 but bert/embeddings/word_embeddings is [50, 16]")),
    Case("config: layers", _config_edit(num_hidden_layers=3), BERT,
         CONTRADICTS.replace("{what}", "num_hidden_layers=3 but the checkpoint has 2 (bert/encoder/layer_{{0,1}}/attention/self/query/kernel)")),
    Case("config: vocabulary size", _config_edit(vocab_size=51), BERT,
         CONTRADICTS.replace("{what}", "vocab_size=51 but bert/embeddings/word_embeddings is [50, 16]")),
    Case("vocabulary one token longer than the embeddings", vocab_one_token_more, BERT,
         "{vocab}: 51 tokens but the checkpoint's word embeddings have 50 rows; pass the vocabulary that belongs to this checkpoint"),
    # Longer than the embedding matrix: ids without a row. (Shorter is common and only warned about.)
    Case("vocabulary of the wrong size given", _bad_file("vocab.txt", "".join(f"tok{i}\n" for i in range(60)).encode()), (*BERT, "--vocab", "{file}"),
         "{file}: 60 tokens but the checkpoint's word embeddings have 50 rows; pass the vocabulary that belongs to this checkpoint"),
    Case("config not JSON", _bad_file("config.json", b"{not json"), (*BERT, "--config", "{file}"),
         "{file}: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); pass the model's JSON config"),
    Case("config not an object", _bad_file("config.json", b"[768, 12]"), (*BERT, "--config", "{file}"),
         "{file}: the config must be a JSON object, not list; pass the model's JSON config"),
    Case("config not UTF-8", _bad_file("config.json", b'{"a": "\xff"}'), (*BERT, "--config", "{file}"),
         "{file}: not valid JSON ('utf-8' codec can't decode byte 0xff in position 7: invalid start byte); pass the model's JSON config"),
    Case("config that does not exist", lambda tmp: dict(src=_bert(tmp), file=tmp / "nope.json"), (*BERT, "--config", "{file}"),
         "{file}: cannot read a model config (No such file or directory); pass --config with a readable file"),
    Case("config far too large", _bad_file("config.json", MAX_CONFIG_BYTES + 1), (*BERT, "--config", "{file}"),
         "{file}: {size} bytes is too large for a model config (limit 1048576); pass the right --config"),
    Case("config without end (/dev/zero)", lambda tmp: dict(src=_bert(tmp), file=_dev_zero()), (*BERT, "--config", "{file}"),
         "{file}: a model config is a character device, not a regular file (reading a pipe or a device could block or never end); put the real file in its place"),
    Case("vocabulary far too large", _bad_file("vocab.txt", MAX_VOCAB_BYTES + 1), (*BERT, "--vocab", "{file}"),
         "{file}: {size} bytes is too large for a vocabulary (limit 67108864); pass the right --vocab"),
    Case("vocabulary without end (/dev/zero)", lambda tmp: dict(src=_bert(tmp), file=_dev_zero()), (*BERT, "--vocab", "{file}"),
         "{file}: a vocabulary is a character device, not a regular file (reading a pipe or a device could block or never end); put the real file in its place"),
    Case("SentencePiece model far too large", _bad_file("30k-clean.model", MAX_MODEL_BYTES + 1), (*BERT, "--vocab", "{file}"),
         "{file}: {size} bytes is too large for a SentencePiece model (limit 67108864); pass the right --vocab"),
    # not a checkpoint tf2hf converts
    Case("non-BERT checkpoint", non_bert, BERT,
         "{src}/model.ckpt-1: not a bert checkpoint (bert/embeddings/word_embeddings is missing); it matches no known family"),
    Case("non-BERT checkpoint, auto", non_bert, ("auto", "--tf", "{src}", "--out", "{out}"),
         "{src}/model.ckpt-1: matches no known family (known: {known}); first variables: "
         "global_step, losses_avg/problem_0/extra_loss, losses_avg/problem_0/total_loss"),
    Case("TF2 object-based checkpoint", tf2_object_based, BERT, "{tf2}"),
    Case("TF2 object-based checkpoint, auto", tf2_object_based, ("auto", "--tf", "{src}", "--out", "{out}"), "{tf2}"),
    Case("brightmart pre-LN", preln, ("albert", "--tf", "{src}", "--out", "{out}"), PRELN),
    Case("brightmart pre-LN, auto", preln, ("auto", "--tf", "{src}", "--out", "{out}"), PRELN),
    # paths
    Case("empty folder", empty_folder, BERT,
         "{src}: no checkpoint found (no *.index file); pass the checkpoint prefix, e.g. {src}/model.ckpt-1000"),
    Case("path that does not exist", lambda tmp: dict(src=tmp / "nope" / "model.ckpt-1"), BERT,
         "{src}: no such file or directory; pass a checkpoint folder or prefix"),
    Case("prefix that does not exist", lambda tmp: dict(src=tmp / "model.ckpt-1"), BERT,
         "{src}: no such checkpoint, and {tmp} has no *.index file; pass the prefix of an existing checkpoint"),
    Case("checkpoint file pointing elsewhere, two checkpoints here", state_file_elsewhere_two_checkpoints, BERT,
         "{src}: 2 checkpoints found (model.ckpt-1, model.ckpt-2); pass one of them explicitly, e.g. {src}/model.ckpt-2"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path):
    names = {"tmp": tmp_path, **case.build(tmp_path)}
    dest = tmp_path / "dest"
    dest.mkdir()
    names["out"] = dest / "out"
    args = ["convert", *(a.format(**names) for a in case.args)]
    started = time.perf_counter()
    result = runner.invoke(app, args)
    took = time.perf_counter() - started
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert result.stderr.splitlines() == [f"error: {case.message.format(**names)}"]
    assert list(dest.iterdir()) == []  # no output folder, no staging leftovers
    if case.name.startswith("absurd shape"):
        assert took < 5, f"took {took:.1f} s: the 4 TB tensor must be refused before anything is allocated"


def test_tf2_checkpoint_without_any_tf2_family_is_not_supported_yet(tmp_path, monkeypatch):
    """Without a family that reads TF2 names, any TF2 checkpoint gets the "not yet" message."""
    tf1_only = {name: f for name, f in families().items() if not tf2hf.engine.registry.normalise(f, "x/.ATTRIBUTES/VARIABLE_VALUE")[1]}
    monkeypatch.setattr(tf2hf.engine.registry, "families", lambda: tf1_only)
    names = tf2_object_based(tmp_path)
    result = runner.invoke(app, ["convert", "auto", "--tf", str(names["src"]), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {TF2_NOT_YET.format(prefix=names['prefix'])}"]
    assert not (tmp_path / "m").exists()


# --- what the table builds is otherwise sound ----------------------------------------------------


def test_the_two_shard_checkpoint_converts(tmp_path):
    """The 2-shard checkpoint the table damages is a valid one: intact, it converts and verifies."""
    folder = _two_shard_bert()
    with open_checkpoint(folder) as ckpt:
        assert {info.shard for info in ckpt.variables.values()} == {0, 1}
    result = runner.invoke(app, ["convert", "bert", "--tf", str(folder), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "verification: max abs diff" in result.stdout


def test_a_damaged_slot_that_is_never_read_does_not_matter(tmp_path):
    """crc32c is checked per tensor read: damage in a dropped optimizer slot is harmless."""
    src = _bert(tmp_path)
    with open_checkpoint(src) as ckpt:
        info = ckpt.variables["bert/embeddings/word_embeddings/adam_m"]
    raw = bytearray(_shard(src).read_bytes())
    raw[info.offset] ^= 0xFF
    _shard(src).write_bytes(bytes(raw))
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(tmp_path / "m"), "--no-verify"])
    assert result.exit_code == 0, result.output


# --- a `checkpoint` file that points elsewhere ---------------------------------------------------
# MAPPING.md §0: its paths are often absolute paths of the training machine. tf2hf uses the path
# only when it exists; otherwise its last component in the folder; otherwise the folder's only
# checkpoint. Either way the converted prefix is printed, so the user sees which one it was.


def test_checkpoint_file_with_a_training_machine_path_converts_the_local_checkpoint(tmp_path):
    src = _bert(tmp_path)
    (src / "checkpoint").write_text('model_checkpoint_path: "/cns/train/run3/model.ckpt-1"\n')
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(tmp_path / "m"), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert f"converted {src / 'model.ckpt-1'} -> {tmp_path / 'm'}" in result.stdout


def test_checkpoint_file_naming_a_missing_step_converts_the_only_checkpoint(tmp_path):
    src = _bert(tmp_path)
    (src / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-900"\n')
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(tmp_path / "m"), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert f"converted {src / 'model.ckpt-1'} -> " in result.stdout


def test_checkpoint_file_naming_an_existing_checkpoint_elsewhere_converts_that_one(tmp_path):
    elsewhere = _copy("bert_classifier", tmp_path / "elsewhere")
    src = _bert(tmp_path)
    (src / "checkpoint").write_text(f'model_checkpoint_path: "{elsewhere / "model.ckpt-1"}"\n')
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(tmp_path / "m"), "--no-verify",
                                 "--config", str(elsewhere / "bert_config.json")])
    assert result.exit_code == 0, result.output
    assert f"converted {elsewhere / 'model.ckpt-1'} -> " in result.stdout
    assert "BertForSequenceClassification" in result.stdout


# --- the output may not swallow the input ----------------------------------------------------------


def test_force_into_the_checkpoint_folder_is_refused_and_the_checkpoint_survives(tmp_path):
    src = _bert(tmp_path)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(src), "--force"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {src}: holds {src / 'model.ckpt-1.index'}, which this conversion reads; choose another --out"
    ]
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
