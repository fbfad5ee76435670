"""End-to-end BERT conversions, checked against outputs that TensorFlow computed.

The expected numbers come from TF running the upstream modeling code (``tf_outputs.npz`` beside
each checkpoint), never from tf2hf itself.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open

from support import FIXTURES, fixture, shared
from tf2hf import convert
from tf2hf.errors import OutputError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def run_converted(folder, npz):
    """The converted model, loaded as a user would, on the TF inputs: outputs by TF's names."""
    config = json.loads((folder / "config.json").read_text())
    cls = getattr(transformers, config["architectures"][0])
    model, info = cls.from_pretrained(str(folder), output_loading_info=True, dtype=torch.float32)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    model.eval()
    args = {
        "input_ids": torch.tensor(npz["input_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(npz["input_mask"], dtype=torch.long),
        "token_type_ids": torch.tensor(npz["token_type_ids"], dtype=torch.long),
    }
    with torch.no_grad():
        base = model.base_model(**args)
        full = model(**args)
    got = {"sequence_output": base.last_hidden_state.numpy()}
    if getattr(base, "pooler_output", None) is not None:
        got["pooled_output"] = base.pooler_output.numpy()
    positions = npz["positions"]
    rows = np.arange(positions.shape[0])[:, None]
    for field, name in (("prediction_logits", "mlm"), ("logits", "mlm")):
        value = getattr(full, field, None)
        if value is not None and value.dim() == 3:
            got["mlm_logits"] = value.numpy()[rows, positions].reshape(-1, value.shape[-1])
            got["mlm_log_probs"] = log_softmax(got["mlm_logits"])
    if getattr(full, "seq_relationship_logits", None) is not None:
        got["nsp_logits"] = full.seq_relationship_logits.numpy()
        got["nsp_log_probs"] = log_softmax(got["nsp_logits"])
    if getattr(full, "sop_logits", None) is not None:
        got["sop_logits"] = full.sop_logits.numpy()
        got["sop_log_probs"] = log_softmax(got["sop_logits"])
    if cls.__name__.endswith("SequenceClassification"):
        got["classifier_logits"] = full.logits.numpy()
    if cls.__name__.endswith("QuestionAnswering"):
        got["start_logits"] = full.start_logits.numpy()
        got["end_logits"] = full.end_logits.numpy()
    return got, model


def assert_matches_tf(got, npz, tol=1e-5, skip=()):
    compared = 0
    for name in npz.files:
        if name in ("input_ids", "input_mask", "token_type_ids", "positions", *skip):
            continue
        assert name in got, f"the converted model has no {name}"
        diff = np.max(np.abs(got[name] - npz[name]))
        assert diff <= tol, f"{name}: max abs diff {diff:.3g} > {tol}"
        compared += 1
    assert compared >= 1


def test_upstream_bert_pretraining_reproduces_tf_with_tanh_gelu(tmp_path):
    src = shared("upstream", "bert_pre")
    result = convert("bert", tf=src / "model.ckpt", out=tmp_path / "out", gelu="tanh")
    assert result.target_class == "BertForPreTraining"
    assert result.verification["passed"] and result.verification["worst"] < 1e-5
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert_matches_tf(got, npz, 1e-5)


def test_upstream_bert_with_erf_gelu_is_measurably_different(tmp_path):
    # The checkpoint was computed with the tanh formula; an erf config must not reproduce it
    # to 1e-5: proof that the activation written to config.json matters. (Without --gelu the
    # training graph beside it says tanh: tests/test_graph_facts.py.)
    src = shared("upstream", "bert_pre")
    convert("bert", tf=src, out=tmp_path / "out", verify=False, gelu="erf")
    assert json.loads((tmp_path / "out" / "config.json").read_text())["hidden_act"] == "gelu"
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert np.max(np.abs(got["sequence_output"] - npz["sequence_output"])) > 1e-5


def test_keras_bert_checkpoint_converts_without_any_slot(tmp_path):
    src = shared("real", "keras-bert-tiny")
    result = convert("bert", tf=src, out=tmp_path / "out")
    assert result.dropped["optimizer slot"]["count"] == 92
    assert result.dropped["bookkeeping"]["count"] == 1
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "np") as f:
        keys = list(f.keys())
    assert len(keys) == 46
    assert not [k for k in keys if "adam" in k.lower() or "step" in k]
    # vocab.txt without a trailing newline: still 15 tokens.
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert len(tokenizer) == 15
    model = transformers.AutoModel.from_pretrained(str(tmp_path / "out"))
    assert type(model).__name__ == "BertModel"


FIXTURE_CLASSES = {
    "bert_pretrain": "BertForPreTraining",
    "bert_classifier": "BertForSequenceClassification",
    "bert_squad": "BertForQuestionAnswering",
    "bert_mlm_only": "BertForMaskedLM",
    "bert_encoder_only": "BertModel",
    "bert_slots_zoo": "BertForSequenceClassification",
}


@pytest.mark.parametrize("name", sorted(FIXTURE_CLASSES))
def test_fixture_converts_to_the_right_class_and_matches_tf(name, tmp_path):
    src = fixture(name)
    meta = json.loads((src / "meta.json").read_text())
    gelu = "tanh" if "tanh" in str(meta.get("gelu", "")).lower() else "erf"
    result = convert("bert", tf=src, out=tmp_path / "out", gelu=gelu)
    assert result.target_class == FIXTURE_CLASSES[name]
    assert result.verification["passed"]
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    # BertForQuestionAnswering has no pooler (it was discarded and reported).
    assert_matches_tf(got, npz, 1e-5, skip=("pooled_output",) if name == "bert_squad" else ())


def test_classifier_labels_come_from_the_head_shape(tmp_path):
    convert("bert", tf=fixture("bert_classifier"), out=tmp_path / "out", verify=False)
    config = transformers.AutoConfig.from_pretrained(str(tmp_path / "out"))
    assert config.num_labels == 3


def test_slot_zoo_drops_every_kind_and_strips_module_prefix(tmp_path):
    result = convert("bert", tf=fixture("bert_slots_zoo"), out=tmp_path / "out", dry_run=True)
    plan = result.plan
    dropped = {d.name.rsplit("/", 1)[-1] for d in plan.dropped}
    for kind in ("adam_m", "adam_v", "lamb_m", "lamb_v", "Adam", "Adam_1", "beta1_power", "beta2_power",
                 "Momentum", "global_step", "current_loss_scale", "good_steps"):
        assert kind in dropped, kind
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-2), ("bfloat16", 1e-1)])
def test_half_precision_output(tmp_path, dtype, tol):
    src = shared("upstream", "bert_pre")
    result = convert("bert", tf=src, out=tmp_path / "out", gelu="tanh", dtype=dtype)
    assert result.verification["passed"]
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as f:
        tensor = f.get_tensor("bert.embeddings.word_embeddings.weight")
    assert tensor.dtype == getattr(torch, dtype)
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert np.max(np.abs(got["sequence_output"] - npz["sequence_output"])) < tol


