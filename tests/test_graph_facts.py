"""What the training graph says, and what a conversion does with it (docs/GRAPH.md).

Oracles: TensorFlow's own reading of each ``.meta`` (``tf.compat.v1.train.import_meta_graph``:
the ops under layer 0's feed-forward scope, the query reshape's shape constant), and the
outputs TF computed from the upstream checkpoints (``tf_outputs.npz``), never tf2hf itself.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from support import fixture, shared
from test_convert_bert import assert_matches_tf, run_converted
from tf2hf import convert
from tf2hf.engine.graph_facts import read_facts
from tf2hf.engine.registry import get_family
from tf2hf.errors import ConfigError

tf = pytest.importorskip("tensorflow")

# (folder, family, the scopes the oracle looks in — upstream's code names them so —, what the
# issue's survey says the graph computes, heads)
BERT = ("bert/encoder/layer_0/intermediate/", "bert/encoder/layer_0/attention/self/")
ALBERT = ("bert/encoder/transformer/group_0/layer_0/inner_group_0/ffn_1/intermediate/",
          "bert/encoder/transformer/group_0/layer_0/inner_group_0/attention_1/self/")
BRIGHT = ("bert/encoder/layer_shared/intermediate/", "bert/encoder/layer_shared/attention/self/")
GRAPHS = [
    ("real-index/heytgala-bert_tiny_L2_H128", "bert", BERT, None, None),
    ("real-index/heytgala-bert_tiny_mrpc_classifier", "bert", BERT, "gelu_new", 2),
    ("real-index/heytgala-bert_tiny_pretrain_step20", "bert", BERT, "gelu_new", 2),
    ("real-index/heytgala-bert_tiny_squad", "bert", BERT, "gelu_new", 2),
    ("real-index/paolanu-protein_bert_step40000", "bert", BERT, "gelu_new", 12),
    ("real-index/sgrwang-dna_bert_3mer_step200000", "bert", BERT, "gelu_new", 12),
    ("real-index/pyxz-google_chinese_L-12_H-768_A-12", "bert", BERT, "gelu", 12),
    ("real-index/jadepeng-albert_base_zh_google_best", "albert", ALBERT, "relu", 12),
    ("real-index/jadepeng-albert_tiny_zh", "albert_zh", BRIGHT, "gelu_new", 12),
    ("real-index/marsroger-albert_tiny_zh", "albert_zh", BRIGHT, "gelu_new", 12),
    ("real-index/liam1015-albert_base_zh_brightmart", "albert_zh", BRIGHT, "gelu_new", 12),
    ("upstream/bert_pre", "bert", BERT, "gelu_new", 4),
    ("upstream/albert_g1i1", "albert", ALBERT, "gelu_new", 4),
    ("upstream/bright_postln", "albert_zh", BRIGHT, "gelu_new", 4),
]


def oracle(meta, scopes):
    """TF's reading: the activation op under the feed-forward scope, the heads of the query reshape."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
    forward = [op for op in graph.get_operations() if not op.name.startswith("gradients")]
    ops = {op.type for op in forward if op.name.startswith(scopes[0])}
    act = "gelu" if "Erf" in ops else "gelu_new" if {"Tanh", "Pow"} <= ops else "relu" if "Relu" in ops else None
    heads = set()
    for op in forward:
        if op.type == "Reshape" and op.name.startswith(scopes[1]) and ("/query/" in op.name or "/query/" in op.inputs[0].name):
            shape = op.inputs[1].op
            if shape.type == "Const":
                value = tf.make_ndarray(shape.get_attr("value"))
                if value.size >= 3:
                    heads.add(int(value[-2]))
    return act, (heads.pop() if len(heads) == 1 else None)


@pytest.mark.parametrize("where, family, scopes, act, heads", GRAPHS, ids=[g[0].split("/")[1] for g in GRAPHS])
def test_what_each_real_graph_shows(where, family, scopes, act, heads):
    folder = shared(*where.split("/"))
    metas = sorted(folder.glob("*.meta"))
    if not metas:
        facts = read_facts(get_family(family), next(folder.glob("*.index")).with_suffix(""), None)
        assert facts.path is None and facts.activation is None and facts.heads is None
        return
    meta = metas[0]
    assert oracle(meta, scopes) == (act, heads)
    facts = read_facts(get_family(family), meta.with_suffix(""), None)
    assert (facts.activation, facts.heads) == (act, heads)
    assert facts.epsilon == 1e-12


@pytest.mark.parametrize("name", ["bert_pre", "bright_postln", "albert_g1i1"])
def test_upstream_checkpoints_need_no_gelu_option(name, tmp_path):
    src = shared("upstream", name)
    family = {"bert_pre": "bert"}.get(name, "albert")
    result = convert(family, tf=src, out=tmp_path / "out")  # no --gelu: the graph says tanh
    assert result.assumptions == []
    assert result.hf_config["hidden_act"] == "gelu_new" == json.loads((tmp_path / "out" / "config.json").read_text())["hidden_act"]
    assert "from the training graph" in result.verification["settings"]
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    if "nsp_log_probs" in npz.files and "sop_logits" in got:
        got["nsp_log_probs"] = got.pop("sop_log_probs")  # brightmart's NSP head is ALBERT's sentence head
    assert_matches_tf(got, npz, 1e-5)


