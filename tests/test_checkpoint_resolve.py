"""Every form of checkpoint path a user may pass, and the one-line errors for the rest.

``resolve_prefix`` only looks at file names (and, for V1 detection, the last 8 bytes of a
file), so most cases use empty placeholder files.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from tf2hf.tfckpt import resolve_prefix
from tf2hf.errors import (
    AmbiguousCheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    NotV2CheckpointError,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoints"
TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)
RESAVE = (
    "re-save it in TF's V2 format with "
    "tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V2)"
)


def _v2(folder: Path, prefix: str, shards: int = 1, meta: bool = True) -> Path:
    """Placeholder files of a V2 checkpoint (contents do not matter to resolve_prefix)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}.index").write_bytes(b"")
    for i in range(shards):
        (folder / f"{prefix}.data-{i:05d}-of-{shards:05d}").write_bytes(b"")
    if meta:
        (folder / f"{prefix}.meta").write_bytes(b"")
    return folder / prefix


def _state(folder: Path, target: str) -> Path:
    state = folder / "checkpoint"
    state.write_text(
        f'model_checkpoint_path: "{target}"\nall_model_checkpoint_paths: "{target}"\n'
    )
    return state


def _v1_file(path: Path) -> Path:
    """A stand-in for a V1 checkpoint: any bytes followed by a table footer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 100 + b"\x00" * 40 + TABLE_MAGIC)
    return path


def _message(error_type: type[Exception], path: Path | str) -> str:
    with pytest.raises(error_type) as caught:
        resolve_prefix(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- accepted forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "",  # the folder
        "model.ckpt-1000",
        "model.ckpt-1000.index",
        "model.ckpt-1000.data-00000-of-00002",
        "model.ckpt-1000.data-00001-of-00002",
        "model.ckpt-1000.meta",
    ],
)
def test_accepted_forms(tmp_path, given):
    prefix = _v2(tmp_path, "model.ckpt-1000", shards=2)
    assert resolve_prefix(tmp_path / given) == prefix
    assert resolve_prefix(str(tmp_path / given)) == prefix


def test_state_file_passed_explicitly(tmp_path):
    _v2(tmp_path, "model.ckpt-1")
    wanted = _v2(tmp_path, "model.ckpt-2")
    state = _state(tmp_path, "model.ckpt-2")
    assert resolve_prefix(state) == wanted


def test_state_file_chooses_among_several(tmp_path):
    _v2(tmp_path, "model.ckpt-1")
    wanted = _v2(tmp_path, "model.ckpt-2")
    _v2(tmp_path, "model.ckpt-3")
    _state(tmp_path, "model.ckpt-2")
    assert resolve_prefix(tmp_path) == wanted


def test_state_file_with_absolute_path_that_exists(tmp_path):
    elsewhere = _v2(tmp_path / "elsewhere", "model.ckpt-9")
    _v2(tmp_path / "here", "model.ckpt-1")
    _state(tmp_path / "here", str(elsewhere))
    assert resolve_prefix(tmp_path / "here") == elsewhere


def test_state_file_with_stale_absolute_path_uses_its_basename(tmp_path):
    _v2(tmp_path, "model.ckpt-1")
    wanted = _v2(tmp_path, "model.ckpt-2")
    _state(tmp_path, "/cns/training/machine/run7/model.ckpt-2")
    assert resolve_prefix(tmp_path) == wanted


def test_state_file_with_windows_path_uses_its_basename(tmp_path):
    _v2(tmp_path, "model.ckpt-1")
    wanted = _v2(tmp_path, "model.ckpt-2")
    _state(tmp_path, "C:\\\\Users\\\\me\\\\run\\\\model.ckpt-2")
    assert resolve_prefix(tmp_path) == wanted


def test_state_file_with_escaped_non_ascii_name(tmp_path):
    wanted = _v2(tmp_path, "模型.ckpt-5")
    _v2(tmp_path, "other.ckpt-1")
    escaped = "".join(f"\\{byte:03o}" for byte in "模型".encode())
    _state(tmp_path, f"/old/{escaped}.ckpt-5")
    assert resolve_prefix(tmp_path) == wanted


def test_state_file_naming_nothing_falls_back_to_the_only_index(tmp_path):
    only = _v2(tmp_path, "model.ckpt-1000")
    _state(tmp_path, "/home/someone/gone/model.ckpt-5")
    assert resolve_prefix(tmp_path) == only


def test_garbage_state_file_is_ignored(tmp_path):
    only = _v2(tmp_path, "model.ckpt-1000")
    (tmp_path / "checkpoint").write_bytes(b"\xff\xfe not a state file")
    assert resolve_prefix(tmp_path) == only


def test_relative_path_gives_absolute_prefix(tmp_path, monkeypatch):
    prefix = _v2(tmp_path / "run", "model.ckpt-3")
    monkeypatch.chdir(tmp_path)
    assert resolve_prefix("run") == prefix
    assert resolve_prefix(Path("run/model.ckpt-3.index")) == prefix
    assert resolve_prefix("run/../run/model.ckpt-3") == prefix


def test_index_without_data_is_accepted(tmp_path):
    prefix = tmp_path / "model.ckpt-1"
    prefix.with_name("model.ckpt-1.index").write_bytes(b"")
    assert resolve_prefix(tmp_path) == prefix


def _shared(relative: str) -> Path:
    folder = SHARED / relative
    if not folder.is_dir():
        pytest.skip(f"{folder} is not available")
    return folder


def test_real_state_file_with_training_machine_path():
    folder = _shared("real-index/jadepeng-albert_base_zh_google_best")
    assert "/cns/" in (folder / "checkpoint").read_text()
    assert resolve_prefix(folder) == folder / "model.ckpt-best"


def test_real_state_file_with_relative_path():
    folder = _shared("real/t2t-2shard-nonbert")
    assert resolve_prefix(folder) == folder / "model.ckpt-1"
    assert resolve_prefix(folder / "checkpoint") == folder / "model.ckpt-1"


# --- refused forms -------------------------------------------------------------------------


def test_several_prefixes_are_ambiguous(tmp_path):
    for step in ("2000", "1000", "500"):
        _v2(tmp_path, f"model.ckpt-{step}")
    assert _message(AmbiguousCheckpointError, tmp_path) == (
        f"{tmp_path}: 3 checkpoints found (model.ckpt-1000, model.ckpt-2000, model.ckpt-500); "
        f"pass one of them explicitly, e.g. {tmp_path}/model.ckpt-500"
    )


def test_stale_state_file_with_several_prefixes_is_ambiguous(tmp_path):
    _v2(tmp_path, "a.ckpt")
    _v2(tmp_path, "b.ckpt")
    _state(tmp_path, "/gone/c.ckpt")
    assert _message(AmbiguousCheckpointError, tmp_path) == (
        f"{tmp_path}: 2 checkpoints found (a.ckpt, b.ckpt); "
        f"pass one of them explicitly, e.g. {tmp_path}/b.ckpt"
    )


def test_wrong_step_lists_what_exists(tmp_path):
    _v2(tmp_path, "model.ckpt-1000")
    _v2(tmp_path, "model.ckpt-2000")
    assert _message(CheckpointNotFoundError, tmp_path / "model.ckpt-999") == (
        f"{tmp_path}/model.ckpt-999: no such checkpoint; {tmp_path} has model.ckpt-1000, "
        "model.ckpt-2000; pass one of them"
    )


def test_wrong_step_index_file_lists_what_exists(tmp_path):
    _v2(tmp_path, "model.ckpt-1000")
    assert _message(CheckpointNotFoundError, tmp_path / "model.ckpt-999.index") == (
        f"{tmp_path}/model.ckpt-999.index: no such checkpoint; {tmp_path} has "
        "model.ckpt-1000; pass one of them"
    )


def test_wrong_prefix_in_folder_without_checkpoints(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert _message(CheckpointNotFoundError, tmp_path / "model.ckpt") == (
        f"{tmp_path}/model.ckpt: no such checkpoint, and {tmp_path} has no *.index file; "
        "pass the prefix of an existing checkpoint"
    )


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    assert _message(CheckpointNotFoundError, missing) == (
        f"{missing}: no such file or directory; pass a checkpoint folder or prefix"
    )


def test_empty_folder(tmp_path):
    assert _message(CheckpointNotFoundError, tmp_path) == (
        f"{tmp_path}: no checkpoint found (no *.index file); "
        f"pass the checkpoint prefix, e.g. {tmp_path}/model.ckpt-1000"
    )


def test_folder_with_data_but_no_index(tmp_path):
    (tmp_path / "model.ckpt-7.data-00000-of-00001").write_bytes(b"\x00" * 8)
    assert _message(CheckpointNotFoundError, tmp_path) == (
        f"{tmp_path}: no checkpoint found (model.ckpt-7.data-00000-of-00001 has no "
        "model.ckpt-7.index beside it); copy the .index file into this folder"
    )


def test_data_shard_without_index(tmp_path):
    shard = tmp_path / "model.ckpt-7.data-00000-of-00001"
    shard.write_bytes(b"\x00" * 8)
    assert _message(CheckpointNotFoundError, shard) == (
        f"{shard}: no model.ckpt-7.index beside it; copy the .index file into {tmp_path}"
    )
    assert _message(CheckpointNotFoundError, tmp_path / "model.ckpt-7") == (
        f"{tmp_path}/model.ckpt-7: data shards exist but model.ckpt-7.index is missing; "
        f"copy the .index file into {tmp_path}"
    )


def test_file_that_is_not_a_checkpoint(tmp_path):
    config = tmp_path / "bert_config.json"
    config.write_text("{}")
    assert _message(CheckpointFormatError, config) == (
        f"{config}: not a TF checkpoint (expected a folder, a checkpoint prefix, or a .index, "
        ".data-*, .meta or checkpoint file); pass the checkpoint folder or prefix"
    )


def _not_v2(path: Path) -> str:
    return (
        f"{path}: TF V1 checkpoint (a single table file with no .index beside it), which "
        f"tf2hf does not read; {RESAVE}"
    )


def test_v1_file_given_directly(tmp_path):
    v1 = _v1_file(tmp_path / "model.ckpt-7")
    assert _message(NotV2CheckpointError, v1) == _not_v2(v1)


def test_v1_meta_given(tmp_path):
    v1 = _v1_file(tmp_path / "model.ckpt-7")
    (tmp_path / "model.ckpt-7.meta").write_bytes(b"graph")
    assert _message(NotV2CheckpointError, tmp_path / "model.ckpt-7.meta") == _not_v2(v1)


def test_v1_folder(tmp_path):
    v1 = _v1_file(tmp_path / "model.ckpt-7")
    _state(tmp_path, "/train/model.ckpt-7")
    assert _message(NotV2CheckpointError, tmp_path) == _not_v2(v1)


def test_v1_sharded_prefix(tmp_path):
    shard = _v1_file(tmp_path / "model.ckpt-00000-of-00002")
    _v1_file(tmp_path / "model.ckpt-00001-of-00002")
    assert _message(NotV2CheckpointError, tmp_path / "model.ckpt") == _not_v2(shard)


@pytest.mark.tf
def test_v1_checkpoint_written_by_tensorflow(tmp_path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("w", initializer=tf.constant([1.0, 2.0]))
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saved = Path(saver.save(session, str(tmp_path / "model.ckpt"), global_step=3))
    assert saved.is_file() and not saved.with_name(saved.name + ".index").exists()
    for given in (tmp_path, saved, saved.with_name(saved.name + ".meta")):
        assert _message(NotV2CheckpointError, given) == _not_v2(saved)
