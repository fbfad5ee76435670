"""Multiple choice (issue 15): ``TFBertForMultipleChoice`` stores what a one-label sequence
classifier stores, so only the config.json saved with it (``architectures``) says which class
it is. Checked against what TF computed (fixtures/keras_bert_choice, transformers 4.47.1):
the reference of the TF graph on ``[batch, choices, seq]`` inputs, and the classes written.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from support import edit_rules, fixture
from tf2hf import convert
from tf2hf.errors import Tf2hfError
from tf2hf.tfckpt import open_checkpoint
from tf2hf.verify.references import transformers_tf_albert, transformers_tf_bert, transformers_tf_electra
from tf2hf.verify.references.locate import locate

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOL = 1e-5
FEED = ("input_ids", "attention_mask", "token_type_ids")


def _tf():
    return np.load(fixture("keras_bert_choice") / "tf_outputs.npz")


def _with_config(tmp_path, name, **changes):
    """A copy of a fixture folder whose config.json has ``changes``."""
    folder = tmp_path / "src"
    shutil.copytree(fixture(name), folder, ignore=shutil.ignore_patterns("ckpt"))
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


REFERENCES = [
    ("keras_bert_choice", transformers_tf_bert, {"pooler", "choice"}),
    ("keras_albert_choice", transformers_tf_albert, {"pooler", "choice"}),
    ("keras_electra_choice", transformers_tf_electra, {"choice"}),
    ("keras_electra_choice/ckpt", transformers_tf_electra, {"choice"}),
]


@pytest.mark.parametrize("name,reference,heads", REFERENCES, ids=[r[0] for r in REFERENCES])
def test_the_reference_computes_tf_multiple_choice_logits(name, reference, heads):
    """The NumPy graph of TF…ForMultipleChoice, on TF's own [2, 3, 7] inputs: logits
    [batch, choices] and the last hidden state of every (question, choice) row."""
    npz = np.load(fixture(name.split("/")[0]) / "tf_outputs.npz")
    config = json.loads((fixture(name) / "config.json").read_text())
    inputs = {"input_ids": npz["input_ids"], "input_mask": npz["attention_mask"], "token_type_ids": npz["token_type_ids"]}
    with open_checkpoint(fixture(name)) as ckpt:
        get = locate(reference.LAYOUT, ckpt.variables, ckpt.read)
        # transformers' TF activation names: "gelu" the erf form, "gelu_new" (ALBERT's default) tanh.
        gelu = {"gelu": "erf", "gelu_new": "tanh"}[config["hidden_act"]]
        out = reference.forward(get, config, inputs, gelu=gelu, heads=frozenset(heads))
    assert out["choice_logits"].shape == npz["logits"].shape == (2, 3)
    assert np.max(np.abs(out["choice_logits"] - npz["logits"])) <= TOL
    assert np.max(np.abs(out["sequence_output"] - npz["hidden_state_2"])) <= TOL


def test_the_same_weights_under_a_classifier_config_are_a_one_label_classifier(tmp_path):
    """Named BertForSequenceClassification, the weights are written as that class with one
    label; its logits on each (question, choice) row are TF's multiple-choice scores."""
    src = _with_config(tmp_path, "keras_bert_choice", architectures=["BertForSequenceClassification"])
    result = convert("auto", tf=src, out=tmp_path / "out")
    assert result.target_class == "BertForSequenceClassification"
    model = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path / "out")).eval()
    assert model.config.num_labels == 1
    npz = _tf()
    feed = {k: torch.from_numpy(npz[k].reshape(-1, npz[k].shape[-1]).astype(np.int64)) for k in FEED}
    with torch.no_grad():
        logits = model(**feed).logits.numpy()
    assert np.max(np.abs(logits.reshape(2, 3) - npz["logits"])) <= TOL


