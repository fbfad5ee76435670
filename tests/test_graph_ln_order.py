"""brightmart's LayerNorm order read from the training graph (docs/GRAPH.md).

``fixtures/bright_graph_{postln,preln}`` were built by running brightmart/albert_zh's own
``modeling.py`` (fixtures/make_bright_graph.py): same variable names and shapes, the graph is the
only difference. Oracles: TensorFlow's reading of each ``.meta``
(``tf.compat.v1.train.import_meta_graph``: whether layer 0's query projection descends from the
layer's LayerNorm) and the outputs TF computed (``tf_outputs.npz``), never tf2hf's own output.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import transformers

from support import fixture, shared
from tf2hf import convert
from tf2hf.engine.graph_facts import read_facts
from tf2hf.engine.registry import get_family
from tf2hf.errors import UnsupportedModelError

tf = pytest.importorskip("tensorflow")

QUERY = "bert/encoder/layer_shared/attention/self/query/"
LAYER_NORM = "bert/encoder/layer_shared/attention/output/LayerNorm/"
REAL = ["jadepeng-albert_tiny_zh", "marsroger-albert_tiny_zh", "liam1015-albert_base_zh_brightmart"]


def query_reads_the_layer_norm(meta) -> bool:
    """TF's reading: does layer 0's query product have the layer's LayerNorm among its
    ancestors (all of them, not only the input tf2hf looks at)?"""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
    (query,) = [op for op in graph.get_operations() if op.name.startswith(QUERY) and op.type == "MatMul"]
    seen, todo = set(), [t.op for t in query.inputs]
    while todo:
        op = todo.pop()
        if op.name not in seen:
            seen.add(op.name)
            todo.extend(t.op for t in op.inputs)
    return any(name.startswith(LAYER_NORM) for name in seen)


def _meta(folder):
    (meta,) = folder.glob("*.meta")
    return meta


@pytest.mark.parametrize("folder, order", [("bright_graph_postln", "post"), ("bright_graph_preln", "pre")])
def test_the_fixture_graphs_show_their_order(folder, order):
    meta = _meta(fixture(folder))
    assert query_reads_the_layer_norm(meta) == (order == "pre")
    assert read_facts(get_family("albert_zh"), meta.with_suffix(""), None).norm_order == order


@pytest.mark.parametrize("name", REAL)
def test_the_released_albert_zh_graphs_are_post_ln(name, tmp_path):
    src = tmp_path / name
    shutil.copytree(shared("real-index", name), src)
    assert not query_reads_the_layer_norm(_meta(src))
    assert read_facts(get_family("albert_zh"), _meta(src).with_suffix(""), None).norm_order == "post"
    (config,) = src.glob("albert_config*.json")
    config.chmod(0o644)
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items() if k != "ln_type"}))
    result = convert("albert", tf=src, dry_run=True, tokenizer=False)
    assert any(n.startswith("ln_type: postln from the training graph") for n in result.notes)
    assert not any("post-LN assumed" in n for n in result.notes)


def test_the_shared_upstream_brightmart_graph_is_post_ln():
    meta = _meta(shared("upstream", "bright_postln"))
    assert not query_reads_the_layer_norm(meta)
    assert read_facts(get_family("albert_zh"), meta.with_suffix(""), None).norm_order == "post"


def _without_ln_type(tmp_path, folder, ln_type=None, meta=True):
    src = tmp_path / folder
    shutil.copytree(fixture(folder), src, ignore=None if meta else shutil.ignore_patterns("*.meta"))
    config = json.loads((src / "albert_config.json").read_text())
    config.pop("ln_type")
    if ln_type is not None:
        config["ln_type"] = ln_type
    (src / "albert_config.json").write_text(json.dumps(config))
    return src


def _hidden(folder, npz) -> tuple[np.ndarray, np.ndarray]:
    """The converted AlbertModel's last hidden state and pooler output on TF's inputs."""
    model = transformers.AlbertModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    args = {"input_ids": npz["input_ids"], "attention_mask": npz["input_mask"], "token_type_ids": npz["token_type_ids"]}
    with torch.no_grad():
        out = model(**{k: torch.tensor(v, dtype=torch.long) for k, v in args.items()})
    return out.last_hidden_state.numpy(), out.pooler_output.numpy()


def test_a_post_ln_graph_without_ln_type_converts_and_matches_tf(tmp_path):
    src = _without_ln_type(tmp_path, "bright_graph_postln")
    result = convert("albert", tf=src, out=tmp_path / "out")
    assert result.target_class == "AlbertModel" and result.verification["passed"] and result.assumptions == []
    assert any(n.startswith(f"ln_type: postln from the training graph {src / 'model.ckpt.meta'}") for n in result.notes)
    npz = np.load(src / "tf_outputs.npz")
    sequence, pooled = _hidden(tmp_path / "out", npz)
    assert np.max(np.abs(sequence - npz["sequence_output"])) <= 1e-5
    assert np.max(np.abs(pooled - npz["pooled_output"])) <= 1e-5


@pytest.mark.parametrize("ln_type", [None, "postln"])
def test_a_pre_ln_graph_is_refused_naming_its_file(ln_type, tmp_path):
    src = _without_ln_type(tmp_path, "bright_graph_preln", ln_type)
    with pytest.raises(UnsupportedModelError) as caught:
        convert("albert", tf=src, out=tmp_path / "out")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{src / 'model.ckpt.meta'}: the training graph is pre-LN")
    assert ("says ln_type 'postln'" in message) == (ln_type == "postln")
    assert "Nothing was written" in message and not (tmp_path / "out").exists()


def test_a_pre_ln_graph_converted_as_post_ln_is_another_model(tmp_path):
    """Why the graph is read: without it (and a config that says nothing), the pre-LN
    checkpoint converts — to a model whose outputs are not TF's."""
    src = _without_ln_type(tmp_path, "bright_graph_preln", meta=False)
    result = convert("albert", tf=src, out=tmp_path / "out", gelu="tanh", verify=False)
    assert any("post-LN assumed" in a for a in result.assumptions)
    npz = np.load(src / "tf_outputs.npz")
    sequence, _ = _hidden(tmp_path / "out", npz)
    assert np.max(np.abs(sequence - npz["sequence_output"])) > 1.0


def test_inspect_shows_the_graphs_layer_norm_order_and_epsilon_beside_the_config():
    from typer.testing import CliRunner

    from tf2hf.cli import app

    shown = CliRunner().invoke(app, ["inspect", "--tf", str(fixture("bright_graph_preln"))])
    assert "pre-LN (config: ln_type preln)" in shown.stdout
    # Built by make_eps_graph.py with a variance epsilon of 1e-3 that its config does not state.
    shown = CliRunner().invoke(app, ["inspect", "--tf", str(fixture("eps_graph_bert"))])
    assert "LayerNorm epsilon 0.001 (config: layer_norm_eps not given)" in shown.stdout
