"""TF2 object-based BERT (tensorflow/models, tf.train.Checkpoint) against TensorFlow's outputs."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest

from support import fixture
from test_convert_bert import assert_matches_tf, run_converted
from tf2hf import convert
from tf2hf.engine import transforms
from tf2hf.api import hf_config_for
from tf2hf.tfckpt import open_checkpoint
from tf2hf.errors import ConfigError, FamilyError, MappingError
from tf2hf.engine.plan import make_plan
from tf2hf.verify.references import tf2_bert as reference
from tf2hf.engine.registry import get_family, select
from tf2hf.engine.roots import read_all

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.mark.parametrize("name,family", [("tf2_bert_encoder", "tf2_bert"), ("tf2_bert_encoder", "auto"), ("tf2_bert_mha", "tf2_bert")])
def test_encoder_matches_tensorflow_and_the_reference(name, family, tmp_path):
    src = fixture(name)
    result = convert(family, tf=src, out=tmp_path / "out")
    assert result.family == "tf2_bert" and result.target_class == "BertModel"
    assert result.verification["passed"] and result.verification["gelu"] == "gelu_new"
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert_matches_tf(got, npz, 1e-5)
    # The reference (einsum on the 3-D kernels) against TF, by the checkpoint's own names.
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    family_ = get_family("tf2_bert")
    inputs = {k: npz[k] for k in ("input_ids", "input_mask", "token_type_ids")}
    with open_checkpoint(src) as ckpt:
        by_table_name = {table: n for n, table in read_all(family_, ckpt.variables).items()}
        ref = reference.forward(lambda n: ckpt.read(by_table_name[n]), config, inputs, gelu="tanh", heads=frozenset({"pooler"}))
    for key in ("sequence_output", "pooled_output"):
        assert np.max(np.abs(ref[key] - npz[key])) <= 1e-5, key
        assert np.max(np.abs(ref[key] - got[key])) <= 1e-5, key


def test_optimizer_state_and_object_graph_are_dropped():
    result = convert("tf2_bert", tf=fixture("tf2_bert_encoder"), dry_run=True)
    kinds = {d.name: d.kind for d in result.plan.dropped}
    assert kinds["_CHECKPOINTABLE_OBJECT_GRAPH"] == "bookkeeping"
    assert kinds["save_counter" + SUFFIX] == "bookkeeping"
    assert kinds["optimizer/beta1_power" + SUFFIX] == "optimizer slot"
    assert kinds["model/layer_with_weights-4/_attention_layer/_query_dense/kernel/.OPTIMIZER_SLOT/optimizer/m" + SUFFIX] == "optimizer slot"
    assert result.dropped["optimizer slot"]["count"] == 80  # m and v of 39 weights, beta1/2_power
    assert result.tensors == 39


def test_three_d_kernels_reshape_like_the_einsum():
    """merge_out_transpose/merge_in_transpose give torch Linear weights that compute the einsums."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 8))
    qkv = rng.normal(size=(8, 2, 4))
    out = rng.normal(size=(2, 4, 8))
    w = transforms.get("merge_out_transpose").apply([qkv], (8, 8))
    assert w.flags["C_CONTIGUOUS"] and w.shape == (8, 8)
    assert np.allclose(x @ w.T, np.einsum("bsh,hnd->bsnd", x, qkv).reshape(2, 3, 8))
    context = rng.normal(size=(2, 3, 2, 4))
    w = transforms.get("merge_in_transpose").apply([out], (8, 8))
    assert np.allclose(context.reshape(2, 3, 8) @ w.T, np.einsum("bfnd,ndh->bfh", context, out))
    assert transforms.get("flatten").shape([(2, 4)], (8,)) == (8,)


def test_heads_come_from_the_kernels_and_are_checked_against_the_config(tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(fixture("tf2_bert_encoder"), src)
    config = json.loads((src / "bert_config.json").read_text())
    config["num_attention_heads"] = 2
    (src / "bert_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"num_attention_heads=2 but layer_with_weights-4/_attention_layer/_query_dense/kernel is \[16, 4, 4\]"):
        convert("tf2_bert", tf=src, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bert_on_a_tf2_checkpoint_names_the_family(tmp_path):
    src = fixture("tf2_bert_encoder")
    with pytest.raises(FamilyError, match=r"not a bert checkpoint: it is a tf2_bert checkpoint \(tensorflow/models .*use 'tf2hf convert tf2_bert' or 'auto'"):
        convert("bert", tf=src, out=tmp_path / "out")


@dataclass
class Var:
    shape: tuple
    dtype: str = "float32"
    size: int = 0


def test_objects_beyond_the_encoder_are_refused_with_their_names():
    with open_checkpoint(fixture("tf2_bert_mha")) as ckpt:
        variables = {n: Var(tuple(i.shape), i.dtype) for n, i in ckpt.variables.items()}
    # A head saved after the pooler (layer_with_weights-6 here: 1 layer, pooler at 5).
    variables["encoder/layer_with_weights-6/kernel" + SUFFIX] = Var((16, 3))
    variables["encoder/layer_with_weights-6/bias" + SUFFIX] = Var((3,))
    with pytest.raises(MappingError) as err:
        make_plan(get_family("tf2_bert"), variables, {"num_attention_heads": 4}, source="x", config_label="c")
    assert "2 variable(s) no rule maps" in str(err.value)
    assert "unknown variable: encoder/layer_with_weights-6/bias/.ATTRIBUTES/VARIABLE_VALUE" in err.value.details


@pytest.mark.parametrize("name", ["tf2_bert_encoder", "tf2_bert_mha"])
def test_planned_keys_are_the_transformers_state_dict(name):
    src = fixture(name)
    with open_checkpoint(src) as ckpt:
        family = select("auto", ckpt.variables, None, str(src))
        config = json.loads((src / "bert_config.json").read_text())
        plan = make_plan(family, ckpt.variables, config, source=str(src), config_label="c")
    accounted = {s for t in plan.tensors for s in t.sources} | {d.name for d in plan.dropped}
    assert accounted == set(plan.variables)
    hf = hf_config_for(plan, {"gelu": "tanh", "dtype": "float32", "config_label": "c"})
    with torch.device("meta"):
        model = transformers.BertModel(transformers.AutoConfig.for_model(**hf))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {t.key: t.shape for t in plan.tensors} == expected