def test_multiple_choice_can_be_asked_for_by_task(tmp_path):
    """A config that names no class (or another one): ``task="multiple-choice"`` writes it."""
    src = _with_config(tmp_path, "keras_bert_choice", architectures=None)
    result = convert("auto", tf=src, out=tmp_path / "out", task="multiple-choice")
    assert result.target_class == "BertForMultipleChoice"
    model = transformers.BertForMultipleChoice.from_pretrained(str(tmp_path / "out")).eval()
    npz = _tf()
    with torch.no_grad():
        logits = model(**{k: torch.from_numpy(npz[k].astype(np.int64)) for k in FEED}).logits.numpy()
    assert np.max(np.abs(logits - npz["logits"])) <= TOL


def test_a_config_naming_multiple_choice_over_a_wider_classifier_is_refused(tmp_path):
    """Three labels are no multiple-choice head (one score per choice): a shape mismatch."""
    src = _with_config(tmp_path, "keras_bert_classifier", architectures=["BertForMultipleChoice"])
    with pytest.raises(Tf2hfError, match=r"cannot convert to BertForMultipleChoice: .*shape mismatch: classifier\.weight"):
        convert("auto", tf=src, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_config_naming_multiple_choice_over_other_heads_is_refused(tmp_path):
    """A config naming a class whose heads the weights lack describes other weights."""
    src = _with_config(tmp_path, "keras_bert_mlm", architectures=["TFBertForMultipleChoice"])
    with pytest.raises(Tf2hfError, match="the config's architectures name BertForMultipleChoice, but the checkpoint holds .*masked-LM head"):
        convert("auto", tf=src, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_config_chooses_the_class_and_the_plan_says_so():
    result = convert("auto", tf=fixture("keras_bert_choice"), dry_run=True)
    assert result.target_class == "BertForMultipleChoice"
    assert any("config.json names BertForMultipleChoice: the class is taken from it" in note for note in result.notes)
    assert result.tensors_per_part["choice"] == 2 and "classifier" not in result.tensors_per_part


@pytest.mark.parametrize("name", ["keras_bert_choice", "keras_albert_choice", "keras_electra_choice"])
def test_verification_runs_the_written_class_on_choices_and_catches_a_wrong_head(name, tmp_path, monkeypatch):
    import dataclasses

    import tf2hf.api
    from tf2hf.engine.registry import select
    from tf2hf.errors import VerificationError

    result = convert("auto", tf=fixture(name), out=tmp_path / "out")
    assert result.target_class.endswith("ForMultipleChoice")
    assert result.verification["passed"] and "choice_logits" in result.verification["max_abs_diff"]
    assert result.verification["max_abs_diff"]["choice_logits"] <= TOL

    # The head's bias written as zeros instead of copied: every shape fits, the scores do not.
    with open_checkpoint(fixture(name)) as ckpt:
        family = select("auto", ckpt.variables, None, str(ckpt.prefix))

    def zero_bias(rules):
        rules[:] = [dataclasses.replace(r, op="zeros", sources=()) if r.target.endswith("classifier.bias") else r for r in rules]

    broken = edit_rules(family, zero_bias, parts=["choice"])
    assert broken != family
    monkeypatch.setattr(tf2hf.api, "select", lambda *args, **kwargs: broken)
    with pytest.raises(VerificationError, match="in choice_logits"):
        convert("auto", tf=fixture(name), out=tmp_path / "broken")
    assert not (tmp_path / "broken").exists()


def test_a_summary_the_reference_does_not_compute_is_one_line_naming_no_verify(tmp_path):
    from tf2hf.errors import VerificationError

    folder = _with_config(tmp_path, "keras_electra_choice", summary_type="mean")
    with pytest.raises(VerificationError) as caught:
        convert("auto", tf=folder, out=tmp_path / "out")
    message = str(caught.value)
    assert "\n" not in message and "summary_type='mean'" in message and "verify=False" in message
    assert not (tmp_path / "out").exists()
