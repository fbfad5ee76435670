"""Crash safety: killed at any point, out of space or refused, tf2hf leaves either no output
folder or the complete previous one, and the next run cleans up after it.

The kill tests convert a ~160 MB BERT-shaped checkpoint (written here with TensorFlow's SaveV2,
as ``bench/make_checkpoints.py`` does) in a ``python -m tf2hf`` subprocess and SIGKILL it when
the staging folder appears, when its ``model.safetensors`` is partly written, and during
verification. The read-only and full-disk tests mount small tmpfs file systems (root in a
sandbox); where mounting is not permitted they skip. A chmod'ed folder is no test of
read-only-ness when the tests run as root, who may write anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

import tf2hf.api
import tf2hf.output.staging
from support import ROOT, edit_rules, fixture
from test_honest_verification import copy_instead_of_transpose
from tf2hf import convert
from tf2hf.tfckpt import open_checkpoint
from tf2hf.cli import app
from tf2hf.errors import OutputError, VerificationError
from tf2hf.output.staging import OLD, PARTIAL, clean_leftovers
from tf2hf.engine.registry import families

runner = CliRunner()


# --- helpers ------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def leftovers(dest: Path) -> list[Path]:
    return sorted(p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.tf2hf-"))


def previous_version(dest: Path) -> dict[str, str]:
    """A complete earlier conversion at ``dest`` (of another checkpoint); its snapshot."""
    convert("bert", tf=fixture("example"), out=dest, gelu="tanh", verify=False)
    return snapshot(dest)


def dead_pid() -> int:
    """The id of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def tf2hf_cli(*args) -> list[str]:
    return [sys.executable, "-m", "tf2hf", "convert", *map(str, args)]


