"""The command line: exit codes, one-line errors, no partial output, light start-up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from support import ROOT, fixture, shared
from tf2hf.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_does_not_import_torch_or_transformers():
    code = (
        "import sys; from typer.testing import CliRunner; from tf2hf.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'transformers', 'tensorflow', 'safetensors') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "tf2hf", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "convert" in out.stdout


def test_convert_then_load(tmp_path):
    result = invoke("convert", "bert", "--tf", fixture("example"), "--out", tmp_path / "m", "--gelu", "tanh")
    assert result.exit_code == 0, result.output
    assert "BertForPreTraining" in result.stdout and "verification: max abs diff" in result.stdout
    assert "passed" in result.stdout


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    result = invoke("convert", "bert", "--tf", shared("upstream", "bert_pre"), "--out", tmp_path / "m", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "target:   BertForPreTraining  (46 tensors" in result.stdout
    assert "optimizer slot" in result.stdout and "92 variables" in result.stdout
    assert "cls.predictions.decoder.weight = bert.embeddings.word_embeddings.weight" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_json_output(tmp_path):
    result = invoke("convert", "bert", "--tf", fixture("bert_squad"), "--dry-run", "--json")
    data = json.loads(result.stdout)
    assert data["target_class"] == "BertForQuestionAnswering"
    assert [name for name, _ in data["discarded"]] == ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]


def one_line_error(result, expected: str):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == f"error: {expected}"


def test_missing_path(tmp_path):
    missing = tmp_path / "nope" / "model.ckpt-1"
    result = invoke("convert", "bert", "--tf", missing, "--out", tmp_path / "m")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {missing}")
    assert not (tmp_path / "m").exists()


def test_not_a_bert_checkpoint(tmp_path):
    src = shared("real", "t2t-2shard-nonbert")
    result = invoke("convert", "bert", "--tf", src, "--out", tmp_path / "m", "--config", src / "hparams.json")
    one_line_error(result, f"{src / 'model.ckpt-1'}: not a bert checkpoint (bert/embeddings/word_embeddings is missing); it matches no known family")
    assert not (tmp_path / "m").exists()


def test_config_not_json(tmp_path):
    bad = tmp_path / "bert_config.json"
    bad.write_text("{not json")
    result = invoke("convert", "bert", "--tf", fixture("bert_pretrain"), "--config", bad, "--out", tmp_path / "m")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad}: not valid JSON (")
    assert not (tmp_path / "m").exists()


def test_config_not_an_object(tmp_path):
    bad = tmp_path / "bert_config.json"
    bad.write_text("[1, 2]")
    result = invoke("convert", "bert", "--tf", fixture("bert_pretrain"), "--config", bad, "--out", tmp_path / "m")
    one_line_error(result, f"{bad}: the config must be a JSON object, not list; pass the model's JSON config")


def test_vocab_longer_than_the_embeddings_is_an_error(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"tok{i}\n" for i in range(51)))
    result = invoke("convert", "bert", "--tf", fixture("bert_pretrain"), "--vocab", vocab, "--out", tmp_path / "m")
    one_line_error(result, f"{vocab}: 51 tokens but the checkpoint's word embeddings have 50 rows; pass the vocabulary that belongs to this checkpoint")
    assert not (tmp_path / "m").exists()


def test_vocab_shorter_than_the_embeddings_is_written_with_a_warning(tmp_path):
    # Padded embedding matrices are common (yiqichen-2000's BERT-Mini: 21849 tokens, 30522 rows).
    vocab = tmp_path / "vocab.txt"
    lines = (fixture("bert_pretrain") / "vocab.txt").read_text().splitlines()[:40]
    vocab.write_text("\n".join(lines) + "\n")
    result = invoke("convert", "bert", "--tf", fixture("bert_pretrain"), "--vocab", vocab, "--out", tmp_path / "m", "--gelu", "tanh")
    assert result.exit_code == 0, result.output
    assert f"{vocab}: 40 tokens, fewer than the 50 rows of the checkpoint's word embeddings" in result.output
    assert (tmp_path / "m" / "vocab.txt").read_text().splitlines() == lines
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "m"))
    assert len(tokenizer) == 40


def test_no_tokenizer_reads_no_vocabulary(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"tok{i}\n" for i in range(99)))  # would be refused if read
    result = invoke("convert", "bert", "--tf", fixture("bert_pretrain"), "--vocab", vocab, "--no-tokenizer", "--out", tmp_path / "m", "--gelu", "tanh")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "m" / "vocab.txt").exists() and (tmp_path / "m" / "model.safetensors").exists()


def test_missing_config_is_an_error_naming_the_folder(tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(fixture("bert_pretrain"), src)
    for config in src.glob("*.json"):
        config.unlink()
    result = invoke("convert", "bert", "--tf", src, "--out", tmp_path / "m")
    # Every size but the heads follows from the shapes; without a graph the heads are missing.
    one_line_error(result, f"{src}: no config JSON found beside the checkpoint, and no training graph ({src / 'model.ckpt-1'}.meta) "
                   "to read the number of attention heads from (every other size follows from the shapes); pass --config FILE")


def test_missing_vocab_is_a_warning(tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(fixture("bert_pretrain"), src)
    (src / "vocab.txt").unlink()
    result = invoke("convert", "bert", "--tf", src, "--out", tmp_path / "m", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "no vocabulary found beside the checkpoint; no tokenizer written (pass --vocab)" in result.stderr
    assert not (tmp_path / "m" / "tokenizer.json").exists()
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_existing_output(tmp_path):
    (tmp_path / "m").mkdir()
    result = invoke("convert", "bert", "--tf", fixture("bert_pretrain"), "--out", tmp_path / "m")
    one_line_error(result, f"{tmp_path / 'm'}: already exists; choose another --out or pass --force to replace it")


def test_debug_shows_the_traceback(tmp_path):
    result = invoke("convert", "bert", "--tf", tmp_path / "nope", "--out", tmp_path / "m", "--debug")
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "CheckpointNotFoundError"


def test_architectures_lists_bert():
    result = invoke("architectures")
    assert result.exit_code == 0
    assert "BertForQuestionAnswering" in result.stdout and "tf2hf convert bert" in result.stdout


@pytest.fixture
def broken_plugin(monkeypatch):
    """An installed plugin whose entry point raises when it is imported."""
    import importlib.metadata
    from types import SimpleNamespace

    from tf2hf.engine import registry

    def load():
        raise ImportError("No module named 'acme_internal'")

    entry = SimpleNamespace(name="bad", value="pkg_bad:FAMILY", dist=SimpleNamespace(name="pkg-bad"), load=load)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda *, group: [entry])
    registry._registry.cache_clear()
    yield
    registry._registry.cache_clear()


def test_architectures_reports_a_broken_plugin_in_one_line(broken_plugin):
    result = invoke("architectures")
    one_line_error(result, "plugin bad = pkg_bad:FAMILY (package pkg-bad): cannot be imported (ImportError: No module named 'acme_internal'); fix or uninstall pkg-bad")
    assert result.stdout == "" and "Traceback" not in result.output


def test_architectures_debug_shows_the_traceback(broken_plugin):
    result = invoke("architectures", "--debug")
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "FamilyError"


def test_an_unexpected_exception_is_an_internal_error(monkeypatch):
    from tf2hf.engine import registry

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "families", broken)
    result = invoke("architectures")
    assert result.exit_code == 2
    assert result.stderr == "internal error: RuntimeError: boom; rerun with --debug and report the traceback\n"


def test_every_command_goes_through_the_boundary():
    for command in app.registered_commands:
        assert getattr(command.callback, "guarded", False), command.callback.__name__


def test_lowercase_override(tmp_path):
    result = invoke("convert", "bert", "--tf", fixture("bert_pretrain"), "--out", tmp_path / "m", "--no-lowercase", "--no-verify")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is False


@pytest.mark.parametrize("form", ["folder", "prefix", "index", "data", "meta_less_prefix"])
def test_every_path_form_is_accepted(form, tmp_path):
    src = fixture("bert_pretrain")
    index = next(src.glob("*.index"))
    prefix = index.with_suffix("")
    path = {
        "folder": src,
        "prefix": prefix,
        "index": index,
        "data": next(src.glob("*.data-*")),
        "meta_less_prefix": prefix,
    }[form]
    result = invoke("convert", "bert", "--tf", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"source:   {prefix}" in result.stdout


REAL_INDEX = {
    "heytgala-bert_tiny_L2_H128": "bert BertForPreTraining",
    "heytgala-bert_tiny_mrpc_classifier": "bert BertForSequenceClassification",
    "heytgala-bert_tiny_pretrain_step20": "bert BertForPreTraining",
    "heytgala-bert_tiny_squad": "bert BertForQuestionAnswering",
    "jadepeng-albert_base_zh_google_best": "albert AlbertForPreTraining",
    "jadepeng-albert_tiny_zh": "albert_zh AlbertForPreTraining",
    "liam1015-albert_base_zh_brightmart": "albert_zh AlbertForPreTraining",
    "marsroger-albert_tiny_zh": "albert_zh AlbertForPreTraining",
    "paolanu-protein_bert_step40000": "bert BertForPreTraining",
    "pyxz-google_chinese_L-12_H-768_A-12": "bert BertForPreTraining",
    "sgrwang-dna_bert_3mer_step200000": "bert BertForPreTraining",
}


@pytest.mark.parametrize("name", sorted(REAL_INDEX))
def test_every_real_index_plans_with_auto_from_the_cli(name):
    # Index-only checkpoints (no data shards): planning, config and vocabulary checks need no data.
    result = invoke("convert", "auto", "--tf", shared("real-index", name), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert f"{data['family']} {data['target_class']}" == REAL_INDEX[name]
    assert data["tensors"] > 0


def test_real_index_conversion_fails_cleanly_on_the_missing_shard(tmp_path):
    src = shared("real-index", "heytgala-bert_tiny_L2_H128")
    result = invoke("convert", "bert", "--tf", src, "--out", tmp_path / "m")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {src / 'bert_model.ckpt.data-00000-of-00001'}: data shard 1 of 1 is missing")
    assert list(tmp_path.iterdir()) == []
