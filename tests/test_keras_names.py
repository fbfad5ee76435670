"""Keras-style LayerNorm names (layer_normalization[_N]) in BERT checkpoints: placed by their
scope when that is unambiguous, refused with the list otherwise (MAPPING.md §9)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from typer.testing import CliRunner

from support import fixture
from test_convert_bert import assert_matches_tf, run_converted
from tf2hf import convert
from tf2hf.api import hf_config_for
from tf2hf.tfckpt import open_checkpoint
from tf2hf.cli import app
from tf2hf.errors import MappingError, UnsupportedModelError
from tf2hf.engine.plan import make_plan
from tf2hf.engine.registry import get_family

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

LN = "bert/encoder/layer_{}/{}/layer_normalization_{}/{}"


def test_scoped_keras_names_convert_and_match_tensorflow(tmp_path):
    src = fixture("bert_keras_names")
    result = convert("bert", tf=src, out=tmp_path / "out")  # erf GELU, the bert default
    assert result.target_class == "BertForPreTraining" and result.verification["passed"]
    assert any("12 variable name(s) read as the table spells them (Keras-style LayerNorm names" in n for n in result.notes)
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert_matches_tf(got, npz, 1e-5)


def test_each_keras_layer_norm_lands_where_its_scope_says(tmp_path):
    plan = convert("auto", tf=fixture("bert_keras_names"), dry_run=True).plan
    sources = {t.key: t.sources[0] for t in plan.tensors}
    assert sources["bert.embeddings.LayerNorm.weight"] == "bert/embeddings/layer_normalization/gamma"
    assert sources["bert.encoder.layer.1.attention.output.LayerNorm.bias"] == LN.format(1, "attention/output", 3, "beta")
    assert sources["bert.encoder.layer.1.output.LayerNorm.weight"] == LN.format(1, "output", 4, "gamma")
    assert sources["cls.predictions.transform.LayerNorm.weight"] == "cls/predictions/transform/layer_normalization_5/gamma"


def test_unscoped_keras_names_are_refused_with_the_list(tmp_path):
    src = fixture("bert_keras_names_ambiguous")
    result = CliRunner().invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {src / 'model.ckpt-1'}: layer_normalization_{{1…4}}/beta, layer_normalization_{{1…4}}/gamma: "
        "Keras-style LayerNorm variables outside any scope: only their creation order (the _N counter) would say "
        "which layer they belong to, and tf2hf does not guess. Rebuild the checkpoint with the LayerNorms inside "
        "their layers' scopes (or named LayerNorm); nothing was written\n"
    )
    assert not (tmp_path / "out").exists()


@dataclass
class Var:
    shape: tuple
    dtype: str = "float32"
    size: int = 0


@pytest.fixture(scope="module")
def keras_vars():
    with open_checkpoint(fixture("bert_keras_names")) as ckpt:
        return {n: Var(tuple(i.shape), i.dtype) for n, i in ckpt.variables.items()}


def test_two_candidates_for_one_layer_norm_are_refused(keras_vars):
    variables = dict(keras_vars)
    # A second LayerNorm in layer 0's output scope (say, from a model built twice): which is it?
    variables[LN.format(0, "output", 9, "gamma")] = Var((16,))
    variables[LN.format(0, "output", 9, "beta")] = Var((16,))
    with pytest.raises(UnsupportedModelError) as err:
        make_plan(get_family("bert"), variables, {"num_attention_heads": 4}, source="x", config_label="c")
    message = str(err.value)
    assert message.startswith("x: 2 weight(s) have several candidates, so their position does not say which is which: ")
    assert f"{LN.format(0, 'output', 2, 'gamma')} and {LN.format(0, 'output', 9, 'gamma')} all read as bert/encoder/layer_0/output/LayerNorm/gamma" in message
    assert message.endswith("(Keras-style LayerNorm names (layer_normalization[_N]) placed by their scope); nothing was written")


def test_keras_and_classic_names_for_one_layer_norm_are_refused(keras_vars):
    variables = dict(keras_vars)
    variables["bert/embeddings/LayerNorm/gamma"] = Var((16,))
    with pytest.raises(UnsupportedModelError, match=r"bert/embeddings/(LayerNorm|layer_normalization)/gamma and .* all read as bert/embeddings/LayerNorm/gamma"):
        make_plan(get_family("bert"), variables, {"num_attention_heads": 4}, source="x", config_label="c")


def test_a_keras_layer_norm_where_bert_has_none_is_listed(keras_vars):
    variables = dict(keras_vars)
    name = LN.format(0, "intermediate", 7, "gamma")
    variables[name] = Var((32,))
    with pytest.raises(MappingError) as err:
        make_plan(get_family("bert"), variables, {"num_attention_heads": 4}, source="x", config_label="c")
    assert f"unknown variable: {name}" in err.value.details


def test_planned_keys_are_the_transformers_state_dict():
    src = fixture("bert_keras_names")
    with open_checkpoint(src) as ckpt:
        plan = make_plan(get_family("bert"), ckpt.variables, json.loads((src / "bert_config.json").read_text()), source="x", config_label="c")
    accounted = {s for t in plan.tensors for s in t.sources} | {d.name for d in plan.dropped}
    assert accounted == set(plan.variables)
    config = hf_config_for(plan, {"gelu": "erf", "dtype": "float32", "config_label": "c"})
    with torch.device("meta"):
        model = transformers.BertForPreTraining(transformers.AutoConfig.for_model(**config))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    planned = {t.key: t.shape for t in plan.tensors}
    assert set(planned) | set(plan.tied) == set(expected)
    assert all(expected[k] == s for k, s in planned.items())
