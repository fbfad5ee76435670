"""transformers' own TF configs name their activation formula; TF1 configs' "gelu" does not
(docs/GRAPH.md, ``Family.activation_named``).

Oracle: the outputs transformers' TF classes computed from the ``fixtures/keras_*`` weights with
their config's ``hidden_act`` (``tf_outputs.npz``, written by fixtures/make_keras.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from support import fixture
from tf2hf import convert
from tf2hf.engine.graph_facts import GraphFacts, settle
from tf2hf.engine.registry import get_family
from tf2hf.errors import ConfigError

TRANSFORMERS_TF = ("transformers_tf_bert", "transformers_tf_albert", "transformers_tf_electra")


@pytest.mark.parametrize("name", TRANSFORMERS_TF)
@pytest.mark.parametrize("act, formula", [("gelu", "erf"), ("gelu_new", "tanh")])
def test_a_transformers_config_names_its_formula(name, act, formula):
    settled = settle(get_family(name), GraphFacts(None), {"hidden_act": act}, None, "config.json")
    assert settled.assumptions == [] and settled.gelu == formula


@pytest.mark.parametrize("name", TRANSFORMERS_TF)
def test_a_transformers_config_without_hidden_act_still_says_what_is_assumed(name):
    settled = settle(get_family(name), GraphFacts(None), {}, None, "config.json")
    assert [a.split(" assumed")[0] for a in settled.assumptions] == ["activation: gelu (erf)"]


@pytest.mark.parametrize("name", ["bert", "albert", "albert_zh", "electra"])
def test_a_tf1_config_gelu_is_still_an_assumption(name):
    settled = settle(get_family(name), GraphFacts(None), {"hidden_act": "gelu"}, None, "bert_config.json")
    assert len(settled.assumptions) == 1 and settled.assumptions[0].startswith("activation: ")


def test_a_named_gelu_against_a_tanh_graph_is_a_contradiction():
    facts = GraphFacts("g.meta", activation="gelu_new", activation_ops="Tanh and Pow under ...")
    with pytest.raises(ConfigError, match=r"^config.json: hidden_act is 'gelu' but the training graph g.meta computes gelu_new"):
        settle(get_family("transformers_tf_bert"), facts, {"hidden_act": "gelu"}, None, "config.json")


@pytest.mark.parametrize("folder, cls", [("keras_bert_base", "BertModel"), ("keras_electra_pretrain", "ElectraForPreTraining")])
def test_a_converted_transformers_tf_model_assumes_nothing_and_matches_tf(folder, cls, tmp_path):
    result = convert("auto", tf=fixture(folder), out=tmp_path / "out")
    assert result.assumptions == [] and result.hf_config["hidden_act"] == "gelu"
    assert result.verification["passed"] and result.verification["settings"].startswith("from the config")
    npz = np.load(fixture(folder) / "tf_outputs.npz")
    # The last hidden state TF computed: hidden_state_0 is the embeddings, then one per layer.
    want = npz["last_hidden_state"] if "last_hidden_state" in npz.files else npz[f"hidden_state_{result.hf_config['num_hidden_layers']}"]
    args = {k: torch.tensor(npz[k], dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")}

    def hidden(**override):
        model = getattr(transformers, cls).from_pretrained(str(tmp_path / "out"), dtype=torch.float32, **override).eval()
        with torch.no_grad():
            return model.base_model(**args).last_hidden_state.numpy()

    assert np.max(np.abs(hidden() - want)) <= 1e-5  # TF computed it with the erf formula "gelu" names
    assert np.max(np.abs(hidden(hidden_act="gelu_new") - want)) > 1e-4  # the other formula is another model