def run_and_kill(args: list[str], kill_point: Callable[[], object], timeout: float = 120) -> tuple[int, object]:
    """Start a conversion; SIGKILL it as soon as ``kill_point()`` returns something truthy."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            seen = kill_point()
            if seen:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return proc.pid, seen
            if proc.poll() is not None:
                _out, err = proc.communicate()
                pytest.fail(f"the conversion ended (exit {proc.returncode}) before the kill point: {err.decode()[-2000:]}")
            time.sleep(0.001)
        pytest.fail("the kill point was never reached")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- a conversion that takes a few seconds ------------------------------------------------------


BIG = dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A BERT-shaped checkpoint of ~42M float32 parameters (~160 MB), MLM + NSP heads."""
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    spec = importlib.util.spec_from_file_location("make_checkpoints", ROOT / "bench" / "make_checkpoints.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = {**bench.COMMON, **BIG}
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    names, tensors = [], []
    for name, shape in bench.variables(config).items():
        value = rng.standard_normal(shape, dtype=np.float32) * 0.02
        if name.endswith("gamma"):
            value += 1.0
        names.append(name)
        tensors.append(value)
    tf.raw_ops.SaveV2(prefix=str(folder / "model.ckpt-1"), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    (folder / "bert_config.json").write_text(json.dumps(config))
    return folder


def _staging(dest: Path) -> Path | None:
    found = [p for p in dest.parent.glob(f".{dest.name}{PARTIAL}*") if p.is_dir()]
    return found[0] if found else None


def staging_created(dest: Path):
    return lambda: _staging(dest)


def model_partly_written(dest: Path, at_least: int = 40 << 20):
    def check():
        staging = _staging(dest)
        model = staging / "model.safetensors" if staging else None
        try:
            size = model.stat().st_size if model else 0
        except FileNotFoundError:
            return None
        return size if size >= at_least else None

    return check


def verifying(dest: Path, after: float = 0.5):
    """config.json is written after the model and before verification; wait a little more."""
    first_seen: list[float] = []

    def check():
        staging = _staging(dest)
        if staging is None or not (staging / "config.json").exists():
            return None
        if not first_seen:
            first_seen.append(time.monotonic())
        return time.monotonic() - first_seen[0] >= after

    return check


KILL_POINTS = {
    "when the staging folder appears": staging_created,
    "while model.safetensors is written": model_partly_written,
    "during verification": verifying,
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sigkill_during_a_forced_conversion_keeps_the_previous_version(big, tmp_path, point):
    dest = tmp_path / "out"
    before = previous_version(dest)
    pid, seen = run_and_kill(tf2hf_cli("bert", "--tf", big, "--out", dest, "--force", "--gelu", "tanh"), KILL_POINTS[point](dest))

    assert snapshot(dest) == before  # byte for byte the previous version
    (left,) = leftovers(dest)
    assert left.name.startswith(f".out{PARTIAL}{pid}-")
    if point == "while model.safetensors is written":
        assert (left / "model.safetensors").stat().st_size < 41_668_412 * 4  # killed mid-write
    if point == "during verification":
        assert (left / "config.json").exists() and not (left / "README.md").exists()

    # The next run removes the dead run's folder and replaces the previous version.
    done = subprocess.run(tf2hf_cli("bert", "--tf", big, "--out", dest, "--force", "--no-verify"), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert leftovers(dest) == []
    assert (dest / "model.safetensors").stat().st_size > 41_668_412 * 4
    assert json.loads((dest / "config.json").read_text())["hidden_size"] == 512


def test_sigkill_without_a_previous_version_leaves_no_destination(big, tmp_path):
    dest = tmp_path / "out"
    run_and_kill(tf2hf_cli("bert", "--tf", big, "--out", dest, "--no-verify"), model_partly_written(dest))
    assert not dest.exists() and len(leftovers(dest)) == 1
    done = subprocess.run(tf2hf_cli("bert", "--tf", big, "--out", dest, "--no-verify"), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # the leftover does not count as an existing output
    assert leftovers(dest) == [] and (dest / "model.safetensors").exists()


# --- --force: the previous version survives every failure -----------------------------------------


def test_force_keeps_the_previous_version_when_verification_fails(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    before = previous_version(dest)
    broken = edit_rules(families()["bert"], copy_instead_of_transpose("attention.self.query.weight"))
    monkeypatch.setattr(tf2hf.api, "select", lambda *args, **kwargs: broken)
    with pytest.raises(VerificationError):
        convert("bert", tf=fixture("bert_pretrain"), out=dest, gelu="tanh", force=True)
    assert snapshot(dest) == before and leftovers(dest) == []


def test_force_keeps_the_previous_version_when_the_input_is_damaged(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(fixture("bert_pretrain"), src)
    shard = next(src.glob("*.data-*"))
    with open_checkpoint(src) as ckpt:
        info = ckpt.variables["cls/predictions/output_bias"]  # read last-but-one: after most of the writing
    raw = bytearray(shard.read_bytes())
    raw[info.offset] ^= 1
    shard.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    before = previous_version(dest)
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(dest), "--force"])
    assert result.exit_code == 1 and "is corrupt" in result.stderr
    assert snapshot(dest) == before and leftovers(dest) == []


def test_force_replaces_the_folder_in_one_step(tmp_path):
    dest = tmp_path / "out"
    previous_version(dest)
    (dest / "stale.txt").write_text("from the previous version")
    convert("bert", tf=fixture("bert_pretrain"), out=dest, gelu="tanh", force=True)
    assert not (dest / "stale.txt").exists() and (dest / "model.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_without_an_atomic_swap_renames_aside_and_cleans_up(tmp_path, monkeypatch):
    """Where renameat2 is missing the previous version is renamed aside, then removed."""
    monkeypatch.setattr(tf2hf.output.staging, "_renameat2", lambda *args: False)
    dest = tmp_path / "out"
    previous_version(dest)
    convert("bert", tf=fixture("bert_pretrain"), out=dest, gelu="tanh", force=True, verify=False)
    assert json.loads((dest / "config.json").read_text())["hidden_size"] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_previous_version_set_aside_by_a_dead_run_is_put_back(tmp_path):
    """A run killed between its two renames (the non-atomic fallback) left the destination
    missing and the previous version aside: the next run restores it before anything else."""
    dest = tmp_path / "out"
    before = previous_version(dest)
    aside = tmp_path / f".out{OLD}{dead_pid()}-0badc0de"
    os.rename(dest, aside)
    result = runner.invoke(app, ["convert", "bert", "--tf", str(fixture("bert_pretrain")), "--out", str(dest)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {dest}: already exists; choose another --out or pass --force to replace it"]
    assert snapshot(dest) == before and leftovers(dest) == []


def test_leftovers_of_a_running_conversion_are_left_alone(tmp_path):
    dest = tmp_path / "out"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = dead_pid()
    try:
        (tmp_path / f".out{PARTIAL}{alive.pid}-00000000").mkdir()
        (tmp_path / f".out{PARTIAL}{dead}-00000000").mkdir()
        assert clean_leftovers(dest) == [tmp_path / f".out{PARTIAL}{dead}-00000000"]
        assert leftovers(dest) == [tmp_path / f".out{PARTIAL}{alive.pid}-00000000"]
    finally:
        alive.kill()
        alive.wait()


def test_a_file_at_the_destination_is_not_replaced(tmp_path):
    dest = tmp_path / "out"
    dest.write_text("not a folder")
    result = runner.invoke(app, ["convert", "bert", "--tf", str(fixture("bert_pretrain")), "--out", str(dest), "--force"])
    assert result.stderr.splitlines() == [f"error: {dest}: exists and is not a folder; choose another --out"]
    assert dest.read_text() == "not a folder" and leftovers(dest) == []


def test_a_dangling_link_at_the_destination_counts_as_existing(tmp_path):
    dest = tmp_path / "out"
    dest.symlink_to(tmp_path / "nowhere")
    result = runner.invoke(app, ["convert", "bert", "--tf", str(fixture("bert_pretrain")), "--out", str(dest)])
    assert result.stderr.splitlines() == [f"error: {dest}: already exists; choose another --out or pass --force to replace it"]
    assert dest.is_symlink() and leftovers(dest) == []


def test_parent_folders_made_for_a_failed_run_are_removed(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(fixture("bert_pretrain"), src)
    with open_checkpoint(src) as ckpt:
        info = ckpt.variables["bert/embeddings/word_embeddings"]
    shard = next(src.glob("*.data-*"))
    raw = bytearray(shard.read_bytes())
    raw[info.offset] ^= 1
    shard.write_bytes(bytes(raw))
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(tmp_path / "a" / "b" / "out")])
    assert result.exit_code == 1 and "is corrupt" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


# --- read-only and full file systems ----------------------------------------------------------------


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount_tmpfs(options) -> a fresh tmpfs mount point; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); needs root in a sandbox")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


@pytest.mark.parametrize("under", ["out", "new/out"])
def test_read_only_destination(mount_tmpfs, under):
    read_only = mount_tmpfs("ro,size=1m")
    dest = read_only / under
    result = runner.invoke(app, ["convert", "bert", "--tf", str(fixture("bert_pretrain")), "--out", str(dest)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {dest}: cannot write there (Read-only file system); choose a writable --out"]
    assert list(read_only.iterdir()) == []


# The order in which a conversion writes its files (tf2hf/api.py and tf2hf/tokenizer.py).
WRITE_ORDER = ["model.safetensors", "config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "README.md"]


@pytest.fixture(scope="module")
def page_sizes(tmp_path_factory) -> dict[str, int]:
    """How many 4 KiB tmpfs pages each output file of the example fixture needs."""
    out = tmp_path_factory.mktemp("sizes") / "m"
    convert("bert", tf=fixture("example"), out=out, gelu="tanh", verify=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(WRITE_ORDER)
    return {p.name: math.ceil(p.stat().st_size / 4096) for p in out.iterdir()}


@pytest.mark.parametrize("fails_at", ["model.safetensors", "vocab.txt", "tokenizer.json", "README.md"])
def test_full_disk(mount_tmpfs, page_sizes, fails_at):
    """The disk fills up exactly when ``fails_at`` is written: a clear error, nothing left."""
    before = WRITE_ORDER[: WRITE_ORDER.index(fails_at)]
    pages = sum(page_sizes[name] for name in before)
    disk = mount_tmpfs(f"size={max(pages, 1) * 4}k")
    dest = disk / "out"
    result = runner.invoke(app, ["convert", "bert", "--tf", str(fixture("example")), "--out", str(dest), "--gelu", "tanh"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"error: {dest}: no space left on the device; free some space or choose another --out"]
    assert list(disk.iterdir()) == []


def test_full_disk_control_exactly_enough_space(mount_tmpfs, page_sizes):
    """With room for every file the same conversion succeeds: the page counts above are exact,
    so each case above runs out of space at the file it names."""
    disk = mount_tmpfs(f"size={sum(page_sizes.values()) * 4}k")
    result = runner.invoke(app, ["convert", "bert", "--tf", str(fixture("example")), "--out", str(disk / "out"), "--gelu", "tanh"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (disk / "out").iterdir()) == sorted(WRITE_ORDER)


def test_full_disk_with_bin_format(mount_tmpfs):
    disk = mount_tmpfs("size=32k")
    dest = disk / "out"
    result = runner.invoke(app, ["convert", "bert", "--tf", str(fixture("example")), "--out", str(dest), "--format", "bin"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"error: {dest}: no space left on the device; free some space or choose another --out"]
    assert list(disk.iterdir()) == []
