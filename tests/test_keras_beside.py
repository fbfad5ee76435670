"""A transformers TF model inside the user's own Keras model, with a Dense on its pooled output
(issue 15): ``layer_with_weights-0/bert/…`` and the Dense as ``layer_with_weights-1``, saved by
``save_weights`` / ``ModelCheckpoint``. fixtures/keras_bert_beside (keras_albert_beside) was
written so by transformers 4.47.1's TFBertModel and a Keras ``Dense(1)`` (TFAlbertModel,
``Dense(2)``); its ``tf_outputs.npz`` holds what TF computed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from support import FIXTURES, fixture, shared
from tf2hf import convert
from tf2hf.errors import Tf2hfError
from tf2hf.tfckpt import open_checkpoint
from tf2hf.verify.references import transformers_tf_albert, transformers_tf_bert
from tf2hf.verify.references.locate import locate

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOL = 1e-5
FEED = ("input_ids", "attention_mask", "token_type_ids")


# folder, model class, Dense units, reference, the activation its config names
MODELS = [
    ("keras_bert_beside", "Bert", 1, transformers_tf_bert, "erf"),
    ("keras_albert_beside", "Albert", 2, transformers_tf_albert, "tanh"),  # AlbertConfig's gelu_new
]
IDS = [m[0] for m in MODELS]


def _run(cls, name, folder):
    npz = np.load(fixture(name) / "tf_outputs.npz")
    model = cls.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return model(**{k: torch.from_numpy(npz[k].astype(np.int64)) for k in FEED}, output_hidden_states=True), npz


@pytest.mark.parametrize("name,model,units,reference,gelu", MODELS, ids=IDS)
def test_the_dense_is_a_classifier_that_reproduces_tensorflow(name, model, units, reference, gelu, tmp_path):
    result = convert("auto", tf=fixture(name), out=tmp_path / "out", task="text-classification")
    assert result.target_class == f"{model}ForSequenceClassification"
    out, npz = _run(getattr(transformers, result.target_class), name, tmp_path / "out")
    assert out.logits.shape == npz["logits"].shape == (2, units)
    assert np.max(np.abs(out.logits.numpy() - npz["logits"])) <= TOL
    for i, state in enumerate(out.hidden_states):
        assert np.max(np.abs(state.numpy() - npz[f"hidden_state_{i}"])) <= TOL, i
    labels = json.loads((tmp_path / "out" / "config.json").read_text())["id2label"]
    assert labels == {str(i): f"LABEL_{i}" for i in range(units)}


@pytest.mark.parametrize("name", IDS)
def test_auto_names_the_task_and_writes_nothing(name, tmp_path):
    with pytest.raises(Tf2hfError, match=r'Dense layer beside the model \(layer_with_weights-1\).*task="text-classification"'):
        convert("auto", tf=fixture(name), out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,model,units,reference,gelu", MODELS, ids=IDS)
def test_feature_extraction_leaves_the_dense_out(name, model, units, reference, gelu, tmp_path):
    result = convert("auto", tf=fixture(name), out=tmp_path / "out", task="feature-extraction")
    assert result.target_class == f"{model}Model"
    assert sorted(n for n, _ in result.discarded) == ["layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE",
                                                      "layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    out, npz = _run(getattr(transformers, result.target_class), name, tmp_path / "out")
    assert np.max(np.abs(out.pooler_output.numpy() - npz["pooler_output"])) <= TOL


@pytest.mark.parametrize("name,model,units,reference,gelu", MODELS, ids=IDS)
def test_the_reference_reads_the_dense_beside_the_model(name, model, units, reference, gelu):
    npz = np.load(fixture(name) / "tf_outputs.npz")
    config = json.loads((fixture(name) / "config.json").read_text())
    inputs = {"input_ids": npz["input_ids"], "input_mask": npz["attention_mask"], "token_type_ids": npz["token_type_ids"]}
    with open_checkpoint(fixture(name)) as ckpt:
        get = locate(reference.LAYOUT, ckpt.variables, ckpt.read)
        out = reference.forward(get, config, inputs, gelu=gelu, heads=frozenset({"pooler", "beside"}))
    assert np.max(np.abs(out["classifier_logits"] - npz["logits"])) <= TOL
    assert np.max(np.abs(out["pooled_output"] - npz["pooler_output"])) <= TOL


def test_the_real_keras_fine_tune_plans_a_one_label_classifier():
    """chen1ting/CZ4045: TFBertModel + Dense [768, 1] saved by ModelCheckpoint (index only)."""
    folder = shared("real-index", "chen1ting-CZ4045-training_sub_cp.ckpt")
    result = convert("auto", tf=folder, dry_run=True, task="text-classification", config=FIXTURES / "keras_user_configs" / "bert_base_uncased.json")
    assert result.target_class == "BertForSequenceClassification"
    report = result.to_dict()
    assert report["labels"] == ["LABEL_0"] and report["tensors_per_part"]["beside"] == 2
    assert report["parameters"] == 109482240 + 768 + 1  # BertModel (bert-base) + classifier [1, 768] + bias [1]
