"""``tf2hf batch`` and ``convert_many``: a zoo built from fixtures, converted with 2 workers.

The zoo mixes families (BERT, Google ALBERT, brightmart), has a folder with two steps, a
damaged checkpoint (one flipped byte in a weight: crc32c error) and, when ../shared is
present, a non-BERT checkpoint. Expected classes come from each fixture's ``meta.json``
(written when the fixture was built by the upstream code), not from tf2hf.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tf2hf
from support import ROOT, SHARED, fixture
from tf2hf.batch.events import Finished
from tf2hf.batch.local_pool import LocalExecutor
from tf2hf.batch.markers import MARKER
from tf2hf.batch.run import convert_many
from tf2hf.tfckpt import open_checkpoint
from tf2hf.cli import app
from tf2hf.errors import ManifestError
from tf2hf.batch.zoo import discover, load_manifest

runner = CliRunner()

# Where each fixture goes in the zoo. bright_classifier's meta.json names no class: brightmart
# checkpoints convert to AlbertFor* by default (MAPPING.md §4).
LAYOUT = {
    "bert/pretrain": "bert_pretrain",
    "bert/classifier": "bert_classifier",
    "albert/classifier": "albert_classifier",
    "albert/squad": "albert_squad",
    "bright": "bright_classifier",
    "team/a/squad": "bert_squad",
}
NO_META_CLASS = {"bright_classifier": "AlbertForSequenceClassification"}
CORRUPT = "broken"
STEPS = "steps"
NONBERT = "t2t"


def expected_class(name: str) -> str:
    meta = json.loads((fixture(name) / "meta.json").read_text())
    return meta.get("transformers_class") or NO_META_CLASS[name]


def copy_fixture(name: str, dest: Path) -> None:
    shutil.copytree(fixture(name), dest, ignore=shutil.ignore_patterns("tf_outputs.npz", "variables.txt", "meta.json"))


def add_steps(folder: Path) -> None:
    """Step 1 = the encoder-only checkpoint, step 2 = the MLM-only one: the latest is MLM."""
    folder.mkdir(parents=True)
    for step, name in ((1, "bert_encoder_only"), (2, "bert_mlm_only")):
        for src in fixture(name).glob("model.ckpt-1.*"):
            shutil.copy(src, folder / src.name.replace("model.ckpt-1", f"model.ckpt-{step}"))
    for side in ("bert_config.json", "vocab.txt"):
        shutil.copy(fixture("bert_mlm_only") / side, folder / side)
    (folder / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-2"\n')


def add_corrupt(folder: Path) -> None:
    copy_fixture("bert_classifier", folder)
    with open_checkpoint(folder) as ckpt:
        info = ckpt.variables["bert/encoder/layer_1/output/dense/kernel"]
        shard = ckpt.shard_paths[info.shard]
    raw = bytearray(shard.read_bytes())
    raw[info.offset + 7] ^= 0x40
    shard.write_bytes(bytes(raw))


def build_zoo(root: Path, *, with_bad: bool = True) -> dict[str, str]:
    """The zoo; returns {output name: expected class} of the entries that must convert."""
    good = {}
    for rel, name in LAYOUT.items():
        copy_fixture(name, root / rel)
        good[rel] = expected_class(name)
    add_steps(root / STEPS)
    good[STEPS] = "BertForMaskedLM"
    if with_bad:
        add_corrupt(root / CORRUPT)
        if SHARED.exists():
            shutil.copytree(SHARED / "real" / "t2t-2shard-nonbert", root / NONBERT)
            for path in (root / NONBERT).iterdir():
                path.chmod(0o644)
    return good


def architectures(folder: Path) -> str:
    (cls,) = json.loads((folder / "config.json").read_text())["architectures"]
    return cls


def partial_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tf2hf-partial-" in p.name or ".tf2hf-old-" in p.name]


def completed(out: Path) -> set[str]:
    """Output names with a marker, outside staging (hidden) folders.

    A running batch renames staging folders while this walks the tree; a folder that vanishes
    mid-walk just means the walk is taken again.
    """
    for _attempt in range(100):
        try:
            found = set()
            for marker in out.glob(f"**/{MARKER}"):
                rel = marker.parent.relative_to(out)
                if not any(part.startswith(".") for part in rel.parts):
                    found.add(str(rel))
            return found
        except FileNotFoundError:
            continue
    raise AssertionError(f"{out} kept changing under the walk")


def batch(*args) -> object:
    return runner.invoke(app, ["batch", *map(str, args)])


@pytest.fixture
def zoo(tmp_path):
    root = tmp_path / "zoo"
    good = build_zoo(root)
    return root, good


def test_mixed_zoo_statuses_report_exit_code_and_rerun(zoo, tmp_path):
    root, good = zoo
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    result = batch(root, "--out", out, "--workers", 2, "--no-verify", "--report", report)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")

    data = json.loads(report.read_text())
    statuses = {e["key"]: e["status"] for e in data["entries"]}
    bad = {CORRUPT} | ({NONBERT} if SHARED.exists() else set())
    assert statuses == {**{k: "converted" for k in good}, **{k: "failed" for k in bad}}
    assert data["counts"] == {"converted": len(good), "skipped": 0, "failed": len(bad)}
    assert data["ok"] is False and data["workers"] == 2
    reasons = {e["key"]: e["reason"] for e in data["entries"]}
    assert "bert/encoder/layer_1/output/dense/kernel' is corrupt" in reasons[CORRUPT]
    assert "copy it again" in reasons[CORRUPT]
    if SHARED.exists():
        assert "matches no known family" in reasons[NONBERT]
    for key, cls in good.items():
        assert architectures(out / key) == cls, key
        marker = json.loads((out / key / MARKER).read_text())
        assert marker["verified"] is False and marker["target_class"] == cls
    assert not (out / CORRUPT).exists() and not partial_leftovers(out)
    # stdout has one line per entry as it finished, the failure reason included (listed once).
    assert sum(f"failed    {CORRUPT}: " in line for line in result.stdout.splitlines()) == 1

    again = batch(root, "--out", out, "--workers", 2, "--no-verify", "--report", report)
    assert again.exit_code == 1
    data = json.loads(report.read_text())
    assert {e["key"]: e["status"] for e in data["entries"]} == {**{k: "skipped" for k in good}, **{k: "failed" for k in bad}}


def test_all_good_exits_zero_and_reruns_skip(tmp_path):
    root = tmp_path / "zoo"
    good = build_zoo(root, with_bad=False)
    out = tmp_path / "out"
    first = batch(root, "--out", out, "--workers", 2, "--no-verify")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().splitlines()[-1].startswith(f"{len(good)} converted, 0 skipped, 0 failed")
    second = batch(root, "--out", out, "--workers", 2, "--no-verify")
    assert second.exit_code == 0
    assert second.stdout.strip().splitlines()[-1].startswith(f"0 converted, {len(good)} skipped, 0 failed")


def test_all_steps_and_latest_step(tmp_path):
    root = tmp_path / "zoo"
    add_steps(root / "run")
    latest = discover(root)
    assert [(e.out, Path(e.source).name) for e in latest] == [("run", "model.ckpt-2")]
    assert "latest of 2 checkpoints" in latest[0].note
    every = discover(root, all_steps=True)
    assert [(e.out, Path(e.source).name) for e in every] == [("run/1", "model.ckpt-1"), ("run/2", "model.ckpt-2")]
    result = batch(root, "--out", tmp_path / "out", "--all-steps", "--workers", 2, "--no-verify")
    assert result.exit_code == 0, result.output
    assert architectures(tmp_path / "out" / "run" / "1") == "BertModel"
    assert architectures(tmp_path / "out" / "run" / "2") == "BertForMaskedLM"


def test_python_api_yields_results_as_they_complete(tmp_path):
    entries = [
        str(fixture("bert_pretrain")),
        {"source": str(fixture("albert_classifier") / "model.ckpt-1"), "out": "nested/albert", "gelu": "tanh"},
        {"source": str(tmp_path / "missing"), "out": "missing"},
    ]
    results = list(tf2hf.convert_many(entries, tmp_path / "out", workers=2, verify=False))
    by_key = {r.key: r for r in results}
    assert set(by_key) == {"bert_pretrain", "nested/albert", "missing"}
    assert by_key["bert_pretrain"].status == "converted" and by_key["bert_pretrain"].target_class == "BertForPreTraining"
    assert by_key["nested/albert"].status == "converted"
    assert json.loads((tmp_path / "out" / "nested" / "albert" / "config.json").read_text())["hidden_act"] == "gelu_new"
    assert by_key["missing"].status == "failed" and by_key["missing"].reason.startswith(f"{tmp_path / 'missing'}")
    json.dumps([r.to_dict() for r in results])  # plain data all the way down
    with pytest.raises(TypeError, match="unknown option"):
        list(convert_many([], tmp_path, colour="red"))


def test_stale_and_foreign_outputs_need_force(tmp_path):
    root = tmp_path / "zoo"
    copy_fixture("bert_pretrain", root / "m")
    out = tmp_path / "out"
    (out / "m").mkdir(parents=True)
    (out / "m" / "mine.txt").write_text("not a model")
    refused = batch(root, "--out", out, "--no-verify", "--workers", 1)
    assert refused.exit_code == 1
    assert f"failed    m: {out / 'm'}: exists and was not written by tf2hf batch (no {MARKER}); pass --force to replace it" in refused.stdout
    assert (out / "m" / "mine.txt").exists()
    # --force replaces a folder tf2hf wrote (or an empty one), never a file of the user's.
    mine = batch(root, "--out", out, "--no-verify", "--workers", 1, "--force")
    assert mine.exit_code == 1
    assert f"failed    m: {out / 'm'}: holds 1 file that tf2hf did not write (mine.txt); choose another --out or remove them" in mine.stdout
    assert (out / "m" / "mine.txt").read_text() == "not a model"
    (out / "m" / "mine.txt").unlink()
    forced = batch(root, "--out", out, "--no-verify", "--workers", 1, "--force")
    assert forced.exit_code == 0, forced.output
    assert architectures(out / "m") == "BertForPreTraining"

    # Another option changes the fingerprint: the output is stale, replaced only with --force.
    stale = batch(root, "--out", out, "--no-verify", "--workers", 1, "--dtype", "float16")
    assert stale.exit_code == 1 and "its fingerprint differs" in stale.stdout
    # A changed config beside the checkpoint makes it stale too.
    config = root / "m" / "bert_config.json"
    config.write_text(config.read_text().replace('"initializer_range": 0.2', '"initializer_range": 0.02'))
    assert "its fingerprint differs" in batch(root, "--out", out, "--no-verify", "--workers", 1).stdout

    # An unverified output is converted again (and replaced) when verification is asked for.
    config.write_text(config.read_text().replace('"initializer_range": 0.02', '"initializer_range": 0.2'))
    verified = batch(root, "--out", out, "--workers", 1)
    assert verified.exit_code == 0, verified.output
    assert "converted m:" in verified.stdout and json.loads((out / "m" / MARKER).read_text())["verified"] is True


def test_symlinks_never_lead_outside(tmp_path):
    outside = tmp_path / "outside"
    copy_fixture("bert_pretrain", outside / "ckpt")
    root = tmp_path / "zoo"
    copy_fixture("bert_classifier", root / "fine")
    (root / "linked_dir").symlink_to(outside / "ckpt", target_is_directory=True)  # not followed
    copy_fixture("bert_squad", root / "linked_file")
    config = root / "linked_file" / "bert_config.json"
    config.unlink()
    config.symlink_to(outside / "ckpt" / "bert_config.json")
    entries = {e.out: e for e in discover(root)}
    assert set(entries) == {"fine", "linked_file"}
    assert entries["linked_file"].status == "skipped"
    assert entries["linked_file"].reason == (
        f"{root.resolve() / 'linked_file' / 'bert_config.json'}: a symbolic link leading outside the zoo "
        f"({(outside / 'ckpt' / 'bert_config.json').resolve()}); not read"
    )

    out = tmp_path / "out"
    out.mkdir()
    (out / "fine").symlink_to(outside, target_is_directory=True)  # an output path that escapes
    result = batch(root, "--out", out, "--no-verify", "--workers", 1)
    assert result.exit_code == 1
    assert f"failed    fine: {out / 'fine'}: leads outside the output root {out}" in result.stdout
    assert "skipped   linked_file: " in result.stdout
    assert sorted(p.name for p in outside.iterdir()) == ["ckpt"]  # nothing written there


def test_nested_checkpoint_folders_do_not_clobber_each_other(tmp_path):
    root = tmp_path / "zoo"
    copy_fixture("bert_pretrain", root)
    copy_fixture("bert_squad", root / "sub")
    entries = {e.out: e for e in discover(root)}
    assert entries["sub"].status is None
    assert entries[""].status == "failed"
    assert entries[""].reason.startswith(f"{root.resolve() / 'model.ckpt-1'}: the output folder (the output root itself) would also hold the output of")


def test_several_checkpoints_at_one_step_are_ambiguous(tmp_path):
    root = tmp_path / "zoo" / "run"
    root.mkdir(parents=True)
    for prefix in ("a.ckpt-5", "b.ckpt-5"):
        for src in fixture("bert_pretrain").glob("model.ckpt-1.*"):
            shutil.copy(src, root / src.name.replace("model.ckpt-1", prefix))
    (entry,) = discover(tmp_path / "zoo")
    assert entry.status == "failed"
    assert entry.reason == f"{root.resolve()}: several checkpoints at step 5 (a.ckpt-5, b.ckpt-5); list the one you want in a --manifest, or pass --all-steps"


def test_manifest_json_yaml_and_errors(tmp_path, monkeypatch):
    copy_fixture("bert_pretrain", tmp_path / "zoo" / "p")
    copy_fixture("albert_classifier", tmp_path / "zoo" / "a")
    (tmp_path / "m.json").write_text(json.dumps({
        "defaults": {"gelu": "tanh"},
        "entries": [{"source": "zoo/p", "out": "pre"}, {"tf": "zoo/a/model.ckpt-1", "family": "albert", "gelu": "erf"}],
    }))
    entries = load_manifest(tmp_path / "m.json")
    assert [(e.out, e.gelu, e.family) for e in entries] == [("pre", "tanh", None), ("zoo/a", "erf", "albert")]
    result = batch("--manifest", tmp_path / "m.json", "--out", tmp_path / "out", "--no-verify", "--workers", 2)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "pre" / "config.json").read_text())["hidden_act"] == "gelu_new"
    assert json.loads((tmp_path / "out" / "zoo" / "a" / "config.json").read_text())["hidden_act"] == "gelu"

    (tmp_path / "m.yaml").write_text("entries:\n  - source: zoo/p\n    out: yaml-pre\n")
    assert [e.out for e in load_manifest(tmp_path / "m.yaml")] == ["yaml-pre"]
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "m.yaml")
    assert str(caught.value) == f"{tmp_path / 'm.yaml'}: reading a YAML manifest needs PyYAML: pip install pyyaml (or write the manifest as JSON)"

    (tmp_path / "bad.json").write_text(json.dumps([{"source": "zoo/p", "out": "../escape"}]))
    bad = batch("--manifest", tmp_path / "bad.json", "--out", tmp_path / "out2")
    assert bad.exit_code == 1
    assert bad.stderr.strip() == f"error: {tmp_path / 'bad.json'}: entry 1: out '../escape' contains '..'; outputs stay inside the output root"
    (tmp_path / "dup.json").write_text(json.dumps([{"source": "zoo/p", "out": "x"}, {"source": "zoo/a", "out": "x"}]))
    with pytest.raises(ManifestError, match="both write to x"):
        load_manifest(tmp_path / "dup.json")
    (tmp_path / "typo.json").write_text(json.dumps([{"source": "zoo/p", "gleu": "tanh"}]))
    with pytest.raises(ManifestError, match="unknown key\\(s\\) 'gleu'"):
        load_manifest(tmp_path / "typo.json")
    assert not (tmp_path / "out2").exists()


def test_cli_usage_errors(tmp_path):
    neither = batch("--out", tmp_path / "out")
    assert neither.exit_code == 1 and neither.stderr.strip() == "error: pass either a ZOO folder or --manifest FILE (not both)"
    missing = batch(tmp_path / "nope", "--out", tmp_path / "out")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope'}: does not exist; pass the folder that holds the checkpoints"
    (tmp_path / "empty").mkdir()
    empty = batch(tmp_path / "empty", "--out", tmp_path / "out")
    assert empty.exit_code == 1 and "no checkpoint (*.index) found" in empty.stderr
    copy_fixture("bert_pretrain", tmp_path / "z" / "m")
    same = batch(tmp_path / "z", "--out", tmp_path / "z")
    assert same.exit_code == 1 and same.stderr.strip() == f"error: {tmp_path / 'z'}: the output root is the zoo itself; choose another --out"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("context", ["forkserver", "spawn"])
def test_a_dead_worker_fails_only_its_entry(tmp_path, context):
    from crashing_jobs import die_on_boom, raise_on_bad

    if context not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {context} start method on this system")
    keys = ["a", "b", "boom", "c", "d", "e"]
    with LocalExecutor(2, job=die_on_boom, context=context) as executor:
        for key in keys:
            executor.submit(key, {"key": key, "source": key, "out": key})
        finished = [e for e in executor.events() if isinstance(e, Finished)]
    assert sorted(e.key for e in finished) == sorted(keys)  # each exactly once
    status = {e.key: e.result["status"] for e in finished}
    assert status == {**{k: "converted" for k in keys if k != "boom"}, "boom": "failed"}
    boom = next(e for e in finished if e.key == "boom")
    assert boom.result["reason"].startswith("internal error: the worker process died while converting this entry")

    with LocalExecutor(1, job=raise_on_bad, context=context) as executor:
        for key in ("ok", "bad"):
            executor.submit(key, {"key": key, "source": key, "out": key})
        results = {e.key: e.result for e in executor.events() if isinstance(e, Finished)}
    assert results["ok"]["status"] == "converted"
    assert results["bad"]["status"] == "failed" and results["bad"]["reason"] == "internal error: RuntimeError: this job is broken"


def wait_for_group_to_end(pgid: int, limit: float = 30.0) -> None:
    """Wait until no live process (zombies do not count) of process group ``pgid`` remains."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        alive = False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
                alive = True
                break
        if not alive:
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_run_resumes_with_exactly_what_is_missing(tmp_path):
    root = tmp_path / "zoo"
    good = build_zoo(root, with_bad=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tf2hf", "batch", str(root), "--out", str(out), "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while first.poll() is None and not completed(out):
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait()
    assert first.returncode == -signal.SIGKILL
    # Its workers die with it, but a moment later: one may still rename its output into place.
    wait_for_group_to_end(first.pid)
    done = completed(out)
    assert done and done < set(good)
    # Whatever is visible is complete: every file outside staging folders is in a finished output.
    for path in out.rglob("*"):
        rel = path.relative_to(out)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts[:-1]):
            assert any(str(rel).startswith(f"{d}/") for d in done), rel

    rerun = subprocess.run(command + ["--report", str(tmp_path / "r.json")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    entries = {e["key"]: e for e in json.loads((tmp_path / "r.json").read_text())["entries"]}
    assert {k for k, e in entries.items() if e["status"] == "skipped"} == done
    assert {k for k, e in entries.items() if e["status"] == "converted"} == set(good) - done
    for key, cls in good.items():
        assert architectures(out / key) == cls
        assert json.loads((out / key / MARKER).read_text())["verified"] is True
        assert entries[key]["verified"] is True
    assert partial_leftovers(out) == []


def test_hints_name_what_batch_has_instead_of_convert_only_options(tmp_path):
    # A checkpoint without a vocabulary: convert says "pass --vocab", which batch does not have.
    root = tmp_path / "zoo"
    copy_fixture("bert_pretrain", root / "m")
    (root / "m" / "vocab.txt").unlink()
    results = list(convert_many([root / "m"], tmp_path / "out", workers=1, verify=False))
    (warning,) = [w for w in results[0].warnings if "no tokenizer written" in w]
    assert "--vocab" not in warning and 'the "vocab" key of its manifest entry' in warning.replace("--manifest", "manifest")
    from tf2hf.messages import to_batch

    assert to_batch("x: 3 NaN values; pass --allow-non-finite to convert anyway") == (
        "x: 3 NaN values; pass --allow-non-finite (an option of tf2hf convert, not of batch) to convert anyway")
    assert to_batch("x: pass --config FILE") == 'x: pass the "config" key of its --manifest entry'
    assert to_batch("try --gelu tanh, or --force") == "try --gelu tanh, or --force"  # batch has these
