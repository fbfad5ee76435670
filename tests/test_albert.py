"""ALBERT: Google's layout and brightmart's albert_zh, against TF outputs and transformers."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest

from support import fixture, shared
from test_convert_bert import assert_matches_tf, run_converted
from tf2hf import convert
from tf2hf.api import hf_config_for
from tf2hf.tfckpt import open_checkpoint
from tf2hf.errors import FamilyError, UnsupportedModelError
from tf2hf.engine.plan import make_plan
from tf2hf.engine.registry import get_family, select
from tf2hf.sources import find_beside

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# --- numbers: converted models against what TF computed ------------------------------------


@pytest.mark.parametrize(
    "where,target,cls",
    [
        (("upstream", "albert_g1i1"), None, "AlbertForPreTraining"),
        (("upstream", "bright_postln"), None, "AlbertForPreTraining"),
        (("upstream", "bright_postln"), "bert", "BertForPreTraining"),
    ],
)
def test_upstream_albert_checkpoints_reproduce_tf_by_default(where, target, cls, tmp_path):
    src = shared(*where)
    result = convert("albert", tf=src, out=tmp_path / "out", target=target)  # default options
    assert result.target_class == cls
    assert result.verification["passed"]
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    if "nsp_log_probs" in npz.files and "sop_logits" in got:
        # brightmart's NSP head sits in ALBERT's 2-way sentence head.
        got["nsp_log_probs"] = got.pop("sop_log_probs")
    assert_matches_tf(got, npz, 1e-5)


ALBERT_FIXTURES = {
    "albert_pretrain_g2i2": "AlbertForPreTraining",
    "albert_e_eq_h": "AlbertForPreTraining",
    "albert_classifier": "AlbertForSequenceClassification",
    "albert_squad": "AlbertForQuestionAnswering",
}


@pytest.mark.parametrize("name", sorted(ALBERT_FIXTURES))
def test_albert_fixtures_match_tf(name, tmp_path):
    src = fixture(name)
    result = convert("albert", tf=src, out=tmp_path / "out")
    assert result.target_class == ALBERT_FIXTURES[name]
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert_matches_tf(got, npz, 1e-5, skip=("pooled_output",) if name == "albert_squad" else ())


def test_e_equal_h_writes_the_identity_projection(tmp_path):
    result = convert("albert", tf=fixture("albert_e_eq_h"), out=tmp_path / "out")
    assert any("identity" in note for note in result.notes)
    from safetensors.numpy import load_file

    weights = load_file(str(tmp_path / "out" / "model.safetensors"))
    w = weights["albert.encoder.embedding_hidden_mapping_in.weight"]
    assert np.array_equal(w, np.eye(w.shape[0], dtype=np.float32))
    assert not weights["albert.encoder.embedding_hidden_mapping_in.bias"].any()


def test_brightmart_albert_target_is_the_small_file(tmp_path):
    src = shared("upstream", "bright_postln")
    small = convert("albert", tf=src, out=tmp_path / "a", verify=False)
    large = convert("albert", tf=src, out=tmp_path / "b", target="bert", verify=False)
    # One shared layer against three copies of it.
    assert small.parameters < large.parameters
    assert json.loads((tmp_path / "a" / "config.json").read_text())["embedding_size"] == 16


def test_missing_embedding_size_is_taken_from_shapes_and_reported(tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(fixture("albert_pretrain_g2i2"), src)
    config_path = next(src.glob("*config*.json"))
    config = json.loads(config_path.read_text())
    config.pop("embedding_size")
    config["num_hidden_groups"] = 1  # wrong: the checkpoint has 2
    config_path.write_text(json.dumps(config))
    result = convert("albert", tf=src, out=tmp_path / "out")
    assert result.verification["passed"]
    assert any(n.startswith("num_hidden_groups: config says 1, using 2 from the checkpoint") for n in result.notes)
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    assert written["embedding_size"] == 8 and written["num_hidden_groups"] == 2 and written["inner_group_num"] == 2


def test_preln_is_refused_with_no_output(tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(shared("upstream", "bright_postln"), src)
    config = json.loads((src / "albert_config.json").read_text())
    config["ln_type"] = "preln"
    (src / "albert_config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError) as err:
        convert("albert", tf=src, out=tmp_path / "out")
    assert str(err.value).startswith(f"{src / 'albert_config.json'}: ln_type is 'preln': a pre-LayerNorm graph")
    assert "no transformers class computes that" in str(err.value)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_missing_ln_type_means_post_ln_and_says_so(tmp_path):
    src = tmp_path / "ckpt"
    # Without its .meta: with it, the graph says post-LN (tests/test_graph_ln_order.py).
    shutil.copytree(shared("upstream", "bright_postln"), src, ignore=shutil.ignore_patterns("*.meta"))
    config = json.loads((src / "albert_config.json").read_text())
    del config["ln_type"]
    (src / "albert_config.json").write_text(json.dumps(config))
    result = convert("albert", tf=src, out=tmp_path / "out")
    assert any("post-LN assumed" in a for a in result.assumptions)
    assert "post-LN assumed" in (tmp_path / "out" / "README.md").read_text()


def test_relu_config_keeps_relu():
    family = get_family("albert")
    config = family.hf_config({"hidden_act": "relu"}, {"V": 5, "E": 2, "H": 4, "L": 1, "G": 1, "J": 1, "I": 8, "P": 4, "T": 2}, {"gelu": "tanh"})
    assert config["hidden_act"] == "relu"
    config = family.hf_config({"hidden_act": "gelu"}, {"V": 5, "E": 2, "H": 4, "L": 1, "G": 1, "J": 1, "I": 8, "P": 4, "T": 2}, {"gelu": "tanh"})
    assert config["hidden_act"] == "gelu_new"


# --- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where,expected",
    [
        (("upstream", "bert_pre"), "bert"),
        (("upstream", "albert_g1i1"), "albert"),
        (("upstream", "bright_postln"), "albert_zh"),
    ],
)
def test_auto_detects_the_family(where, expected):
    with open_checkpoint(shared(*where)) as ckpt:
        assert select("auto", ckpt.variables, None, "x").name == expected


def test_albert_on_a_bert_checkpoint_names_bert(tmp_path):
    src = shared("upstream", "bert_pre")
    with pytest.raises(FamilyError) as err:
        convert("albert", tf=src, out=tmp_path / "out")
    assert str(err.value) == (
        f"{src / 'model.ckpt'}: not an albert checkpoint: it is a bert checkpoint "
        "(google-research/bert: pre-training, MLM-only, run_classifier, run_squad, encoder-only); use 'tf2hf convert bert' or 'auto'"
    )


def test_bert_on_an_albert_checkpoint_names_albert(tmp_path):
    src = shared("upstream", "bright_postln")
    with pytest.raises(FamilyError, match=r"not a bert checkpoint: it is an albert checkpoint \(brightmart albert_zh"):
        convert("bert", tf=src, out=tmp_path / "out")


def test_target_bert_is_refused_for_google_albert(tmp_path):
    with pytest.raises(FamilyError, match=r'target="bert" is not available for this checkpoint'):
        convert("albert", tf=shared("upstream", "albert_g1i1"), out=tmp_path / "out", target="bert")


def test_auto_converts(tmp_path):
    result = convert("auto", tf=shared("upstream", "bright_postln"), out=tmp_path / "out")
    assert result.family == "albert_zh" and result.target_class == "AlbertForPreTraining"


# --- real indexes: planning and the table against transformers -----------------------------

REAL = {
    "jadepeng-albert_base_zh_google_best": ("albert", "AlbertForPreTraining"),
    "jadepeng-albert_tiny_zh": ("albert_zh", "AlbertForPreTraining"),
    "marsroger-albert_tiny_zh": ("albert_zh", "AlbertForPreTraining"),
    "liam1015-albert_base_zh_brightmart": ("albert_zh", "AlbertForPreTraining"),
}


def plan_real(name, target=None):
    folder = shared("real-index", name)
    with open_checkpoint(folder) as ckpt:
        family = select("albert", ckpt.variables, target, str(folder))
        config_path, _ = find_beside(folder, family.config_names)
        config = json.loads(config_path.read_text())
        return make_plan(family, ckpt.variables, config, source=str(ckpt.prefix), config_label=str(config_path))


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("target", [None, "bert"])
def test_real_albert_indexes_plan_and_match_transformers_keys(name, target):
    family_name, cls = REAL[name]
    if target == "bert" and family_name == "albert":
        pytest.skip("--target bert is for brightmart's layout only")
    plan = plan_real(name, target)
    assert plan.family.name == (family_name if target is None else "albert_zh_bert")
    assert plan.target.cls == (cls if target is None else cls.replace("Albert", "Bert"))
    accounted = {s for t in plan.tensors for s in t.sources} | {d.name for d in plan.dropped} | {n for n, _ in plan.discarded}
    assert accounted == set(plan.variables)
    config = hf_config_for(plan, {"gelu": plan.family.default_gelu, "dtype": "float32", "config_label": "cfg"})
    hf_config = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = getattr(transformers, plan.target.cls)(hf_config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    planned = {t.key: t.shape for t in plan.tensors}
    assert set(planned) | set(plan.tied) == set(expected)
    for key, shape in planned.items():
        assert expected[key] == shape, key


def test_google_chinese_albert_keeps_relu_from_its_config():
    plan = plan_real("jadepeng-albert_base_zh_google_best")
    config = hf_config_for(plan, {"gelu": "tanh", "dtype": "float32", "config_label": "cfg"})
    assert config["hidden_act"] == "relu"


# --- refusals by name -----------------------------------------------------------------------


@dataclass
class Var:
    shape: tuple
    dtype: str = "float32"
    size: int = 0


@pytest.fixture(scope="module")
def albert_vars():
    with open_checkpoint(shared("upstream", "albert_g1i1")) as ckpt:
        return {n: Var(tuple(i.shape), i.dtype) for n, i in ckpt.variables.items()}


def test_squad_v2_head_is_refused_by_name(albert_vars):
    variables = dict(albert_vars)
    variables["start_logits/dense/kernel"] = Var((16, 1))
    with pytest.raises(UnsupportedModelError, match=r"x: start_logits/dense/kernel: a SQuAD v2 head of google-research/albert"):
        make_plan(get_family("albert"), variables, {"num_hidden_layers": 4, "num_attention_heads": 4}, source="x", config_label="c")


def test_three_dimensional_ffn_kernels_are_refused(albert_vars):
    variables = dict(albert_vars)
    name = "bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/dense/kernel"
    variables[name] = Var((16, 2, 16))
    with pytest.raises(UnsupportedModelError, match=r"3-D feed-forward kernels"):
        make_plan(get_family("albert"), variables, {"num_hidden_layers": 4, "num_attention_heads": 4}, source="x", config_label="c")


# --- Chinese tokenizers ---------------------------------------------------------------------


def test_real_chinese_vocab_gives_a_working_autotokenizer_for_albert(tmp_path):
    from tf2hf.output.tokenizer import write_wordpiece
    from tf2hf.output.vocab import read_vocab

    vocab_path = shared("real-index", "jadepeng-albert_tiny_zh", "vocab.txt")
    tokens = read_vocab(vocab_path)
    assert len(tokens) == 21128  # str.splitlines() would say 21130
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "albert", "architectures": ["AlbertModel"]}))
    write_wordpiece(tmp_path, vocab_path, tokens, do_lower_case=True, lowercase_reason="test", model_max_length=512)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert len(tokenizer) == 21128
    ids = tokenizer("我爱中国")["input_ids"]
    lines = vocab_path.read_bytes().decode("utf-8").split("\n")
    assert ids == [lines.index(t) for t in ("[CLS]", "我", "爱", "中", "国", "[SEP]")]
    assert tokenizer.unk_token_id not in ids


def test_converted_albert_fixture_tokenizes_chinese(tmp_path):
    src = fixture("albert_pretrain_g2i2")
    convert("albert", tf=src, out=tmp_path / "out", verify=False)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    ids = tokenizer("我爱中国")["input_ids"]
    assert len(ids) == 6 and tokenizer.unk_token_id not in ids
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "我", "爱", "中", "国", "[SEP]"]


# --- brightmart-named synthetic checkpoints (no TF outputs: verified against the reference) --


@pytest.mark.parametrize("target,cls", [(None, "AlbertForSequenceClassification"), ("bert", "BertForSequenceClassification")])
def test_brightmart_classifier_converts_and_verifies(target, cls, tmp_path):
    result = convert("albert", tf=fixture("bright_classifier"), out=tmp_path / "out", target=target)
    assert result.target_class == cls and result.verification["passed"]
    assert result.dropped["optimizer slot"]["count"] > 0
    assert any("post-LN assumed" in a for a in result.assumptions)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["id2label"] == {"0": "LABEL_0", "1": "LABEL_1"}


def test_brightmart_lamb_slots_are_dropped(tmp_path):
    result = convert("albert", tf=fixture("bright_pretrain_postln"), out=tmp_path / "out")
    assert result.verification["passed"]
    assert {d.name.rsplit("/", 1)[-1] for d in convert("albert", tf=fixture("bright_pretrain_postln"), dry_run=True).plan.dropped} == {"lamb_m", "lamb_v", "global_step"}


def test_brightmart_preln_fixture_is_refused_by_the_cli(tmp_path):
    from typer.testing import CliRunner

    from tf2hf.cli import app

    src = fixture("bright_pretrain_preln")
    result = CliRunner().invoke(app, ["convert", "albert", "--tf", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {src / 'albert_config.json'}: ln_type is 'preln'")
    assert not (tmp_path / "out").exists()
