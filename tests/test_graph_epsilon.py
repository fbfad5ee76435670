"""A training graph whose LayerNorms used another epsilon than contrib's 1e-12 (docs/GRAPH.md).

``fixtures/eps_graph_bert`` was trained, saved and run by TensorFlow with upstream BERT code whose
layer norms add 1e-3 to the variance (fixtures/make_eps_graph.py); its config says nothing of it.
Oracles: TensorFlow's own reading of the ``.meta`` and the outputs TF computed
(``tf_outputs.npz``), never tf2hf's output.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from support import fixture
from test_convert_bert import assert_matches_tf, run_converted
from tf2hf import convert
from tf2hf.engine.graph_facts import read_facts
from tf2hf.engine.registry import get_family
from tf2hf.tfckpt import open_checkpoint
from tf2hf.verify.compare import TOLERANCE, verify
from tf2hf.verify.references import bert
from tf2hf.verify.references.locate import locate
from tf2hf.verify.references.numerics import log_softmax

tf = pytest.importorskip("tensorflow")

EPSILON = 1e-3
FOLDER = "eps_graph_bert"


def tf_epsilons(meta) -> dict[str, float]:
    """TF's reading: the variance epsilon of every LayerNorm of the forward graph, by scope."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
    return {
        op.name.rsplit("/batchnorm/", 1)[0]: float(tf.make_ndarray(op.get_attr("value")))
        for op in graph.get_operations()
        if op.type == "Const" and op.name.endswith("LayerNorm/batchnorm/add/y") and not op.name.startswith("gradients")
    }


def test_every_layer_norm_of_the_graph_used_the_epsilon_tf2hf_reads():
    src = fixture(FOLDER)
    found = tf_epsilons(src / "model.ckpt-1.meta")
    # The embeddings', both of each layer's and the MLM transform's: one epsilon for all, as
    # transformers' single layer_norm_eps applies it.
    assert len(found) == 1 + 2 * 2 + 1 and {round(v, 9) for v in found.values()} == {EPSILON}
    assert read_facts(get_family("bert"), src / "model.ckpt-1", None).epsilon == EPSILON


def test_the_converted_model_matches_tf_and_verification_passes(tmp_path):
    src = fixture(FOLDER)
    result = convert("bert", tf=src, out=tmp_path / "out")
    assert result.hf_config["layer_norm_eps"] == EPSILON == json.loads((tmp_path / "out" / "config.json").read_text())["layer_norm_eps"]
    assert result.verification["passed"] and result.verification["worst"] < 1e-5
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert_matches_tf(got, npz, 1e-5)


def _reference(config: dict) -> dict[str, np.ndarray]:
    src = fixture(FOLDER)
    ckpt = open_checkpoint(src / "model.ckpt-1")
    npz = np.load(src / "tf_outputs.npz")
    inputs = {k: npz[k] for k in ("input_ids", "input_mask", "token_type_ids", "positions")}
    get = locate(bert.LAYOUT, list(ckpt.variables), ckpt.read)
    return bert.forward(get, config, inputs, gelu="tanh", heads=frozenset({"pooler", "mlm", "nsp"}))


@pytest.mark.parametrize("eps, close", [(EPSILON, True), (1e-12, False)])
def test_the_reference_computes_tfs_graph_only_with_the_graphs_epsilon(eps, close):
    config = dict(json.loads((fixture(FOLDER) / "bert_config.json").read_text()), layer_norm_eps=eps)
    out = _reference(config)
    npz = np.load(fixture(FOLDER) / "tf_outputs.npz")
    diffs = [np.max(np.abs(out["sequence_output"] - npz["sequence_output"])),
             np.max(np.abs(log_softmax(out["mlm_logits"]) - npz["mlm_log_probs"]))]
    assert (max(diffs) <= 1e-5) if close else (min(diffs) > 1e-3), diffs


@pytest.mark.parametrize("wrong", ["reference", "model"])
def test_verification_fails_when_one_side_computes_another_epsilon(wrong, tmp_path):
    """The folder converted right, then one side told 1e-12: the reference (the hf_config it
    is given) or the model (its config.json)."""
    src = fixture(FOLDER)
    out = tmp_path / "out"
    result = convert("bert", tf=src, out=out)
    hf_config = dict(result.hf_config)
    if wrong == "reference":
        hf_config["layer_norm_eps"] = 1e-12
    else:
        written = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps(dict(written, layer_norm_eps=1e-12)))
    plan = convert("bert", tf=src, dry_run=True).plan
    ckpt = open_checkpoint(src / "model.ckpt-1")
    check = verify(
        plan.family.reference, list(ckpt.variables), ckpt.read, out, source=str(src), tf_config=plan.tf_config, hf_config=hf_config,
        target_class=plan.target.cls, heads=frozenset(plan.target.parts) - plan.family.base_parts,
        outputs=[(o.reference, o.field, o.select) for o in plan.target.outputs],
        vocab_size=plan.dims["V"], max_positions=plan.dims["P"], type_vocab_size=plan.dims["T"], dtype="float32",
    )
    assert not check.passed and check.worst > TOLERANCE["float32"], check.max_abs_diff


def test_without_the_graph_the_family_default_is_written(tmp_path):
    """The same checkpoint without its .meta: nothing shows the epsilon, the family's 1e-12 is
    written, and the converted model is measurably not TF's."""
    src = tmp_path / FOLDER
    shutil.copytree(fixture(FOLDER), src, ignore=shutil.ignore_patterns("*.meta"))
    result = convert("bert", tf=src, out=tmp_path / "out", gelu="tanh", verify=False)
    assert result.hf_config["layer_norm_eps"] == 1e-12
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert np.max(np.abs(got["sequence_output"] - npz["sequence_output"])) > 1e-3
