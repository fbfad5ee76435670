"""Planning BERT checkpoints: real indexes nobody here wrote, and the table against transformers."""

from __future__ import annotations

import json

import pytest

from support import Var, bert_index_folders, shared
from tf2hf.api import hf_config_for
from tf2hf.tfckpt import open_checkpoint
from tf2hf.errors import ConfigError, FamilyError, MappingError
from tf2hf.engine.plan import make_plan
from tf2hf.engine.registry import get_family
from tf2hf.sources import find_beside

BERT = get_family("bert")

EXPECTED_CLASS = {
    "heytgala-bert_tiny_L2_H128": "BertForPreTraining",
    "heytgala-bert_tiny_pretrain_step20": "BertForPreTraining",
    "heytgala-bert_tiny_mrpc_classifier": "BertForSequenceClassification",
    "heytgala-bert_tiny_squad": "BertForQuestionAnswering",
    "pyxz-google_chinese_L-12_H-768_A-12": "BertForPreTraining",
    "paolanu-protein_bert_step40000": "BertForPreTraining",
    "sgrwang-dna_bert_3mer_step200000": "BertForPreTraining",
    "CyberZHG-keras-bert-test_checkpoint": "BertForPreTraining",
    "llSiddharthll-Bert-bert_model": "BertForPreTraining",
    "rohan400-distilbert-squad-model.ckpt-6910": "BertForQuestionAnswering",  # snappy index
    "rohan400-distilbert-squad-bert_model": "BertForQuestionAnswering",
    "yiqichen-2000-BERTE-BERTMini": "BertForPreTraining",
    "Jerrykuo0310-NLP-model.ckpt-2827": "BertForSequenceClassification",  # config_supplied/
}


def plan_folder(folder):
    with open_checkpoint(folder) as ckpt:
        config_path, _ = find_beside(folder, BERT.config_names)
        if config_path is None:  # real fine-tunes seldom keep one beside them
            config_path, _ = find_beside(folder / "config_supplied", BERT.config_names)
        config = json.loads(config_path.read_text())
        return make_plan(BERT, ckpt.variables, config, source=str(ckpt.prefix), config_label=str(config_path))


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASS))
def test_every_real_bert_index_plans_to_the_right_class(name):
    folder = shared("real-index", name)
    plan = plan_folder(folder)
    assert plan.target.cls == EXPECTED_CLASS[name]
    # Every variable is accounted for: written, dropped or discarded.
    accounted = {s for t in plan.tensors for s in t.sources} | {d.name for d in plan.dropped} | {n for n, _ in plan.discarded}
    assert accounted == set(plan.variables)
    assert all(d.kind in ("optimizer slot", "bookkeeping") for d in plan.dropped)


def test_all_bert_indexes_are_covered():
    folders = bert_index_folders()
    if not folders:
        pytest.skip("shared checkpoints not available")
    assert {f.name for f in folders} == set(EXPECTED_CLASS)


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASS))
def test_planned_keys_and_shapes_are_exactly_the_transformers_state_dict(name):
    torch = pytest.importorskip("torch")
    import transformers

    plan = plan_folder(shared("real-index", name))
    config = hf_config_for(plan, {"gelu": "erf", "dtype": "float32", "config_label": "cfg"})
    hf_config = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = getattr(transformers, plan.target.cls)(hf_config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    planned = {t.key: t.shape for t in plan.tensors}
    assert set(planned) | set(plan.tied) == set(expected)
    assert not set(planned) & set(plan.tied)
    for key, shape in planned.items():
        assert expected[key] == shape, key


def test_chinese_bert_base_plan_counts():
    plan = plan_folder(shared("real-index", "pyxz-google_chinese_L-12_H-768_A-12"))
    assert plan.dims == {"V": 21128, "H": 768, "P": 512, "T": 2, "I": 3072, "L": 12}
    # 16 tensors per layer, 5 embeddings, 2 pooler, 5 MLM, 2 NSP.
    assert len(plan.tensors) == 12 * 16 + 5 + 2 + 5 + 2
    assert plan.tensors_per_part()["encoder"] == 12 * 16


def test_squad_plan_reports_the_discarded_pooler():
    plan = plan_folder(shared("real-index", "heytgala-bert_tiny_squad"))
    assert sorted(n for n, _ in plan.discarded) == ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]
    assert all("no pooler" in why for _, why in plan.discarded)


# --- synthetic variable lists: the planner's rules -------------------------------------------


@pytest.fixture(scope="module")
def pretrain_vars():
    with open_checkpoint(shared("upstream", "bert_pre")) as ckpt:
        return {name: Var(tuple(info.shape), info.dtype) for name, info in ckpt.variables.items()}


CONFIG = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32,
          "max_position_embeddings": 16, "type_vocab_size": 2}


def plan(variables, config=CONFIG):
    return make_plan(BERT, variables, config, source="ckpt", config_label="cfg.json")


