"""bert-for-tf2's Keras BERT (save_weights, TF format) against what TF computed.

fixtures/b4t2_bert was written by bert-for-tf2 0.14.9 itself (fixtures/make_keras.py); its
BertModelLayer was built without a mask (``mask_zero=False``), so TF attended to every position:
the converted BertModel reproduces it with an all-ones attention_mask.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from support import fixture
from tf2hf import convert

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("name,family,cls", [("b4t2_bert", "bert_for_tf2", "BertModel"),
                                              ("b4t2_albert_shared", "bert_for_tf2_albert", "AlbertModel"),
                                              ("b4t2_albert_layers", "bert_for_tf2_albert_layers", "AlbertModel")])
def test_sequence_output_matches_tensorflow(name, family, cls, tmp_path):
    src = fixture(name)
    result = convert("auto", tf=src, out=tmp_path / "out", task="feature-extraction")
    assert result.family == family and result.target_class == cls
    assert result.verification["passed"]
    npz = np.load(src / "tf_outputs.npz")
    model = getattr(transformers, cls).from_pretrained(str(tmp_path / "out")).eval()
    ids = torch.from_numpy(npz["input_ids"].astype(np.int64))
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=torch.from_numpy(npz["token_type_ids"].astype(np.int64)),
                    attention_mask=torch.ones_like(ids))
    assert np.max(np.abs(out.last_hidden_state.numpy() - npz["sequence_output"])) <= 1e-5


def test_albert_without_shared_layer_is_a_group_per_layer_and_not_taken_for_bert(tmp_path):
    # Its names are bert-for-tf2 BERT's plus the projector: 'auto' must not see two families.
    result = convert("auto", tf=fixture("b4t2_albert_layers"), out=tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["num_hidden_groups"], config["inner_group_num"], config["embedding_size"]) == (2, 2, 1, 8)
    assert any("without shared_layer" in note for note in result.notes)
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert {k.split(".")[2] for k in weights if k.startswith("encoder.albert_layer_groups.")} == {"0", "1"}
    from tf2hf.errors import FamilyError

    with pytest.raises(FamilyError, match="not a bert_for_tf2 checkpoint"):
        convert("bert_for_tf2", tf=fixture("b4t2_albert_layers"), out=tmp_path / "as-bert")


def test_the_missing_pooler_is_written_as_the_identity_and_said(tmp_path):
    result = convert("auto", tf=fixture("b4t2_bert"), out=tmp_path / "out")
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert np.array_equal(weights["pooler.dense.weight"], np.eye(16, dtype=np.float32))
    assert not weights["pooler.dense.bias"].any()
    assert any("no pooler" in note and "tanh of the first token" in note for note in result.notes)
    assert "found a bert-for-tf2 Keras model (BertModelLayer, saved by save_weights / ModelCheckpoint)" in result.notes
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["hidden_act"] == "gelu_new"  # params-flow's GELU is the tanh formula


def _dry_run(folder, config, tmp_path, *args):
    from typer.testing import CliRunner

    from tf2hf.cli import app

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return CliRunner().invoke(app, ["convert", "auto", "--tf", str(folder), "--dry-run", "--json", "--config", str(path), *args])


BASE_CONFIG = {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
               "type_vocab_size": 2, "hidden_act": "gelu"}


def test_real_bert_for_tf2_index_plans_as_bert_model_with_a_config(tmp_path):
    """DjebbiAmine/Senti-BERT (real index): bert-for-tf2 BERT, 8 layers, no token types, two
    Dense layers on top; its folder has no config, so one is supplied here."""
    from support import shared

    folder = shared("real-index", "DjebbiAmine-Senti-BERT-bert_model")
    result = _dry_run(folder, {**BASE_CONFIG, "num_hidden_layers": 8, "vocab_size": 51647}, tmp_path, "--task", "feature-extraction")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    said = " ".join(report["notes"])
    assert report["target_class"] == "BertModel" and "no pooler" in said and "use_token_type=False" in said
    assert "layer_with_weights-1/ (2 variables), layer_with_weights-2/ (2 variables)" in said


def test_real_keras_checkpoint_of_tf_bert_plans_as_bert_model_with_a_config(tmp_path):
    """chen1ting/CZ4045 (real index): TFBertModel in a Keras model saved by ModelCheckpoint."""
    from support import shared

    folder = shared("real-index", "chen1ting-CZ4045-training_sub_cp.ckpt")
    result = _dry_run(folder, {**BASE_CONFIG, "num_hidden_layers": 12, "vocab_size": 30522}, tmp_path, "--task", "feature-extraction")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target_class"] == "BertModel" and report["family"] == "transformers_tf_bert"
    assert any("found a transformers TF model" in note for note in report["notes"])