def test_a_checkpoint_without_its_config_converts_from_shapes_and_graph(tmp_path):
    src = tmp_path / "bert_pre"
    shutil.copytree(shared("upstream", "bert_pre"), src, ignore=shutil.ignore_patterns("bert_config.json"))
    result = convert("bert", tf=src, out=tmp_path / "out")
    assert result.config_path == ""
    assert result.hf_config["num_attention_heads"] == 4 and result.hf_config["hidden_act"] == "gelu_new"
    assert any("config built from the shapes" in note for note in result.notes)
    npz = np.load(src / "tf_outputs.npz")
    got, _ = run_converted(tmp_path / "out", npz)
    assert_matches_tf(got, npz, 1e-5)


def test_without_config_or_graph_the_error_says_what_is_missing(tmp_path):
    src = tmp_path / "bert_pre"
    shutil.copytree(shared("upstream", "bert_pre"), src, ignore=shutil.ignore_patterns("bert_config.json", "*.meta"))
    with pytest.raises(ConfigError) as caught:
        convert("bert", tf=src, dry_run=True)
    message = str(caught.value)
    assert message.startswith(f"{src}: no config JSON found") and "number of attention heads" in message
    assert message.endswith(" FILE") and "--config" in message or "config=" in message  # the CLI spelling, or the API's
    assert "no training graph" in message and "model.ckpt.meta" in message


def test_an_erf_graph_gets_gelu():
    src = shared("real-index", "pyxz-google_chinese_L-12_H-768_A-12")
    result = convert("bert", tf=src, dry_run=True, tokenizer=False)
    assert result.hf_config["hidden_act"] == "gelu" and result.assumptions == []


def test_electra_generator_gets_the_heads_of_its_graph(tmp_path):
    """The generator's graph is rebuilt by the fixture's own builder with 3 heads (not upstream's
    max(1, 12 // 64) = 1), the fixture checkpoint restored into it: TF's outputs of that graph
    are the oracle, and only the graph tells tf2hf that it has 3 heads."""
    import sys

    from support import FIXTURES

    sys.path.insert(0, str(FIXTURES))
    import make_electra_tf2 as builder

    src = tmp_path / "electra"
    shutil.copytree(fixture("electra_pretrain"), src)
    spec = dict(builder.FOLDERS["electra_pretrain"], generator_heads=3)
    outputs = builder.run_tf1(spec, src, restore=True, meta=src / f"{spec['prefix']}.meta")
    result = convert("electra", tf=src, tower="generator", out=tmp_path / "out")
    assert result.hf_config["num_attention_heads"] == 3  # the config beside it says 4 (the discriminator's)
    assert result.verification["passed"]
    import torch
    import transformers

    model = transformers.ElectraForMaskedLM.from_pretrained(str(tmp_path / "out"), dtype=torch.float32).eval()
    npz = np.load(src / "tf_outputs.npz")
    with torch.no_grad():
        got = model.electra(input_ids=torch.tensor(npz["input_ids"], dtype=torch.long),
                            attention_mask=torch.tensor(npz["input_mask"], dtype=torch.long),
                            token_type_ids=torch.tensor(npz["token_type_ids"], dtype=torch.long)).last_hidden_state.numpy()
    want = outputs["generator_sequence_output"]
    assert np.max(np.abs(got - want)) <= 1e-5
    assert np.max(np.abs(want - npz["generator_sequence_output"])) > 1e-3  # 3 heads is another model than 1


def test_an_explicit_gelu_wins_with_a_warning():
    result = convert("bert", tf=shared("upstream", "bert_pre"), dry_run=True, gelu="erf")
    assert result.hf_config["hidden_act"] == "gelu"
    # The API spells options as Python callers pass them (gelu="erf"), the CLI as --gelu erf.
    assert any("the training graph computes gelu_new" in w and ('gelu="erf" was given' in w or "--gelu erf was given" in w) for w in result.warnings)


def _copy_with_config(tmp_path, **changes):
    src = tmp_path / "bert_pre"
    shutil.copytree(shared("upstream", "bert_pre"), src)
    config = json.loads((src / "bert_config.json").read_text())
    config.update(changes)
    (src / "bert_config.json").write_text(json.dumps(config))
    return src


def test_a_config_activation_that_contradicts_the_graph_is_an_error(tmp_path):
    src = _copy_with_config(tmp_path, hidden_act="relu")
    with pytest.raises(ConfigError, match=r"hidden_act is 'relu' but the training graph .*model.ckpt.meta computes gelu_new .*pass the config that belongs"):
        convert("bert", tf=src, dry_run=True)


def test_heads_found_beside_that_contradict_the_graph_are_an_error(tmp_path):
    src = _copy_with_config(tmp_path, num_attention_heads=2)
    with pytest.raises(ConfigError, match=r"bert_config.json: num_attention_heads is 2 but the training graph .* into 4 heads"):
        convert("bert", tf=src, dry_run=True)


