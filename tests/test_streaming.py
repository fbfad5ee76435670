"""The code paths that keep a conversion fast and lean: pages dropped after each tensor,
blocked and streamed transposes, tensors written piece by piece, source files hashed on a
thread, the vectorised erf and the block-wise reference helpers.

Each is held against the plain computation it replaces; no test here measures time.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

from support import fixture
from tf2hf import sources
from tf2hf.engine import transforms
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt import pages as reader_module  # the page handling of the reader
from tf2hf.verify.references.numerics import erf, gelu_erf
from tf2hf.verify.references.weights import param_rows, times_table_t
from tf2hf.output.safetensors_stream import SafetensorsStreamWriter

# --- the reader drops a tensor's pages once its array is gone ------------------------------


def _raw(ckpt, name):
    info = ckpt.variables[name]
    with open(ckpt.shard_paths[info.shard], "rb") as handle:
        handle.seek(info.offset)
        return handle.read(info.size)


def test_read_returns_the_stored_bytes_and_drops_its_pages_when_the_array_goes(monkeypatch):
    dropped = []
    real = reader_module._drop_pages
    monkeypatch.setattr(reader_module, "_drop_pages", lambda mapped, offset, size: (dropped.append((offset, size)), real(mapped, offset, size)))
    with open_checkpoint(fixture("example")) as ckpt:
        name = "bert/embeddings/word_embeddings"
        info = ckpt.variables[name]
        array = ckpt.read(name)
        view = array.T  # a view keeps the pages until it goes too
        assert array.tobytes() == _raw(ckpt, name)
        del array
        gc.collect()
        assert dropped == []
        del view
        gc.collect()
        assert dropped == [(info.offset, info.size)]


def test_an_array_stays_correct_after_its_pages_are_dropped():
    with open_checkpoint(fixture("example")) as ckpt:
        names = sorted(n for n, i in ckpt.variables.items() if i.dtype == "float32" and i.size)
        arrays = {n: ckpt.read(n) for n in names}
        # Drop every page of the shard under the live arrays (what a neighbour's release does
        # to a shared edge page): they are mapped again from the page cache on access.
        mapped = ckpt._maps[0]
        reader_module._drop_pages(mapped, 0, len(mapped))
        for name in names:
            assert arrays[name].tobytes() == _raw(ckpt, name)


def test_every_tensor_read_twice_is_identical():
    with open_checkpoint(fixture("bert_pretrain")) as ckpt:
        for name in sorted(ckpt.variables):
            first = ckpt.read(name).copy()
            gc.collect()
            assert np.array_equal(ckpt.read(name), first)


# --- blocked and streamed transposes -------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (8, 512), (300, 70), (768, 3072), (1031, 517), (4096, 24)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_transpose_matches_numpy(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    src = rng.standard_normal(shape).astype(dtype)
    out = transforms.get("transpose").apply([src], shape[::-1])
    assert out.flags.c_contiguous and out.dtype == dtype
    assert np.array_equal(out, src.T)


@pytest.mark.parametrize("shape", [(768, 3072), (3072, 768), (1031, 1500), (5, 7)])
def test_streamed_transpose_pieces_concatenate_to_the_transpose(shape, monkeypatch):
    monkeypatch.setattr(transforms, "_PIECE_BYTES", 1 << 16)  # many pieces, even for small shapes
    src = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    pieces = [p.copy() for p in transforms.stream(transforms.get("transpose"), [src], shape[::-1])]
    assert all(p.flags.c_contiguous for p in pieces)
    assert np.array_equal(np.concatenate([p.reshape(-1) for p in pieces]), src.T.reshape(-1))


def test_streamed_copy_is_the_source_itself_and_other_transforms_one_piece():
    src = np.arange(12, dtype=np.float32).reshape(3, 4)
    (piece,) = transforms.stream(transforms.get("copy"), [src], (3, 4))
    assert piece is src
    (eye,) = transforms.stream(transforms.get("eye"), [], (3, 3))
    assert np.array_equal(eye, np.eye(3, dtype=np.float32))


# --- safetensors written piece by piece ----------------------------------------------------


def _read_safetensors(path):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = data[8 + length :]
    out = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        out[key] = np.frombuffer(body[start:end], dtype=np.float32).reshape(entry["shape"])
    return out


def test_write_chunks_gives_the_same_file_as_whole_tensors(tmp_path):
    rng = np.random.default_rng(2)
    tensors = {"a.weight": rng.standard_normal((40, 30)).astype(np.float32), "b.bias": rng.standard_normal(7).astype(np.float32)}
    layout = [(k, v.shape) for k, v in tensors.items()]
    whole = SafetensorsStreamWriter(tmp_path / "whole.safetensors", layout, "float32", {"format": "pt"})
    pieces = SafetensorsStreamWriter(tmp_path / "pieces.safetensors", layout, "float32", {"format": "pt"})
    for key in whole.order:
        whole.write(key, tensors[key])
        rows = np.array_split(tensors[key].reshape(-1), 3)
        assert pieces.write_chunks(key, iter(rows)) == tensors[key].nbytes
    whole.close()
    pieces.close()
    assert (tmp_path / "whole.safetensors").read_bytes() == (tmp_path / "pieces.safetensors").read_bytes()
    loaded = _read_safetensors(tmp_path / "pieces.safetensors")
    assert all(np.array_equal(loaded[k], v) for k, v in tensors.items())


@pytest.mark.parametrize("count, message", [(5, "5 elements"), (7, "more than the 24 bytes")])
def test_write_chunks_refuses_the_wrong_number_of_bytes(tmp_path, count, message):
    writer = SafetensorsStreamWriter(tmp_path / "x.safetensors", [("w", (2, 3))], "float32", {})
    with pytest.raises(ValueError) as error:
        writer.write_chunks("w", [np.zeros(count, dtype=np.float32)])
    writer.abort()
    expected = "w: 20 bytes were produced, but shape [2, 3] needs 24" if count == 5 else "w: more than the 24 bytes of shape [2, 3] were produced"
    assert str(error.value) == expected


# --- source files hashed on a thread -------------------------------------------------------


def test_background_hashes_equal_hashlib(tmp_path):
    files = []
    for i, size in enumerate((0, 1, (1 << 20) + 17, 3 << 20)):
        path = tmp_path / f"f{i}"
        path.write_bytes(np.random.default_rng(i).bytes(size))
        files.append(path)
    hashes = sources.BackgroundHashes(files)
    assert hashes.result() == [(str(p), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]


def test_a_digest_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"one")
    assert sources.sha256(path) == hashlib.sha256(b"one").hexdigest()
    stat = path.stat()
    path.write_bytes(b"two")
    # Same size; file times may tick coarser than this test runs, so move them on explicitly.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    expected = hashlib.sha256(b"two").hexdigest()
    assert sources.sha256(path) == expected
    monkeypatch.setattr(sources.hashlib, "sha256", None)  # a second hashing would fail
    assert sources.sha256(path) == expected


def test_background_hashes_report_errors_and_stop_when_cancelled(tmp_path):
    missing = sources.BackgroundHashes([tmp_path / "absent"])
    with pytest.raises(FileNotFoundError):
        missing.result()
    big = tmp_path / "big"
    big.write_bytes(b"\0" * (4 << 20))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(sources.HashCancelled):
        sources.sha256(big, cancel=cancel)
    hashes = sources.BackgroundHashes([big])
    hashes.cancel()
    assert hashes.result() in ([], [(str(big), hashlib.sha256(b"\0" * (4 << 20)).hexdigest())])


# --- the reference's vectorised erf and block-wise helpers ---------------------------------


def test_erf_matches_math_erf():
    rng = np.random.default_rng(3)
    xs = np.concatenate([
        np.linspace(-10.0, 10.0, 400_001),
        rng.standard_normal(100_000) * 3.0,
        rng.standard_normal(10_000) * 1e-8,
        [0.0, -0.0, 0.46875, -0.46875, 4.0, -4.0, 6.0, 1e-300, 5e-324, 27.0, 1e300, -1e300],
    ])
    expected = np.array([math.erf(x) for x in xs])
    got = erf(xs)
    assert np.max(np.abs(got - expected)) <= 1e-15
    tiny = np.abs(xs) < 1e-3  # near zero erf is ~1.13 x: compare relatively there
    assert np.max(np.abs(got[tiny] - expected[tiny]) / np.abs(np.where(expected[tiny] == 0, 1, expected[tiny]))) <= 1e-15


def test_erf_special_values_and_shapes():
    assert erf(np.inf) == 1.0 and erf(-np.inf) == -1.0 and np.isnan(erf(np.nan))
    assert math.copysign(1.0, float(erf(-0.0))) == -1.0
    x = np.random.default_rng(4).standard_normal((2, 3, 5))
    assert erf(x).shape == x.shape
    assert np.allclose(gelu_erf(x), 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0))), rtol=0, atol=1e-15)


def test_param_rows_and_times_table_t_equal_the_whole_table_computation(monkeypatch):
    monkeypatch.setattr("tf2hf.verify.references.weights._TABLE_BLOCK", 7)  # several blocks and a partial one
    rng = np.random.default_rng(5)
    table = rng.standard_normal((30, 6)).astype(np.float32)
    get = {"t": table}.__getitem__
    ids = np.array([[0, 29, 3], [3, 3, 17]])
    assert np.array_equal(param_rows(get, "t", ids), table.astype(np.float64)[ids])
    x = rng.standard_normal((2, 4, 6))
    assert np.allclose(times_table_t(x, get, "t"), x @ table.astype(np.float64).T, rtol=0, atol=1e-13)


# --- start-up ----------------------------------------------------------------------------------


def test_help_loads_neither_numpy_nor_rich_formatting():
    code = (
        "import sys\n"
        "sys.argv = ['tf2hf', '--help']\n"
        "from tf2hf.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        "heavy = [m for m in ('numpy', 'torch', 'transformers', 'rich.markdown', 'pygments') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "convert" in done.stdout


def test_a_verified_conversion_from_the_command_line_prints_everything_before_leaving(tmp_path):
    # After a verification the command skips the interpreter's teardown: its output must still
    # be complete, and the folder in place.
    out = tmp_path / "m"
    done = subprocess.run(
        [sys.executable, "-m", "tf2hf", "convert", "bert", "--tf", str(fixture("example")), "--out", str(out), "--gelu", "tanh", "--json"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["verification"]["passed"] is True
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
