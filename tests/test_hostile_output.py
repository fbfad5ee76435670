"""Careless and hostile input that used to lose files or give a wrong model with exit code 0
(issue 14): an empty --out, --force over a folder tf2hf never wrote, NaN and Inf weights, values
float16 cannot hold, verification's message when NaN reaches an output, and config values copied
into config.json unchecked. Everything goes through the real command line (or the API), and
each case checks the exit code, the exact line, and that nothing was written or touched.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from typer.testing import CliRunner

from support import fixture
from tf2hf.cli import app
from tf2hf.errors import OutputError

runner = CliRunner()
WORDS = "bert/embeddings/word_embeddings"
QUERY = "bert/encoder/layer_0/attention/self/query/kernel"


def _bert(tmp: Path, name: str = "src") -> Path:
    """A writable copy of the bert_pretrain fixture (prefix model.ckpt-1)."""
    dest = tmp / name
    shutil.copytree(fixture("bert_pretrain"), dest)
    for path in dest.iterdir():
        path.chmod(0o644)
    return dest


def _bert_with(tmp: Path, variable: str, edit: Callable[[np.ndarray], None]) -> Path:
    """The bert_pretrain checkpoint saved again by TensorFlow, with one tensor edited in place."""
    tf = pytest.importorskip("tensorflow")
    src = _bert(tmp)
    reader = tf.train.load_checkpoint(str(fixture("bert_pretrain") / "model.ckpt-1"))
    names = sorted(reader.get_variable_to_shape_map())
    tensors = []
    for name in names:
        value = reader.get_tensor(name)
        if name == variable:
            value = value.copy()
            edit(value)
        tensors.append(value)
    for old in src.glob("model.ckpt-1.*"):
        old.unlink()
    tf.raw_ops.SaveV2(prefix=str(src / "model.ckpt-1"), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    return src


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error(result) -> list[str]:
    return result.stderr.splitlines()


# --- an empty --out ----------------------------------------------------------------------------

EMPTY = "--out is {out!r}, which names no folder (an empty path means the current one); pass the output folder"


@pytest.mark.parametrize("out", ["", "   "])
@pytest.mark.parametrize("command", ["convert", "batch", "slim"])
def test_an_empty_out_is_refused_and_the_working_directory_is_untouched(command, out, tmp_path, monkeypatch):
    src = _bert(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("the user's\n")
    monkeypatch.chdir(work)
    args = {
        "convert": ["convert", "bert", "--tf", str(src), "--out", out, "--force", "--no-verify"],
        "batch": ["batch", str(src), "--out", out, "--force", "--no-verify", "--workers", "1"],
        "slim": ["slim", str(src), "--out", out, "--force"],
    }[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert _error(result) == [f"error: {EMPTY.format(out=out)}"]
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert (work / "notes.txt").read_text() == "the user's\n"


def test_an_empty_out_is_refused_by_the_api(tmp_path, monkeypatch):
    from tf2hf.api import convert
    from tf2hf.batch.run import convert_many
    from tf2hf.tools.slim import slim

    src = _bert(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for call in (lambda: convert("bert", tf=src, out="", force=True, verify=False),
                 lambda: list(convert_many([str(src)], "", force=True, verify=False, workers=1)),
                 lambda: slim(src, "", force=True)):
        with pytest.raises(OutputError) as raised:
            call()
        assert str(raised.value) == EMPTY.format(out="")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --- what --force may replace ------------------------------------------------------------------

FOREIGN = "{out}: holds {n} {files} that tf2hf did not write ({names}); choose another --out or remove them"


@pytest.mark.parametrize("content, names", [
    ({"notes.txt": "mine"}, "notes.txt"),
    ({"a.txt": "1", "b.txt": "2", "c.txt": "3", "d/x": "4"}, "a.txt, b.txt, c.txt, …"),
    # A config.json alone is no model folder: without weights beside it, it may be anything.
    ({"config.json": "{}", "train.py": "print()"}, "config.json, train.py"),
    # README.md that is not tf2hf's card.
    ({"README.md": "---\nlibrary_name: transformers\ntags:\n- mine\n---\n"}, "README.md"),
])
def test_force_refuses_a_folder_tf2hf_did_not_write(content, names, tmp_path):
    src = _bert(tmp_path)
    out = tmp_path / "out"
    for name, text in content.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = _snapshot(out)
    count = len(os.listdir(out))
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(out), "--force", "--no-verify"])
    assert result.exit_code == 1, result.output
    assert _error(result) == ["error: " + FOREIGN.format(out=out, n=count, files="file" if count == 1 else "files", names=names)]
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no staging leftovers


@pytest.mark.parametrize("make", ["empty", "previous conversion", "card only", "marker only", "transformers folder"])
def test_force_replaces_an_empty_folder_or_a_previous_conversion(make, tmp_path):
    src = _bert(tmp_path)
    out = tmp_path / "out"
    convert = ["convert", "bert", "--tf", str(src), "--out", str(out), "--no-verify"]
    if make == "empty":
        out.mkdir()
    elif make == "transformers folder":  # e.g. saved by save_pretrained, with a file of the user's
        out.mkdir()
        for name in ("config.json", "model.safetensors", "notes.txt"):
            (out / name).write_text("x")
    else:
        assert runner.invoke(app, convert).exit_code == 0
        keep = {"previous conversion": None, "card only": "README.md", "marker only": ".tf2hf-source.json"}[make]
        if keep == ".tf2hf-source.json":
            (out / keep).write_text("{}")
        if keep is not None:
            for path in out.iterdir():
                if path.name != keep:
                    path.unlink()
    result = runner.invoke(app, [*convert, "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").stat().st_size > 1000 and (out / "config.json").is_file()


def test_the_marker_staging_recognises_is_the_one_batch_writes():
    from tf2hf.batch.markers import MARKER
    from tf2hf.output import staging

    assert staging.MARKER == MARKER


def test_batch_force_refuses_an_entry_folder_holding_the_users_files(tmp_path):
    zoo = tmp_path / "zoo"
    _bert(zoo, "m")
    out = tmp_path / "out"
    (out / "m").mkdir(parents=True)
    (out / "m" / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["batch", str(zoo), "--out", str(out), "--force", "--no-verify", "--workers", "1"])
    assert result.exit_code == 1
    assert FOREIGN.format(out=out / "m", n=1, files="file", names="notes.txt") in " ".join(result.output.split())
    assert sorted(p.name for p in (out / "m").iterdir()) == ["notes.txt"]


def test_slim_force_replaces_a_previous_slim_but_not_a_training_checkpoint(tmp_path):
    src = _bert(tmp_path)
    dest = tmp_path / "slim"
    assert runner.invoke(app, ["slim", str(src), "--out", str(dest / "model.ckpt-1")]).exit_code == 0
    again = runner.invoke(app, ["slim", str(src), "--out", str(dest / "model.ckpt-1"), "--force"])
    assert again.exit_code == 0, again.output
    # The training run's checkpoint (with its Adam slots) at the destination is never replaced.
    other = _bert(tmp_path, "other")
    before = _snapshot(other)
    result = runner.invoke(app, ["slim", str(src), "--out", str(other / "model.ckpt-1"), "--force"])
    assert result.exit_code == 1
    assert _error(result) == [
        f"error: {other / 'model.ckpt-1'}: the checkpoint there is not a previous slim's output (it holds "
        "bert/embeddings/LayerNorm/beta/adam_m, …, which slim drops); choose another --out or remove it"
    ]
    assert _snapshot(other) == before


# --- NaN, Inf and values the dtype cannot hold -------------------------------------------------


def _nan_in_a_row_verification_never_looks_up(words: np.ndarray) -> None:
    words[49, 3] = np.nan  # the fixed batch's 18 token ids never include 49 (checked below)


def test_a_nan_weight_is_refused_naming_it_with_and_without_verification(tmp_path):
    from tf2hf.verify.compare import fixed_batch

    assert 49 not in fixed_batch(50, 16, 2)["input_ids"]
    src = _bert_with(tmp_path, WORDS, _nan_in_a_row_verification_never_looks_up)
    dest = tmp_path / "dest"
    dest.mkdir()
    for extra in ([], ["--no-verify"], ["--dtype", "float16"], ["--format", "bin", "--no-verify"]):
        result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(dest / "m"), *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert _error(result) == [f"error: {src / 'model.ckpt-1'}: {WORDS} has 1 NaN and 0 Inf values; pass --allow-non-finite to convert anyway"]
        assert list(dest.iterdir()) == []


def test_allow_non_finite_converts_with_the_warning_in_the_card_and_the_result(tmp_path):
    def two_infs(words: np.ndarray) -> None:
        words[49, :2] = [np.inf, -np.inf]

    src = _bert_with(tmp_path, WORDS, two_infs)
    out = tmp_path / "m"
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(out), "--no-verify", "--allow-non-finite", "--json"])
    assert result.exit_code == 0, result.output
    warning = f"{src / 'model.ckpt-1'}: {WORDS} has 0 NaN and 2 Inf values; converted anyway (--allow-non-finite)"
    assert warning in json.loads(result.stdout)["warnings"]
    assert f"- {warning}" in (out / "README.md").read_text().splitlines()
    from safetensors.numpy import load_file

    row = load_file(str(out / "model.safetensors"))["bert.embeddings.word_embeddings.weight"][49]
    assert row[0] == np.inf and row[1] == -np.inf


def test_nan_reaching_an_output_is_reported_as_nan_without_gelu_advice(tmp_path):
    def nan_gamma(gamma: np.ndarray) -> None:
        gamma[0] = np.nan

    src = _bert_with(tmp_path, "bert/embeddings/LayerNorm/gamma", nan_gamma)
    dest = tmp_path / "dest"
    dest.mkdir()
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(dest / "m"), "--allow-non-finite"])
    assert result.exit_code == 1, result.output
    assert _error(result) == [
        f"error: {src / 'model.ckpt-1'}: the converted model produced NaN in mlm_logits, and so does the TF graph: "
        "the checkpoint's weights give non-finite outputs; nothing was written"
    ]
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("dtype, value, limit", [("float16", 1e5, "65504"), ("float16", -70000.0, "65504"), ("bfloat16", 3.4e38, "3.38953e+38")])
def test_a_value_beyond_the_output_dtype_is_refused_naming_the_variable(dtype, value, limit, tmp_path):
    def big(kernel: np.ndarray) -> None:
        kernel[0, 0] = value

    src = _bert_with(tmp_path, QUERY, big)
    dest = tmp_path / "dest"
    dest.mkdir()
    for extra in ([], ["--no-verify"], ["--no-verify", "--allow-non-finite"]):
        result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(dest / "m"), "--dtype", dtype, *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert _error(result) == [
            f"error: {src / 'model.ckpt-1'}: {QUERY} has 1 value(s) beyond what {dtype} holds (|x| > {limit}), "
            "which would be written as Inf; convert with --dtype float32"
        ]
        assert list(dest.iterdir()) == []


def test_the_largest_values_a_dtype_holds_pass(tmp_path):
    from tf2hf.output.dtypes import count_bad

    assert count_bad(np.array([65504.0, -65504.0, 1.0], np.float32), "float16") == (0, 0, 0)
    assert count_bad(np.array([np.finfo(np.float32).max, 1.0], np.float32), "float32") == (0, 0, 0)
    assert count_bad(np.array([3.3895313892515355e38], np.float32), "bfloat16") == (0, 0, 0)
    assert count_bad(np.array([np.nan, np.inf, -np.inf, 7e4], np.float32), "float16") == (1, 2, 1)
    assert count_bad(np.array([np.finfo(np.float32).max] * 4, np.float32), "float32") == (0, 0, 0)  # the sum overflows; the values do not


# --- verification's failure message --------------------------------------------------------------


def test_the_worst_output_is_the_nan_one_and_the_ordinary_message_is_unchanged():
    from tf2hf.verify.compare import Verification, compare, failure_message

    ref = {"sequence_output": np.zeros((2, 3)), "pooled_output": np.zeros((2, 3))}
    nan = {"sequence_output": np.full((2, 3), np.nan), "pooled_output": np.full((2, 3), 4.27e-07)}
    check = compare(ref, nan, "float32")
    assert not check.passed and check.non_finite == {"sequence_output": "NaN finite"}
    assert failure_message(check, "P", "tanh") == (
        "P: the converted model produced NaN in sequence_output, where the TF graph's outputs are finite; nothing was written. Please report it"
    )
    ordinary = Verification(passed=False, tolerance=1e-4, max_abs_diff={"sequence_output": 3e-3, "pooled_output": 1e-5})
    assert failure_message(ordinary, "P", "tanh") == (
        "P: the converted model differs from the TF graph by 0.003 in sequence_output (tolerance 0.0001); nothing was written. "
        "If the model was trained with the other GELU formula, try --gelu tanh"
    )
    assert failure_message(ordinary, "P", None).endswith("The activation is not a GELU that --gelu chooses, so the formula is not the cause; please report it")
    large = Verification(passed=False, tolerance=1e-4, max_abs_diff={"mlm_logits": 0.562})
    assert failure_message(large, "P", "tanh").endswith("That is more than the GELU formula changes (about 1e-3 at most); please report it")


# --- config values -----------------------------------------------------------------------------

ACT = "an activation transformers knows, in lower case (gelu, gelu_new, relu, silu, tanh, …)"
PROB = "a number between 0 and 1"
POS = "a finite number above 0"
BAD_VALUES = [
    ("hidden_act", "foo", f"hidden_act is 'foo', expected {ACT}"),
    ("hidden_act", ["gelu"], f"hidden_act is a list (['gelu']), expected {ACT}"),
    ("hidden_act", {"name": "gelu"}, f"hidden_act is a dict ({{'name': 'gelu'}}), expected {ACT}"),
    ("hidden_act", "GELU", f"hidden_act is 'GELU', expected {ACT}"),
    ("hidden_act", 3, f"hidden_act is 3, expected {ACT}"),
    ("hidden_act", None, f"hidden_act is None, expected {ACT}"),
    ("num_attention_heads", True, "num_attention_heads is True, expected a positive integer"),
    ("num_attention_heads", "4", "num_attention_heads is '4', expected a positive integer"),
    ("num_attention_heads", 4.0, "num_attention_heads is 4.0, expected a positive integer"),
    ("num_attention_heads", 0, "num_attention_heads is 0, expected a positive integer"),
    ("num_attention_heads", -4, "num_attention_heads is -4, expected a positive integer"),
    ("num_attention_heads", 10**400, "num_attention_heads is a 401-digit number, expected a positive integer"),
    ("num_attention_heads", 3, "hidden_size 16 is not a multiple of num_attention_heads 3"),
    ("hidden_dropout_prob", "a lot", f"hidden_dropout_prob is 'a lot', expected {PROB}"),
    ("hidden_dropout_prob", 1.5, f"hidden_dropout_prob is 1.5, expected {PROB}"),
    ("hidden_dropout_prob", -0.1, f"hidden_dropout_prob is -0.1, expected {PROB}"),
    ("hidden_dropout_prob", True, f"hidden_dropout_prob is True, expected {PROB}"),
    ("hidden_dropout_prob", None, f"hidden_dropout_prob is None, expected {PROB}"),
    ("hidden_dropout_prob", float("nan"), f"hidden_dropout_prob is nan, expected {PROB}"),
    ("attention_probs_dropout_prob", [0.1], f"attention_probs_dropout_prob is a list ([0.1]), expected {PROB}"),
    ("attention_probs_dropout_prob", "x" * 100, f"attention_probs_dropout_prob is '{'x' * 38}…, expected {PROB}"),
    ("initializer_range", 10**400, f"initializer_range is a 401-digit number, expected {POS}"),
    ("initializer_range", float("inf"), f"initializer_range is inf, expected {POS}"),
    ("initializer_range", 0, f"initializer_range is 0, expected {POS}"),
    ("initializer_range", -0.02, f"initializer_range is -0.02, expected {POS}"),
    ("initializer_range", "0.02", f"initializer_range is '0.02', expected {POS}"),
    ("initializer_range", False, f"initializer_range is False, expected {POS}"),
    ("hidden_size", True, "hidden_size must be a positive integer, not True"),
    ("intermediate_size", "32", "intermediate_size must be a positive integer, not '32'"),
    ("max_position_embeddings", 1.5, "max_position_embeddings must be a positive integer, not 1.5"),
    ("type_vocab_size", -2, "type_vocab_size must be a positive integer, not -2"),
]


def _write_config(src: Path, text: str) -> Path:
    config = src / "bert_config.json"
    config.write_text(text)
    return config


@pytest.mark.parametrize("verify", [False, True], ids=["no-verify", "verify"])
@pytest.mark.parametrize("key, value, message", BAD_VALUES, ids=[f"{k}={str(v)[:12]}" for k, v, _ in BAD_VALUES])
def test_a_bad_config_value_is_one_line_naming_the_key(key, value, message, verify, tmp_path):
    src = _bert(tmp_path)
    base = json.loads((src / "bert_config.json").read_text())
    config = _write_config(src, json.dumps({**base, key: value}))
    _assert_refused(src, config, f"{message}; fix the config", verify, tmp_path)


@pytest.mark.parametrize("verify", [False, True], ids=["no-verify", "verify"])
@pytest.mark.parametrize("text, message", [
    ('{"a": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply to be a model config; pass the model's JSON config"),
    ('{"a": ' + "[" * 20 + "]" * 20 + "}", "nested more than 16 levels deep, too deep to be a model config; pass the model's JSON config"),
    ('{"hidden_dropout_prob": ' + "9" * 5000 + "}", "holds a number of thousands of digits, which no model setting has; fix the config"),
    ('{"hidden_size": 16, "initializer_range": 1e400}', "initializer_range is inf, expected a finite number above 0; fix the config"),
], ids=["recursion", "deep", "5000 digits", "1e400"])
def test_a_hostile_config_file_is_one_line(text, message, verify, tmp_path):
    src = _bert(tmp_path)
    if "1e400" in text:  # keep the rest of the config valid
        base = json.loads((src / "bert_config.json").read_text())
        text = json.dumps(base)[:-1] + ', "initializer_range": 1e400}'
    config = _write_config(src, text)
    _assert_refused(src, config, message, verify, tmp_path)


def _assert_refused(src: Path, config: Path, message: str, verify: bool, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    before = _snapshot(src)
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(dest / "m"), *([] if verify else ["--no-verify"])])
    assert result.exit_code == 1, result.output
    assert _error(result) == [f"error: {config}: {message}"]
    assert "--no-verify" not in result.stderr and "internal error" not in result.output
    assert list(dest.iterdir()) == []
    assert _snapshot(src) == before


def test_the_activation_names_are_transformers_own():
    pytest.importorskip("torch")
    from transformers.activations import ACT2FN

    from tf2hf.output.config_check import ACTIVATIONS

    assert ACTIVATIONS <= set(ACT2FN)
