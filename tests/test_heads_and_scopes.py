"""Heads no transformers class holds, and encoders under any root (issue 12, items 3 and 4).

Every conversion is checked against what TensorFlow computed from the upstream code
(``tf_outputs.npz`` beside each fixture, written by ``fixtures/make_heads.py``), never against
tf2hf's own reference; the kept-aside tensors against the values TF restored (``extra/<name>``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from support import fixture
from tf2hf import convert
from tf2hf.cli import app
from tf2hf.engine.plan import make_plan
from tf2hf.engine.registry import get_family
from tf2hf.errors import MappingError
from tf2hf.tfckpt import open_checkpoint

EXTRA = fixture("bert_extra_head")
ALBERT_ROOT = fixture("albert_root_scope")
NESTED = fixture("tf2_bert_nested_span")
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _run(folder, cls, tf):
    """The written folder, loaded by transformers as a user would, on the fixture's inputs."""
    import torch
    import transformers

    model = getattr(transformers, cls).from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return model(
            input_ids=torch.from_numpy(tf["input_ids"].astype(np.int64)),
            attention_mask=torch.from_numpy(tf["input_mask"].astype(np.int64)),
            token_type_ids=torch.from_numpy(tf["token_type_ids"].astype(np.int64)),
            output_hidden_states=True,
        )


def _nothing_written(parent):
    """No output folder and no staging folder left beside it."""
    assert [p.name for p in parent.iterdir()] == []


# --- a head no class holds -----------------------------------------------------------------------


def test_a_head_outside_the_encoder_is_refused_by_default_listing_its_scopes(tmp_path):
    with pytest.raises(MappingError) as caught:
        convert("auto", tf=EXTRA, out=tmp_path / "out", gelu="tanh")
    assert str(caught.value) == (
        f"{EXTRA / 'model.ckpt-1'}: 3 variable(s) outside the bert model look like a head that no transformers class holds: "
        "crf/ (1 variable), extra_head/ (2 variables); convert with task=\"feature-extraction\" to write the model and keep "
        "these variables, under their TF names, in extra_weights.safetensors; nothing was written"
    )
    _nothing_written(tmp_path)