def test_unknown_variables_are_one_error_folded_by_layer(pretrain_vars):
    variables = dict(pretrain_vars)
    variables["bert/encoder/layer_0/adapter/kernel"] = Var((16, 16))
    variables["bert/encoder/layer_1/adapter/kernel"] = Var((16, 16))
    with pytest.raises(MappingError) as err:
        plan(variables)
    assert str(err.value) == (
        "ckpt: cannot convert to BertForPreTraining: 2 variable(s) no rule maps: "
        "unknown variable: bert/encoder/layer_{0,1}/adapter/kernel"
    )


def test_an_unknown_optimizer_slot_is_never_mapped(pretrain_vars):
    # An allow-list: a slot with an unheard-of name can never overwrite a weight.
    variables = dict(pretrain_vars)
    variables["bert/pooler/dense/kernel/Yogi"] = Var((16, 16))
    with pytest.raises(MappingError, match=r"unknown variable: bert/pooler/dense/kernel/Yogi"):
        plan(variables)


def test_missing_weights_are_unfilled_targets_folded(pretrain_vars):
    variables = {k: v for k, v in pretrain_vars.items() if "/output/LayerNorm/gamma" not in k or "attention" in k}
    with pytest.raises(MappingError) as err:
        plan(variables)
    assert "2 target(s) nothing fills" in str(err.value)
    assert "unfilled target: bert.encoder.layer.{0,1}.output.LayerNorm.weight (needs bert/encoder/layer_{0,1}/output/LayerNorm/gamma)" in str(err.value)


def test_config_contradicting_shapes_names_every_conflict(pretrain_vars):
    with pytest.raises(ConfigError) as err:
        plan(pretrain_vars, {**CONFIG, "hidden_size": 32, "vocab_size": 30522})
    assert str(err.value) == (
        "cfg.json: the config contradicts the checkpoint: vocab_size=30522 but bert/embeddings/word_embeddings is [50, 16]; "
        "hidden_size=32 but bert/embeddings/word_embeddings is [50, 16]; pass the config that belongs to this checkpoint"
    )


def test_config_with_more_layers_than_the_checkpoint(pretrain_vars):
    with pytest.raises(ConfigError, match=r"num_hidden_layers=4 but the checkpoint has 2 \(bert/encoder/layer_\{0,1\}/attention/self/query/kernel\)"):
        plan(pretrain_vars, {**CONFIG, "num_hidden_layers": 4})


def test_config_value_of_wrong_type(pretrain_vars):
    with pytest.raises(ConfigError, match=r"cfg.json: hidden_size must be a positive integer, not '16'"):
        plan(pretrain_vars, {**CONFIG, "hidden_size": "16"})


def test_hub_module_prefix_is_stripped(pretrain_vars):
    variables = {("module/" + k if k.startswith("bert/") else k): v for k, v in pretrain_vars.items()}
    result = plan(variables)
    assert result.target.cls == "BertForPreTraining"
    assert all(s.startswith("module/bert/") for t in result.tensors for s in t.sources if "bert/" in s)


def test_not_a_bert_checkpoint_says_what_it_found():
    with open_checkpoint(shared("real", "t2t-2shard-nonbert")) as ckpt:
        variables = dict(ckpt.variables)
    with pytest.raises(FamilyError, match=r"not a bert checkpoint \(bert/embeddings/word_embeddings is missing\); it matches no known family"):
        plan(variables)


def test_more_heads_than_one_class_takes_the_task_head_wins(pretrain_vars):
    # A run_classifier fine-tune that kept its trained pre-training heads (real: issue 12): the
    # classifier is written, the MLM and NSP heads are left out, reported, never silently lost.
    variables = dict(pretrain_vars)
    variables["output_weights"] = Var((3, 16))
    variables["output_bias"] = Var((3,))
    result = plan(variables)
    assert result.target.cls == "BertForSequenceClassification"
    assert sorted(result.left_out) == ["masked-LM head", "next-sentence head"]
    discarded = {name for name, _why in result.discarded}
    assert {"cls/predictions/output_bias", "cls/seq_relationship/output_weights"} <= discarded
    assert any(note.startswith("left out: ") for note in result.notes)


def test_heads_without_a_class_are_refused(pretrain_vars):
    # The classifier alone, without the pooler it reads: no class takes it.
    variables = {k: v for k, v in pretrain_vars.items() if not k.startswith(("cls/", "bert/pooler"))}
    variables["output_weights"] = Var((3, 16))
    variables["output_bias"] = Var((3,))
    with pytest.raises(MappingError, match="no transformers class takes this combination of parts"):
        plan(variables)


def test_transposes_are_declared_not_guessed(pretrain_vars):
    ops = {t.key: t.op for t in plan(pretrain_vars).tensors}
    assert ops["bert.encoder.layer.0.attention.self.query.weight"] == "transpose"
    # Upstream multiplies output_weights with transpose_b=True: stored [out, in] already.
    assert ops["cls.seq_relationship.weight"] == "copy"
    assert ops["bert.embeddings.word_embeddings.weight"] == "copy"
