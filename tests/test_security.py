"""Hostile files and a hostile environment: nothing unpickled, plain tensors out, sizes bounded,
no network.

Config and vocabulary size limits and the index bounds checks are cases of
``tests/test_bad_inputs.py`` and ``tests/test_fuzz.py``; this module checks the rest.
"""

from __future__ import annotations

import ast
import os
import pickletools
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import OFFLINE
from support import ROOT, fixture
from tf2hf import convert

PACKAGE = ROOT / "tf2hf"
PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve", "jsonpickle"}


# --- nothing is ever unpickled ---------------------------------------------------------------


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _findings(source: str, filename: str) -> list[str]:
    """Every way the code could run code from a file: pickle-family imports, torch.load without
    weights_only=True, np.load with allow_pickle, eval/exec, trust_remote_code."""
    tree = ast.parse(source, filename)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{filename}:{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLING_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLING_MODULES:
            found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
    for call in _calls(tree):
        name = _dotted(call.func)
        where = f"{filename}:{call.lineno}: {name}"
        if name.endswith("torch.load"):
            weights_only = _keyword(call, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"{where} without weights_only=True")
        if name in ("np.load", "numpy.load"):
            allow = _keyword(call, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"{where} with allow_pickle")
        if name in ("eval", "exec", "__import__") or name.endswith(("yaml.load", "yaml.unsafe_load")):
            found.append(where)
        remote = _keyword(call, "trust_remote_code")
        if remote is not None and not (isinstance(remote, ast.Constant) and remote.value is False):
            found.append(f"{where} with trust_remote_code")
    return found


def test_the_scan_finds_what_it_looks_for():
    bad = textwrap.dedent("""
        import pickle
        from dill import loads
        torch.load(path)
        torch.load(path, weights_only=False)
        np.load(path, allow_pickle=True)
        eval(text)
        AutoModel.from_pretrained(folder, trust_remote_code=True)
    """)
    assert len(_findings(bad, "bad.py")) == 7
    good = "torch.load(path, weights_only=True)\nnp.load(path)\nAutoModel.from_pretrained(folder)\n"
    assert _findings(good, "good.py") == []


def test_the_package_never_unpickles_or_runs_code_from_files():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    findings = [f for path in files for f in _findings(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert findings == []


# --- what is written holds tensors only --------------------------------------------------------

# The only globals a file of plain tensors needs: how torch rebuilds a tensor and its storage.
ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("collections", "OrderedDict"),
    ("torch", "FloatStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
}


def _pickle_globals(data: bytes) -> set[tuple[str, str]]:
    """The (module, name) pairs a pickle would import, read without unpickling it."""
    found, strings = set(), []
    for opcode, arg, _pos in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif opcode.name == "GLOBAL":
            module, name = arg.split(" ", 1)
            found.add((module, name))
        elif opcode.name == "STACK_GLOBAL":
            found.add((strings[-2], strings[-1]))
    return found


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_bin_output_holds_plain_tensors_only(tmp_path, dtype):
    import torch

    convert("bert", tf=fixture("bert_pretrain"), out=tmp_path / "m", gelu="tanh", format="bin", dtype=dtype, verify=False)
    path = tmp_path / "m" / "pytorch_model.bin"
    with zipfile.ZipFile(path) as archive:
        (pickled,) = [n for n in archive.namelist() if n.endswith("data.pkl")]
        globals_used = _pickle_globals(archive.read(pickled))
    assert ("torch._utils", "_rebuild_tensor_v2") in globals_used
    assert globals_used <= ALLOWED_GLOBALS, globals_used - ALLOWED_GLOBALS
    state = torch.load(path, weights_only=True)
    assert state and all(type(v) is torch.Tensor for v in state.values())
    assert {v.dtype for v in state.values()} == {getattr(torch, dtype)}
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_safetensors_is_the_default(tmp_path):
    convert("bert", tf=fixture("bert_pretrain"), out=tmp_path / "m", gelu="tanh", verify=False)
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert "model.safetensors" in names and "pytorch_model.bin" not in names


# --- sizes from files never size an allocation ------------------------------------------------


def test_a_4_tb_entry_is_refused_within_a_small_memory_limit(tmp_path):
    """An index that honestly declares a 4 TB tensor (shape and size agree) beside a tiny shard:
    opening, planning-free reading and the whole conversion fail with typed errors while the
    process may not use more than 1.5 GiB of address space in all."""
    code = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from pathlib import Path
        from test_checkpoint_reader import _entry, _header, _table
        from tf2hf.tfckpt import open_checkpoint
        from tf2hf.errors import ShortShardError
        folder = Path({str(tmp_path)!r})
        shape = (10**6, 10**6)
        pairs = [(b"", _header()), (b"huge", _entry(1, shape, 0, 4 * 10**12, 0))]
        (folder / "model.ckpt-1.index").write_bytes(_table(pairs))
        (folder / "model.ckpt-1.data-00000-of-00001").write_bytes(b"x")
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
        with open_checkpoint(folder) as ckpt:
            assert ckpt.variables["huge"].size == 4 * 10**12
            try:
                ckpt.read("huge")
            except ShortShardError as error:
                print(error)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        f"{tmp_path}/model.ckpt-1.data-00000-of-00001: data shard is truncated (1 bytes, but variable 'huge' needs "
        "bytes 0 to 4000000000000); copy the file again"
    )


# --- no network -------------------------------------------------------------------------------------


def test_every_test_runs_offline():
    for name, value in OFFLINE.items():
        assert os.environ.get(name) == value, name


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in OFFLINE}


def test_the_library_goes_offline_before_importing_transformers():
    code = textwrap.dedent(f"""
        import os, sys
        assert not any(k in os.environ for k in {sorted(OFFLINE)!r})
        from tf2hf.verify.compare import _quiet_transformers
        assert "transformers" not in sys.modules and "huggingface_hub" not in sys.modules
        _quiet_transformers()
        import huggingface_hub.constants
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True
        assert huggingface_hub.constants.HF_HUB_DISABLE_TELEMETRY is True
        print(sorted(k for k in {sorted(OFFLINE)!r} if os.environ.get(k) == "1"))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_clean_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(OFFLINE))


def test_a_verified_conversion_opens_no_connection(tmp_path):
    """With the offline variables unset and every socket connection made to fail, a verified
    conversion (which loads the result with transformers) still succeeds."""
    code = textwrap.dedent(f"""
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError(f"network access: {{args}}")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from tf2hf import convert
        result = convert("bert", tf={str(fixture("bert_pretrain"))!r}, out={str(tmp_path / "m")!r}, gelu="tanh")
        assert result.verification["passed"]
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_clean_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert (tmp_path / "m" / "model.safetensors").exists()
