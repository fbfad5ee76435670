"""transformers' TF BERT classes (tf_model.h5 and Keras checkpoints) against what TF computed.

The fixtures (fixtures/make_keras.py) were written by transformers 4.47.1's own TF classes under
TensorFlow 2.21 + tf-keras, with TF's logits and hidden states on fixed inputs; here the folders
tf2hf writes are loaded by transformers 5 (which cannot read them any more) and must reproduce
those numbers.
"""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from support import fixture
from tf2hf.cli import app
from tf2hf.tfckpt import open_checkpoint

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOL = 1e-5
# folder (under fixtures/), transformers outputs recorded by TF in tf_outputs.npz
CASES = [
    ("keras_bert_classifier", ("logits",)),
    ("keras_bert_classifier/ckpt", ("logits",)),
    ("keras_bert_token", ("logits",)),
    ("keras_bert_qa", ("start_logits", "end_logits")),
    ("keras_bert_qa/ckpt", ("start_logits", "end_logits")),
    ("keras_bert_mlm", ("logits",)),
    ("keras_bert_pretrain", ("prediction_logits", "seq_relationship_logits")),
    ("keras_bert_pretrain/ckpt", ("prediction_logits", "seq_relationship_logits")),
    ("keras_bert_base", ("pooler_output",)),
    ("keras_bert_choice", ("logits",)),  # [batch, choices]: chosen by config.json's architectures
    ("keras_albert_mlm", ("logits",)),
    ("keras_albert_mlm/ckpt", ("logits",)),
    ("keras_albert_classifier", ("logits",)),
    ("keras_albert_base", ("pooler_output",)),
    ("keras_albert_pretrain", ("prediction_logits", "sop_logits")),
    ("keras_albert_pretrain/ckpt", ("prediction_logits", "sop_logits")),
    ("keras_albert_token", ("logits",)),
    ("keras_albert_qa", ("start_logits", "end_logits")),
    ("keras_albert_choice", ("logits",)),
    ("keras_electra_pretrain", ("logits",)),
    ("keras_electra_pretrain/ckpt", ("logits",)),
    ("keras_electra_base", ("last_hidden_state",)),
    ("keras_electra_mlm", ("logits",)),
    ("keras_electra_mlm/ckpt", ("logits",)),
    ("keras_electra_classifier", ("logits",)),
    ("keras_electra_classifier/ckpt", ("logits",)),
    ("keras_electra_token", ("logits",)),
    ("keras_electra_qa", ("start_logits", "end_logits")),
    ("keras_electra_choice", ("logits",)),
    ("keras_electra_choice/ckpt", ("logits",)),
    # relu in the encoder; TF's generator and classification heads still apply the erf GELU
    ("keras_electra_mlm_relu", ("logits",)),
    ("keras_electra_classifier_relu", ("logits",)),
]


def _convert(src, out, *args):
    result = CliRunner().invoke(app, ["convert", "auto", "--tf", str(src), "--out", str(out), *args])
    return result