def test_the_cli_refuses_with_exit_1_and_writes_nothing(tmp_path):
    result = CliRunner().invoke(app, ["convert", "auto", "--tf", str(EXTRA), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {EXTRA / 'model.ckpt-1'}: ") and "--task feature-extraction" in first
    _nothing_written(tmp_path)


def test_with_a_task_the_model_is_written_and_the_head_kept_aside_exactly(tmp_path):
    from safetensors.numpy import load_file

    out = tmp_path / "out"
    result = convert("auto", tf=EXTRA, out=out, gelu="tanh", task="feature-extraction")
    assert result.target_class == "BertModel" and result.verification["passed"]
    tf = np.load(EXTRA / "tf_outputs.npz")
    model_out = _run(out, "BertModel", tf)
    assert np.abs(model_out.last_hidden_state.numpy() - tf["sequence_output"]).max() <= 1e-5
    assert np.abs(model_out.pooler_output.numpy() - tf["pooled_output"]).max() <= 1e-5
    # Every extra variable, under its TF name, equal to what TF restored: bit for bit.
    kept = load_file(out / "extra_weights.safetensors")
    expected = {key[len("extra/"):]: tf[key] for key in tf.files if key.startswith("extra/")}
    assert set(kept) == set(expected) == {"crf/transitions", "extra_head/dense/kernel", "extra_head/dense/bias"}
    for name, value in expected.items():
        assert kept[name].dtype == value.dtype and np.array_equal(kept[name], value), name
    # Never in the model file; listed in the result and the card; their optimizer slots dropped.
    assert not set(load_file(out / "model.safetensors")) & set(expected)
    assert result.extra_weights == [("crf/transitions", [8, 8]), ("extra_head/dense/bias", [8]), ("extra_head/dense/kernel", [16, 8])]
    card = (out / "README.md").read_text()
    assert "`extra_head/dense/kernel` [16, 8]" in card and "`crf/transitions` [8, 8]" in card
    assert "extra_head/dense/kernel/adam_m" in {d.name for d in result.plan.dropped}
    assert any(n.startswith("kept aside in extra_weights.safetensors") and "extra_head/ (2 variables)" in n for n in result.notes)


def _variables(folder):
    with open_checkpoint(folder) as ckpt:
        return dict(ckpt.variables)


BERT_CONFIG = json.loads((EXTRA / "bert_config.json").read_text())


def test_an_unknown_variable_inside_the_encoder_stays_an_error_with_any_task():
    variables = _variables(EXTRA)
    variables["bert/encoder/layer_0/adapter/kernel"] = variables["bert/encoder/layer_0/attention/self/query/kernel"]
    with pytest.raises(MappingError) as caught:
        make_plan(get_family("bert"), variables, BERT_CONFIG, source="ckpt", config_label="cfg", task="feature-extraction")
    assert "unknown variable: bert/encoder/layer_0/adapter/kernel" in str(caught.value)


def test_two_copies_of_the_model_are_refused():
    variables = {f"{root}/{name}": info for name, info in _variables(EXTRA).items() for root in ("tower_a", "tower_b")}
    with pytest.raises(MappingError, match=r"ckpt: holds 2 copies of a bert model \(under 'tower_a/', 'tower_b/'\)"):
        make_plan(get_family("bert"), variables, BERT_CONFIG, source="ckpt", config_label="cfg")


def test_an_estimator_name_scope_is_found_and_stripped(tmp_path):
    """The same variables saved by TF under ``my_estimator/scope/`` (the head left at the top)."""
    tf_ = pytest.importorskip("tensorflow")
    src = tmp_path / "src"
    src.mkdir()
    reader = tf_.train.load_checkpoint(str(EXTRA / "model.ckpt-1"))
    names = sorted(reader.get_variable_to_shape_map())
    saved = [f"my_estimator/scope/{n}" if n.startswith("bert/") else n for n in names]
    tf_.raw_ops.SaveV2(prefix=str(src / "model.ckpt-1"), tensor_names=saved, shape_and_slices=[""] * len(names),
                       tensors=[reader.get_tensor(n) for n in names])
    for name in ("bert_config.json", "vocab.txt"):
        (src / name).write_bytes((EXTRA / name).read_bytes())
    out = tmp_path / "out"
    result = convert("auto", tf=src / "model.ckpt-1", out=out, gelu="tanh", task="feature-extraction")
    assert any("under 'my_estimator/scope/'" in n for n in result.notes)
    tf = np.load(EXTRA / "tf_outputs.npz")
    model_out = _run(out, "BertModel", tf)
    assert np.abs(model_out.last_hidden_state.numpy() - tf["sequence_output"]).max() <= 1e-5
    assert {n for n, _ in result.extra_weights} == {"crf/transitions", "extra_head/dense/bias", "extra_head/dense/kernel"}


# --- ALBERT under albert/ ------------------------------------------------------------------------------


def test_albert_built_with_scope_albert_converts_and_says_so(tmp_path):
    out = tmp_path / "out"
    result = convert("auto", tf=ALBERT_ROOT, out=out)
    assert result.family == "albert" and result.target_class == "AlbertForSequenceClassification"
    assert result.verification["passed"]
    assert "its root scope 'albert/' was read as 'bert/'" in result.notes
    tf = np.load(ALBERT_ROOT / "tf_outputs.npz")
    model_out = _run(out, "AlbertForSequenceClassification", tf)
    assert np.abs(model_out.logits.numpy() - tf["classifier_logits"]).max() <= 1e-5
    assert np.abs(model_out.hidden_states[-1].numpy() - tf["sequence_output"]).max() <= 1e-5


# --- a TF2 encoder nested in a Keras model, a Dense head beside it -------------------------------------


def test_a_dense_head_beside_a_nested_tf2_encoder_needs_a_task(tmp_path):
    with pytest.raises(MappingError) as caught:
        convert("auto", tf=NESTED, out=tmp_path / "out")
    assert str(caught.value) == (
        f"{NESTED / 'ckpt-1'}: the checkpoint has a Dense layer beside the encoder (layer_with_weights-1), and nothing in it "
        'records which task it was trained for; choose one with task="text-classification", task="question-answering" '
        'or task="token-classification", or task="feature-extraction" to convert the encoder without it'

    )
    _nothing_written(tmp_path)


def test_the_dense_head_as_a_span_head_matches_tf(tmp_path):
    out = tmp_path / "out"
    result = convert("auto", tf=NESTED, out=out, task="question-answering")
    assert result.family == "tf2_bert" and result.target_class == "BertForQuestionAnswering"
    assert result.verification["passed"] and result.verification["gelu"] == "gelu_new"
    assert any("under 'model/layer_with_weights-0/'" in n for n in result.notes)
    tf = np.load(NESTED / "tf_outputs.npz")
    model_out = _run(out, "BertForQuestionAnswering", tf)
    assert np.abs(model_out.start_logits.numpy() - tf["start_logits"]).max() <= 1e-5
    assert np.abs(model_out.end_logits.numpy() - tf["end_logits"]).max() <= 1e-5
    assert np.abs(model_out.hidden_states[-1].numpy() - tf["sequence_output"]).max() <= 1e-5


@pytest.mark.parametrize(("task", "cls", "on"), [
    ("token-classification", "BertForTokenClassification", "sequence_output"),
    ("text-classification", "BertForSequenceClassification", "pooled_output"),
])
def test_the_dense_head_as_a_classifier_matches_tf(task, cls, on, tmp_path):
    """TF's own outputs (per token, or pooled) times the kernel TF restores."""
    tf_ = pytest.importorskip("tensorflow")
    reader = tf_.train.load_checkpoint(str(NESTED / "ckpt-1"))
    kernel = reader.get_tensor("model/layer_with_weights-1/kernel" + SUFFIX)
    bias = reader.get_tensor("model/layer_with_weights-1/bias" + SUFFIX)
    out = tmp_path / "out"
    result = convert("auto", tf=NESTED, out=out, task=task)
    assert result.target_class == cls and result.verification["passed"]
    tf = np.load(NESTED / "tf_outputs.npz")
    model_out = _run(out, cls, tf)
    expected = tf[on].astype(np.float64) @ kernel + bias
    assert np.abs(model_out.logits.numpy() - expected).max() <= 1e-5
    assert json.loads((out / "config.json").read_text())["architectures"] == [cls]


def test_feature_extraction_writes_the_nested_encoder_alone(tmp_path):
    out = tmp_path / "out"
    result = convert("auto", tf=NESTED, out=out, task="feature-extraction")
    assert result.target_class == "BertModel" and result.left_out == ["Dense layer beside the encoder (layer_with_weights-1)"]
    assert {n for n, _ in result.discarded} >= {"model/layer_with_weights-1/kernel" + SUFFIX}
    tf = np.load(NESTED / "tf_outputs.npz")
    model_out = _run(out, "BertModel", tf)
    assert np.abs(model_out.pooler_output.numpy() - tf["pooled_output"]).max() <= 1e-5
    assert not os.path.exists(out / "extra_weights.safetensors")


def test_batch_entries_carry_their_task_and_report_what_was_kept_aside(tmp_path):
    from tf2hf import convert_many

    entries = [{"source": str(EXTRA), "out": "kept", "task": "feature-extraction"}, {"source": str(EXTRA), "out": "refused"}]
    results = {Path(r.out).name if r.out else r.source: r for r in convert_many(entries, tmp_path, workers=1, gelu="tanh", verify=False)}
    kept, refused = results["kept"], results["refused"]
    assert kept.status == "converted" and kept.target_class == "BertModel"
    assert kept.extra_weights == ["crf/transitions", "extra_head/dense/bias", "extra_head/dense/kernel"]
    assert (tmp_path / "kept" / "extra_weights.safetensors").is_file()
    assert refused.status == "failed" and "look like a head" in refused.reason and not (tmp_path / "refused").exists()