def test_bin_format_holds_plain_tensors(tmp_path):
    src = shared("upstream", "bert_pre")
    convert("bert", tf=src, out=tmp_path / "out", gelu="tanh", format="bin")
    state = torch.load(tmp_path / "out" / "pytorch_model.bin", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert "cls.predictions.decoder.weight" not in state  # tied: written once
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_existing_output_is_refused_then_replaced_with_force(tmp_path):
    src = shared("upstream", "bert_pre")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(OutputError, match=r"already exists; choose another out= or pass force=True"):
        convert("bert", tf=src, out=out, gelu="tanh")
    assert (out / "keep.txt").exists()
    # --force replaces an empty folder or a previous conversion, never a file of the user's.
    with pytest.raises(OutputError, match=r"out: holds 1 file that tf2hf did not write \(keep.txt\); choose another out= or remove them"):
        convert("bert", tf=src, out=out, gelu="tanh", force=True)
    assert (out / "keep.txt").read_text() == "old"
    (out / "keep.txt").unlink()
    convert("bert", tf=src, out=out, gelu="tanh", force=True)
    convert("bert", tf=src, out=out, gelu="tanh", force=True, verify=False)  # tf2hf's own output now
    assert (out / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging leftovers


def test_dry_run_writes_nothing(tmp_path):
    result = convert("bert", tf=shared("upstream", "bert_pre"), out=tmp_path / "out", dry_run=True)
    assert result.target_class == "BertForPreTraining" and result.tensors == 46
    assert list(tmp_path.iterdir()) == []


def test_model_card_records_sources_drops_and_verification(tmp_path):
    src = shared("upstream", "bert_pre")
    convert("bert", tf=src, out=tmp_path / "out", gelu="tanh")
    card = (tmp_path / "out" / "README.md").read_text()
    import hashlib

    # The index (which pins every tensor's offset, size and crc32c) by sha256; the data shard by
    # size and mtime, unread beyond the weights (issue 17; --hash-sources hashes it in full).
    digest = hashlib.sha256((src / "model.ckpt.index").read_bytes()).hexdigest()
    assert digest in card
    shard = src / "model.ckpt.data-00000-of-00001"
    assert hashlib.sha256(shard.read_bytes()).hexdigest() not in card
    assert f"| `{shard.name}` | data | {shard.stat().st_size:,} |" in card and "not hashed" in card
    assert "| optimizer slot | 92 |" in card
    assert "passed" in card and "gelu_new" in card


def test_tokenizer_is_a_working_bert_tokenizer(tmp_path):
    src = shared("upstream", "bert_pre")
    convert("bert", tf=src, out=tmp_path / "out", gelu="tanh", verify=False)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    vocab = (src / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert len(tokenizer) == len([t for t in vocab if t])
    ids = tokenizer("hello")["input_ids"]
    assert ids[0] == vocab.index("[CLS]") and ids[-1] == vocab.index("[SEP]")
    assert json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())["tokenizer_class"] == "BertTokenizer"


def test_bundled_example_exists():
    assert (FIXTURES / "example").exists(), "the README's example checkpoint is missing"