def _run(folder, npz):
    config = json.loads((folder / "config.json").read_text())
    cls = getattr(transformers, config["architectures"][0])
    model = cls.from_pretrained(str(folder)).eval()
    feed = {k: torch.from_numpy(npz[k].astype(np.int64)) for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        return model(**feed, output_hidden_states=True), config


@pytest.mark.parametrize("name,fields", CASES, ids=[c[0] for c in CASES])
def test_converted_model_reproduces_tensorflow(name, fields, tmp_path):
    src = fixture(name)
    npz = np.load(fixture(name.split("/")[0]) / "tf_outputs.npz")
    result = _convert(src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "found a transformers TF model" in result.output
    out, config = _run(tmp_path / "out", npz)
    meta = json.loads((fixture(name.split("/")[0]) / "meta.json").read_text())
    assert config["architectures"] == [meta["pytorch_class"]]
    for field in fields:
        got = getattr(out, field).numpy()
        assert got.shape == npz[field].shape
        assert np.max(np.abs(got - npz[field])) <= TOL, field
    hidden = [k for k in npz.files if k.startswith("hidden_state_")]
    assert len(hidden) == len(out.hidden_states) == 3
    for i, state in enumerate(out.hidden_states):
        assert np.max(np.abs(state.numpy() - npz[f"hidden_state_{i}"])) <= TOL, i


@pytest.mark.parametrize("name,cls", [("keras_bert_classifier", "BertForSequenceClassification"),
                                      ("keras_albert_classifier", "AlbertForSequenceClassification"),
                                      ("keras_electra_classifier/ckpt", "ElectraForSequenceClassification")])
def test_labels_and_settings_survive(name, cls, tmp_path):
    src = fixture(name)
    assert _convert(src, tmp_path / "out").exit_code == 0
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    source = json.loads((src / "config.json").read_text())
    assert written["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert written["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    assert written["architectures"] == [cls]
    # Every setting transformers saved is kept; only what described the TF file changes.
    assert {k: v for k, v in source.items() if k not in ("architectures", "transformers_version")}.items() <= written.items()


def test_the_mlm_heads_copy_of_the_embeddings_is_one_variable():
    with open_checkpoint(fixture("keras_bert_mlm")) as h5:
        names = [n for n in h5.variables if n.endswith("word_embeddings/weight:0")]
        assert names == ["tf_bert_for_masked_lm/bert/embeddings/word_embeddings/weight:0"]
        assert h5.read(names[0]).shape == (50, 16)


def test_albert_mlm_writes_the_bias_tf_adds(tmp_path):
    """TFAlbertMLMHead holds predictions/bias and predictions/decoder/bias; running TF showed
    that only decoder/bias reaches the logits (meta.json), so that one is written."""
    src = fixture("keras_albert_mlm")
    assert json.loads((src / "meta.json").read_text())["albert_mlm_bias_used"] == "predictions/decoder/bias"
    from safetensors.numpy import load_file
    from tf2hf import convert

    result = convert("auto", tf=src / "ckpt", out=tmp_path / "out")
    assert result.dropped["unused weight"]["count"] == 1
    written = load_file(tmp_path / "out" / "model.safetensors")["predictions.bias"]
    with open_checkpoint(src / "ckpt") as ckpt:
        used = ckpt.read("layer_with_weights-0/predictions/decoder.Sbias/.ATTRIBUTES/VARIABLE_VALUE")
        unused = ckpt.read("layer_with_weights-0/predictions/bias/.ATTRIBUTES/VARIABLE_VALUE")
    assert np.array_equal(written, used) and not np.allclose(written, unused)


# --- bad h5 files: one line naming the file, exit 1, nothing written ------------------------------


def _copy(tmp_path):
    folder = tmp_path / "src"
    shutil.copytree(fixture("keras_bert_classifier"), folder, ignore=shutil.ignore_patterns("ckpt"))
    return folder


KERNEL = "bert/tf_bert_for_sequence_classification/bert/encoder/layer_._0/attention/self/query/kernel:0"


def _replace(path, dataset, data=None, **kwargs):
    with h5py.File(path, "r+") as f:
        del f[dataset]
        if data is not None:
            f[dataset] = data
        else:
            f.create_dataset(dataset, **kwargs)


def _truncate(folder):
    path = folder / "tf_model.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _not_hdf5(folder):
    (folder / "tf_model.h5").write_bytes(b"PK\x03\x04 this is a zip, not HDF5" * 10)


def _wrong_dtype(folder):
    _replace(folder / "tf_model.h5", KERNEL, np.zeros((16, 16), np.int32))


def _string_dtype(folder):
    _replace(folder / "tf_model.h5", KERNEL, np.full((16, 16), b"x" * 8))


def _wrong_shape(folder):
    _replace(folder / "tf_model.h5", KERNEL, np.zeros((16, 15), np.float32))


def _huge_shape(folder):
    _replace(folder / "tf_model.h5", KERNEL, shape=(1 << 40,), dtype="f4", chunks=(1 << 16,))


def _never_written(folder):
    _replace(folder / "tf_model.h5", KERNEL, shape=(16, 16), dtype="f4")


def _external_link(folder):
    other = folder.parent / "elsewhere.h5"
    with h5py.File(other, "w") as f:
        f["kernel"] = np.zeros((16, 16), np.float32)
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        del f[KERNEL]
        f[KERNEL] = h5py.ExternalLink(str(other), "kernel")


BAD = [
    (_truncate, ("tf_model.h5",)),
    (_not_hdf5, ("not an HDF5 file",)),
    (_wrong_dtype, ("int32", "float")),
    (_string_dtype, ("dtype",)),
    (_wrong_shape, ("15",)),
    (_huge_shape, ("declares",)),
    (_never_written, ("no data is stored",)),
    (_external_link, ("external link",)),
]


@pytest.mark.parametrize("damage,phrases", BAD, ids=[b[0].__name__.strip("_") for b in BAD])
def test_bad_h5_gets_one_line_and_leaves_nothing(damage, phrases, tmp_path):
    folder = _copy(tmp_path)
    damage(folder)
    out = tmp_path / "out"
    result = _convert(folder, out)
    assert result.exit_code == 1, result.output
    message = result.stderr if result.stderr else result.output
    lines = [line for line in message.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), message
    assert str(folder) in lines[0]
    for phrase in phrases:
        assert phrase in lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "tf2hf-partial" in p.name] == []