def test_heads_given_with_config_win_with_a_warning(tmp_path):
    src = _copy_with_config(tmp_path, num_attention_heads=2)
    result = convert("bert", tf=src, config=src / "bert_config.json", dry_run=True)
    assert result.hf_config["num_attention_heads"] == 2
    assert any("using the config's 2 (given with" in w for w in result.warnings)


def _with_graph(tmp_path, build):
    """bert_pre's checkpoint beside a graph built here by ``build()`` in a fresh TF graph."""
    src = tmp_path / "bert_pre"
    shutil.copytree(shared("upstream", "bert_pre"), src, ignore=shutil.ignore_patterns("*.meta"))
    graph = tf.Graph()
    with graph.as_default():
        build()
        tf.compat.v1.train.export_meta_graph(str(src / "model.ckpt.meta"))
    return src


def test_a_graph_of_variables_and_save_ops_only_is_not_an_error(tmp_path):
    def variables_only():
        tf.compat.v1.Variable(tf.zeros([16, 64]), name="bert/encoder/layer_0/intermediate/dense/kernel")
        tf.compat.v1.train.Saver()

    result = convert("bert", tf=_with_graph(tmp_path, variables_only), dry_run=True)
    assert result.hf_config["hidden_act"] == "gelu"
    assert result.assumptions == [
        f"activation: gelu (erf) assumed — the training graph {tmp_path / 'bert_pre' / 'model.ckpt.meta'} does not compute the "
        "feed-forward layer; pass --gelu tanh if it was trained with google-research/bert code after February 2019"
    ]


def test_an_activation_tf2hf_does_not_know_is_an_error_naming_the_ops(tmp_path):
    def sigmoid_layer():
        x = tf.compat.v1.placeholder(tf.float32, [2, 16])
        with tf.compat.v1.variable_scope("bert/encoder/layer_0/intermediate/dense"):
            kernel = tf.compat.v1.get_variable("kernel", [16, 64])
            tf.sigmoid(tf.matmul(x, kernel))

    with pytest.raises(ConfigError, match=r"model.ckpt.meta: the feed-forward layer .* computes none of the activations .*MatMul, .*Sigmoid"):
        convert("bert", tf=_with_graph(tmp_path, sigmoid_layer), dry_run=True)


def test_without_a_graph_the_activation_is_said_to_be_assumed(tmp_path):
    src = tmp_path / "bert_pre"
    shutil.copytree(shared("upstream", "bert_pre"), src, ignore=shutil.ignore_patterns("*.meta"))
    result = convert("bert", tf=src, dry_run=True)
    assert result.assumptions == ["activation: gelu (erf) assumed — no training graph beside the checkpoint; "
                                  "pass --gelu tanh if it was trained with google-research/bert code after February 2019"]


def test_inspect_shows_the_graph_next_to_the_config():
    from tf2hf import inspect_checkpoint

    report = inspect_checkpoint(shared("upstream", "bert_pre"))
    assert report.graph.endswith("model.ckpt.meta: activation gelu_new (config: hidden_act gelu); 4 heads (config: num_attention_heads 4)")


def test_cli_json_of_a_dry_run_holds_the_config_json_and_the_assumptions(tmp_path):
    from typer.testing import CliRunner

    from tf2hf.cli import app

    src = tmp_path / "bert_pre"
    shutil.copytree(shared("upstream", "bert_pre"), src, ignore=shutil.ignore_patterns("*.meta"))
    done = CliRunner().invoke(app, ["convert", "bert", "--tf", str(src), "--dry-run", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["hf_config"]["hidden_act"] == "gelu" and data["hf_config"]["num_attention_heads"] == 4
    assert data["hf_config"]["architectures"] == ["BertForPreTraining"]
    assert data["assumptions"] and data["assumptions"][0].startswith("activation: gelu (erf) assumed — no training graph")
    shown = CliRunner().invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(tmp_path / "out"), "--no-verify"])
    assert shown.exit_code == 0, shown.output
    assert "assumed: activation: gelu (erf) assumed" in shown.output
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Assumed" in card and "pass --gelu tanh" in card


def test_a_relu_graph_against_a_gelu_config_is_an_error_and_without_one_sets_relu():
    from tf2hf.engine.graph_facts import GraphFacts, settle

    family = get_family("albert")
    facts = GraphFacts("g.meta", activation="relu", activation_ops="Relu under ffn_1/intermediate/")
    with pytest.raises(ConfigError, match=r"^c.json: hidden_act is 'gelu' but the training graph g.meta computes relu \(Relu under"):
        settle(family, facts, {"hidden_act": "gelu"}, None, "c.json")
    assert settle(family, facts, {}, None, "c.json").tf_config["hidden_act"] == "relu"
    assert settle(family, facts, {"hidden_act": "relu"}, None, "c.json").assumptions == []


def test_the_google_albert_relu_graph_plans_relu():
    src = shared("real-index", "jadepeng-albert_base_zh_google_best")
    result = convert("albert", tf=src, dry_run=True, tokenizer=False)
    assert result.hf_config["hidden_act"] == "relu" and result.hf_config["num_attention_heads"] == 12
