"""``--task``: which class a checkpoint becomes, checked end to end against what TF computed.

The fixtures were written by the upstream BERT code (``fixtures/make_heads.py``); their
``tf_outputs.npz`` hold what TensorFlow computed on the fixed inputs stored beside them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from support import fixture
from tf2hf import convert
from tf2hf.cli import app
from tf2hf.errors import MappingError, Tf2hfError


def _run(folder, model_cls):
    """The written folder, loaded by transformers as a user would, on the fixture's inputs."""
    import torch
    import transformers

    model = getattr(transformers, model_cls).from_pretrained(str(folder)).eval()
    tf = np.load(fixture(_fixture_of[folder]) / "tf_outputs.npz")
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(tf["input_ids"].astype(np.int64)),
            attention_mask=torch.from_numpy(tf["input_mask"].astype(np.int64)),
            token_type_ids=torch.from_numpy(tf["token_type_ids"].astype(np.int64)),
            output_hidden_states=True,
        )
    return out, tf


_fixture_of: dict = {}


def _convert(name, tmp_path, **options):
    out = tmp_path / name
    result = convert("auto", tf=fixture(name), out=out, gelu="tanh", **options)
    _fixture_of[out] = name
    return result, out


def test_token_classification_is_written_and_matches_tf_per_token(tmp_path):
    result, out = _convert("bert_token_classifier", tmp_path, task="token-classification")
    assert result.target_class == "BertForTokenClassification"
    assert result.verification["passed"] and result.verification["max_abs_diff"]["token_logits"] < 1e-5
    model_out, tf = _run(out, "BertForTokenClassification")
    assert np.abs(model_out.logits.numpy() - tf["token_logits"]).max() < 1e-5
    assert np.abs(model_out.hidden_states[-1].numpy() - tf["sequence_output"]).max() < 1e-5
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"] and len(config["id2label"]) == 5
    # The pooler is not part of a token classifier; it is reported, not silently dropped.
    assert any(name.startswith("bert/pooler/") for name, _ in result.discarded)


def test_auto_keeps_sequence_classification_and_says_how_to_choose_per_token(tmp_path):
    result = convert("auto", tf=fixture("bert_token_classifier"), gelu="tanh", dry_run=True)
    assert result.target_class == "BertForSequenceClassification"
    assert any('task="token-classification"' in note for note in result.notes)  # the API's spelling


def test_a_classifier_that_kept_its_mlm_head_becomes_the_classifier(tmp_path):
    result, out = _convert("bert_classifier_mlm", tmp_path)
    assert result.target_class == "BertForSequenceClassification"
    assert result.left_out == ["masked-LM head"]
    assert {n for n, _ in result.discarded} >= {"cls/predictions/output_bias", "cls/predictions/transform/dense/kernel"}
    model_out, tf = _run(out, "BertForSequenceClassification")
    assert np.abs(model_out.logits.numpy() - tf["classifier_logits"]).max() < 1e-5
    card = (out / "README.md").read_text()
    assert "masked-LM head" in card


def test_the_mlm_head_of_the_same_checkpoint_with_task_fill_mask(tmp_path):
    result, out = _convert("bert_classifier_mlm", tmp_path, task="fill-mask")
    assert result.target_class == "BertForMaskedLM"
    assert result.left_out == ["classifier head (run_classifier)"]
    model_out, tf = _run(out, "BertForMaskedLM")
    rows = np.arange(2)[:, None]
    picked = model_out.logits.numpy()[rows, tf["positions"]].reshape(-1, 50)
    assert np.abs(picked - tf["mlm_logits"]).max() < 1e-5


def test_feature_extraction_writes_the_base_model(tmp_path):
    result, out = _convert("bert_classifier_mlm", tmp_path, task="feature-extraction")
    assert result.target_class == "BertModel"
    assert sorted(result.left_out) == ["classifier head (run_classifier)", "masked-LM head"]
    model_out, tf = _run(out, "BertModel")
    assert np.abs(model_out.last_hidden_state.numpy() - tf["sequence_output"]).max() < 1e-5
    assert np.abs(model_out.pooler_output.numpy() - tf["pooled_output"]).max() < 1e-5


def test_a_task_the_checkpoint_cannot_serve_lists_those_it_can():
    with pytest.raises(MappingError) as caught:
        convert("auto", tf=fixture("bert_token_classifier"), task="question-answering", dry_run=True)
    message = str(caught.value)
    assert message.startswith(str(fixture("bert_token_classifier") / "model.ckpt-1"))
    assert "cannot serve task question-answering: it has no SQuAD head (run_squad) for BertForQuestionAnswering" in message
    assert message.endswith("tasks it can serve: text-classification, token-classification, feature-extraction")


def test_an_unknown_task_is_refused_before_reading():
    with pytest.raises(Tf2hfError, match="unknown task 'ner'; choose one of auto, pretraining, fill-mask"):
        convert("auto", tf=fixture("bert_token_classifier"), task="ner", dry_run=True)


def test_the_cli_takes_task_and_reports_what_is_left_out():
    result = CliRunner().invoke(app, ["convert", "auto", "--tf", str(fixture("bert_classifier_mlm")), "--gelu", "tanh",
                                      "--task", "text-classification", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target_class"] == "BertForSequenceClassification" and report["task"] == "text-classification"
    assert report["left_out"] == ["masked-LM head"]
    bad = CliRunner().invoke(app, ["convert", "auto", "--tf", str(fixture("bert_classifier_mlm")), "--task", "ner", "--dry-run"])
    assert bad.exit_code == 2  # a usage error: typer lists the choices
