"""Read only the weights (issue 17): slots are never read, provenance comes from what is read,
the batch fingerprint reads no shard, and verification runs in a process started early.

The checkpoints here are written byte by byte (the index through tf2hf's own table writer), so
that the optimizer slots can be put where reading them is detectable: beyond the end of a
truncated data shard, or between the weights of a shard whose page cache was dropped.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import mmap
import os
import shutil
import subprocess
import sys
from pathlib import Path

import crc32c
import numpy as np
import pytest
from typer.testing import CliRunner

from support import ROOT
from tf2hf import convert
from tf2hf.batch.markers import fingerprint
from tf2hf.batch.run import convert_many
from tf2hf.cli import app
from tf2hf.errors import ShortShardError, VerificationError
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt.sstable import mask_crc
from tf2hf.tfckpt.writer import TableWriter, encode_entry, encode_header
from tf2hf.verify import prewarm

CONFIG = dict(vocab_size=2048, hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
              max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.1,
              attention_probs_dropout_prob=0.1, initializer_range=0.02)
FLOAT32, INT64 = 1, 9  # TF DataType codes


def _bench_variables(config: dict) -> dict[str, tuple[int, ...]]:
    """run_pretraining.py's variable names and shapes, as bench/make_checkpoints.py writes them."""
    spec = importlib.util.spec_from_file_location("make_checkpoints", ROOT / "bench" / "make_checkpoints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.variables(config)


def write_checkpoint(folder: Path, *, slots_last: bool = False, truncate_slots: bool = False, vocab: bool = True) -> Path:
    """A BERT + Adam checkpoint in ``folder``; its prefix.

    By default the data shard is laid out as TensorFlow lays it out (by name, so each weight's
    ``adam_m``/``adam_v`` follow it). ``slots_last`` puts every weight first; ``truncate_slots``
    then ends the file where the weights end, while the index still lists the slots after it.
    """
    rng = np.random.default_rng(17)
    arrays: dict[str, np.ndarray] = {}
    for name, shape in _bench_variables(CONFIG).items():
        arrays[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02 + (1.0 if name.endswith("gamma") else 0.0)).astype(np.float32)
        arrays[f"{name}/adam_m"] = rng.standard_normal(shape, dtype=np.float32) * 1e-3
        arrays[f"{name}/adam_v"] = np.abs(rng.standard_normal(shape, dtype=np.float32)) * 1e-6
    arrays["global_step"] = np.array(1000, dtype=np.int64)
    names = sorted(arrays, key=lambda n: n.encode("utf-8"))
    is_slot = lambda n: n.endswith(("/adam_m", "/adam_v"))  # noqa: E731
    layout = [n for n in names if not is_slot(n)] + [n for n in names if is_slot(n)] if slots_last else names
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "model.ckpt-1000"
    entries, offset = {}, 0
    with open(f"{prefix}.data-00000-of-00001", "wb") as data:
        for name in layout:
            raw = np.ascontiguousarray(arrays[name]).tobytes()
            if not (truncate_slots and is_slot(name)):
                data.write(raw)
            dtype = INT64 if arrays[name].dtype == np.int64 else FLOAT32
            entries[name] = encode_entry(dtype, arrays[name].shape, 0, offset, len(raw), mask_crc(crc32c.crc32c(raw)))
            offset += len(raw)
        data.flush()
        os.fsync(data.fileno())
    with open(f"{prefix}.index", "wb") as index:
        table = TableWriter(index)
        table.add(b"", encode_header(1))
        for name in names:
            table.add(name.encode("utf-8"), entries[name])
        table.finish()
    (folder / "bert_config.json").write_text(json.dumps(CONFIG))
    if vocab:
        write_vocab(folder / "vocab.txt")
    return prefix


def write_vocab(path: Path) -> None:
    specials = ["[PAD]", *[f"[unused{i}]" for i in range(99)], "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    path.write_text("\n".join(specials + [f"w{i}" for i in range(CONFIG["vocab_size"] - len(specials))]) + "\n")


def shard_of(prefix: Path) -> Path:
    return Path(f"{prefix}.data-00000-of-00001")


# --- slots never read ------------------------------------------------------------------------


def test_slots_beyond_the_end_of_a_truncated_shard_are_never_touched(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt", slots_last=True, truncate_slots=True)
    with open_checkpoint(prefix) as ckpt:
        listed = sum(v.size for v in ckpt.variables.values())
        assert shard_of(prefix).stat().st_size < listed / 2  # two thirds of the bytes are not there
        with pytest.raises(ShortShardError):  # the slots really are unreadable
            ckpt.read("bert/pooler/dense/kernel/adam_m")
    result = convert("bert", tf=prefix, out=tmp_path / "out")
    assert result.verification["passed"]
    assert (tmp_path / "out" / "model.safetensors").is_file()


def _resident_pages(path: Path) -> np.ndarray:
    """Which pages of ``path`` are in the page cache (mincore on a mapping never touched)."""
    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        anchor = ctypes.c_char.from_buffer(mapped)
        vector = (ctypes.c_ubyte * pages)()
        if libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vector) != 0:
            pytest.skip(f"mincore failed (errno {ctypes.get_errno()})")
        del anchor
        return np.frombuffer(bytes(vector), dtype=np.uint8) & 1
    finally:
        mapped.close()


def _drop_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


@pytest.mark.skipif(not hasattr(os, "posix_fadvise") or not sys.platform.startswith("linux"), reason="Linux page-cache test")
@pytest.mark.parametrize("hash_sources", [False, True])
def test_slot_pages_between_the_weights_stay_on_disk(tmp_path, hash_sources):
    prefix = write_checkpoint(tmp_path / "ckpt")  # TF's layout: each weight's slots right after it
    shard = shard_of(prefix)
    _drop_cache(shard)
    if _resident_pages(shard).any():
        pytest.skip("this file system keeps the pages cached (POSIX_FADV_DONTNEED has no effect)")
    convert("bert", tf=prefix, out=tmp_path / "out", verify=False, hash_sources=hash_sources)
    resident = _resident_pages(shard)
    page = mmap.PAGESIZE
    with open_checkpoint(prefix) as ckpt:
        inner = {}
        for name, info in ckpt.variables.items():
            first, end = -(-info.offset // page), (info.offset + info.size) // page  # pages wholly inside
            if end > first:
                inner[name] = resident[first:end]
    slots = {n: p for n, p in inner.items() if n.endswith(("/adam_m", "/adam_v"))}
    weights = {n: p for n, p in inner.items() if n not in slots}
    assert all(p.all() for p in weights.values())  # the measurement works: every weight was read
    if hash_sources:
        assert all(p.all() for p in slots.values())  # asked for: the whole shard was hashed
    else:
        read = [n for n, p in slots.items() if p.any()]
        assert not read, f"slot pages were read from disk: {read[:5]}"


# --- provenance ------------------------------------------------------------------------------


def _sha256sum(paths: list[Path]) -> dict[str, str]:
    if shutil.which("sha256sum"):
        lines = subprocess.run(["sha256sum", *map(str, paths)], check=True, capture_output=True, text=True).stdout.splitlines()
        return {Path(line.split(None, 1)[1].lstrip("*")).name: line.split()[0] for line in lines}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_hash_sources_gives_the_digests_of_sha256sum(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt")
    result = convert("bert", tf=prefix, out=tmp_path / "out", verify=False, hash_sources=True)
    record = result.provenance
    assert record["hashing"] == "full"
    expected = _sha256sum(sorted(p for p in (tmp_path / "ckpt").iterdir()))
    assert {f["file"]: f["sha256"] for f in record["sources"]} == expected
    assert {f["role"] for f in record["sources"]} == {"index", "data", "config", "vocabulary"}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "hashed in full (`--hash-sources`)" in card
    assert expected[shard_of(prefix).name] in card


def test_by_default_the_shards_are_recorded_by_size_and_mtime_and_the_outputs_by_sha256(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt")
    result = convert("bert", tf=prefix, out=tmp_path / "out", verify=False)
    record = result.provenance
    assert record["hashing"] == "index"
    by_role = {f["role"]: f for f in record["sources"]}
    shard = shard_of(prefix)
    assert by_role["data"]["sha256"] is None
    assert by_role["data"]["bytes"] == shard.stat().st_size and by_role["data"]["mtime_ns"] == shard.stat().st_mtime_ns
    expected = _sha256sum([Path(f"{prefix}.index"), tmp_path / "ckpt" / "bert_config.json", tmp_path / "ckpt" / "vocab.txt"])
    assert {f["file"]: f["sha256"] for f in record["sources"] if f["role"] != "data"} == expected
    out = tmp_path / "out"
    written = _sha256sum(sorted(p for p in out.iterdir() if p.name != "README.md"))
    assert record["outputs"] == written and "model.safetensors" in written
    card = (out / "README.md").read_text()
    assert "identified by size and modification time" in card and "not hashed" in card
    assert written["model.safetensors"] in card
    assert json.loads(json.dumps(result.to_dict()))["provenance"] == record


def test_hash_sources_on_the_command_line(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt")
    run = CliRunner().invoke(app, ["convert", "bert", "--tf", str(prefix), "--out", str(tmp_path / "out"), "--no-verify", "--hash-sources", "--json"])
    assert run.exit_code == 0, run.output
    digest = hashlib.sha256(shard_of(prefix).read_bytes()).hexdigest()
    assert digest in (tmp_path / "out" / "README.md").read_text()


# --- batch fingerprint -----------------------------------------------------------------------


def _fingerprint(prefix: Path) -> str:
    with open_checkpoint(prefix) as ckpt:
        return fingerprint(ckpt.files, {})[0]


def test_fingerprint_follows_what_matters_without_reading_the_shards(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt", slots_last=True, truncate_slots=True, vocab=False)
    shard = shard_of(prefix)
    first = _fingerprint(prefix)
    assert _fingerprint(prefix) == first  # same files: up to date
    info = shard.stat()
    os.utime(shard, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    touched = _fingerprint(prefix)
    assert touched != first  # touched shard: stale
    copy = tmp_path / "copy"
    shutil.copyfile(shard, copy)
    os.replace(copy, shard)  # replaced by a copy of itself: a new mtime
    assert _fingerprint(prefix) not in (first, touched)
    replaced = _fingerprint(prefix)
    write_vocab(tmp_path / "ckpt" / "vocab.txt")
    assert _fingerprint(prefix) != replaced  # a vocabulary appeared beside it: stale


def test_batch_rerun_is_current_and_a_vocabulary_added_later_makes_it_stale(tmp_path):
    zoo = tmp_path / "zoo"
    write_checkpoint(zoo / "m", vocab=False)
    out = tmp_path / "out"
    first = list(convert_many([zoo / "m"], out, workers=1, verify=False))
    assert [r.status for r in first] == ["converted"], first
    assert not (out / "m" / "vocab.txt").exists()
    again = list(convert_many([zoo / "m"], out, workers=1, verify=False))
    assert [r.status for r in again] == ["skipped"], again
    write_vocab(zoo / "m" / "vocab.txt")
    stale = list(convert_many([zoo / "m"], out, workers=1, verify=False))
    assert [r.status for r in stale] == ["failed"] and "fingerprint differs" in stale[0].reason
    forced = list(convert_many([zoo / "m"], out, workers=1, verify=False, force=True, hash_sources=True))
    assert [r.status for r in forced] == ["converted"] and (out / "m" / "vocab.txt").is_file()
    assert "hashed in full" in (out / "m" / "README.md").read_text()


# --- verification in its own process ---------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "tf2hf-partial" in p.name)


def test_verification_in_a_process_started_first_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(prewarm, "already_warm", lambda: False)
    prefix = write_checkpoint(tmp_path / "ckpt", slots_last=True, truncate_slots=True)
    result = convert("bert", tf=prefix, out=tmp_path / "out")
    assert result.verification["passed"] and result.verification["worst"] < result.verification["tolerance"]


@pytest.mark.parametrize("worker, says", [
    ("import sys; sys.stdin.readline(); sys.exit(3)", "exited with code 3"),
    ("import os, signal, sys; sys.stdin.readline(); os.kill(os.getpid(), signal.SIGKILL)", "was killed"),
    ("import sys; sys.stderr.write('ImportError: no torch here\\n'); sys.exit(1)", "no torch here"),
])
def test_a_verification_process_that_dies_fails_in_one_line_and_leaves_nothing(tmp_path, monkeypatch, worker, says):
    monkeypatch.setattr(prewarm, "already_warm", lambda: False)
    monkeypatch.setattr(prewarm, "WORKER", [sys.executable, "-c", worker])
    prefix = write_checkpoint(tmp_path / "ckpt")
    with pytest.raises(VerificationError) as caught:
        convert("bert", tf=prefix, out=tmp_path / "out")
    message = str(caught.value)
    assert "\n" not in message and says in message and "nothing was written" in message
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_a_conversion_that_fails_first_ends_its_verification_process(tmp_path, monkeypatch):
    pid_file = tmp_path / "pid"
    waiter = f"import os, sys; open({str(pid_file)!r}, 'w').write(str(os.getpid())); sys.stdin.read()"
    monkeypatch.setattr(prewarm, "already_warm", lambda: False)
    monkeypatch.setattr(prewarm, "WORKER", [sys.executable, "-c", waiter])
    prefix = write_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "bert_config.json").write_text("{not json")
    with pytest.raises(Exception):
        convert("bert", tf=prefix, out=tmp_path / "out")
    if pid_file.exists():  # it had started: it must be gone (reaped, not a zombie)
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)
    assert not (tmp_path / "out").exists()


def test_no_verify_and_dry_run_never_start_torch(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt")
    code = (
        "import sys; from tf2hf import convert; "
        f"convert('bert', tf={str(prefix)!r}, out={str(tmp_path / 'out')!r}, verify=False); "
        f"convert('bert', tf={str(prefix)!r}, dry_run=True); "
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_digest_of_every_written_file_is_that_of_its_bytes_in_both_formats(tmp_path):
    prefix = write_checkpoint(tmp_path / "ckpt")
    for fmt in ("safetensors", "bin"):
        out = tmp_path / fmt
        result = convert("bert", tf=prefix, out=out, verify=False, format=fmt)
        expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir() if p.name != "README.md"}
        assert result.provenance["outputs"] == expected


def test_hash_sources_is_a_manifest_key(tmp_path):
    from tf2hf.batch.zoo import load_manifest
    from tf2hf.errors import ManifestError

    write_checkpoint(tmp_path / "zoo" / "m")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"entries": [{"source": "zoo/m", "out": "m", "hash_sources": True}]}))
    (entry,) = load_manifest(manifest)
    assert entry.options()["hash_sources"] is True
    results = list(convert_many([entry], tmp_path / "out", workers=1, verify=False))
    assert [r.status for r in results] == ["converted"], results
    assert hashlib.sha256(shard_of(tmp_path / "zoo" / "m" / "model.ckpt-1000").read_bytes()).hexdigest() in (tmp_path / "out" / "m" / "README.md").read_text()
    manifest.write_text(json.dumps({"entries": [{"source": "zoo/m", "hash_sources": "yes"}]}))
    with pytest.raises(ManifestError, match="hash_sources must be true or false"):
        load_manifest(manifest)
