"""ELECTRA: both towers of a pre-training checkpoint, a fine-tuned tagger, refusals.

Expected numbers are what TensorFlow computed from each fixture's graph (``tf_outputs.npz``,
written by fixtures/make_electra_tf2.py) and what the NumPy reference of the source graph
computes from the TF variables; never tf2hf's own output.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
from typer.testing import CliRunner

from support import fixture
from tf2hf import convert
from tf2hf.api import hf_config_for
from tf2hf.tfckpt import open_checkpoint
from tf2hf.cli import app
from tf2hf.errors import ConfigError, FamilyError, UnsupportedModelError
from tf2hf.engine.plan import make_plan
from tf2hf.verify.references import electra as reference
from tf2hf.engine.registry import get_family, select

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
transformers.utils.logging.set_verbosity_error()

# (fixture, tower) -> (class, {name in tf_outputs.npz: name of our output})
CASES = {
    ("electra_pretrain", "discriminator"): ("ElectraForPreTraining", {"discriminator_sequence_output": "sequence_output", "discriminator_logits": "logits"}),
    ("electra_pretrain", "generator"): ("ElectraForMaskedLM", {"generator_sequence_output": "sequence_output", "generator_mlm_logits": "logits"}),
    ("electra_untied", "discriminator"): ("ElectraForPreTraining", {"discriminator_sequence_output": "sequence_output", "discriminator_logits": "logits"}),
    ("electra_untied", "generator"): ("ElectraForMaskedLM", {"generator_sequence_output": "sequence_output", "generator_mlm_logits": "logits"}),
    ("electra_chunk", None): ("ElectraForTokenClassification", {"sequence_output": "sequence_output", "tagger_logits": "logits"}),
}


def run_model(folder, npz):
    """The converted folder loaded as a user would; outputs on TF's inputs (MLM logits gathered
    at TF's positions, in upstream's order)."""
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
        sequence = model.electra(**args).last_hidden_state.numpy()
        logits = model(**args).logits.numpy()
    if cls.__name__ == "ElectraForMaskedLM":
        rows = np.arange(2)[:, None]
        logits = logits[rows, npz["positions"]].reshape(-1, logits.shape[-1])
    return {"sequence_output": sequence, "logits": logits}


def reference_outputs(src, tower, config):
    inputs = {k: np.load(src / "tf_outputs.npz")[k] for k in ("input_ids", "input_mask", "token_type_ids", "positions")}
    with open_checkpoint(src) as ckpt:
        get = ckpt.read
        if tower == "generator":
            out = reference.forward_generator(get, config, inputs, gelu="erf", heads=frozenset({"mlm"}))
            return {"sequence_output": out["sequence_output"], "logits": out["mlm_logits"]}
        head = "tagger" if tower is None else "discriminator"
        out = reference.forward_discriminator(get, config, inputs, gelu="erf", heads=frozenset({head}))
        return {"sequence_output": out["sequence_output"], "logits": out[f"{head}_logits"]}


@pytest.mark.parametrize("name,tower", sorted(CASES, key=str))
def test_towers_match_tensorflow_and_the_reference(name, tower, tmp_path):
    src = fixture(name)
    cls, names = CASES[(name, tower)]
    result = convert("electra", tf=src, out=tmp_path / "out", tower=tower)
    assert result.target_class == cls and result.verification["passed"]
    npz = np.load(src / "tf_outputs.npz")
    got = run_model(tmp_path / "out", npz)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    ref = reference_outputs(src, tower, config)
    for tf_name, ours in names.items():
        assert np.max(np.abs(got[ours] - npz[tf_name])) <= 1e-5, (tf_name, np.max(np.abs(got[ours] - npz[tf_name])))
        assert np.max(np.abs(ref[ours] - npz[tf_name])) <= 1e-5, tf_name  # the reference itself is right
        assert np.max(np.abs(got[ours] - ref[ours])) <= 1e-5, tf_name


def test_generator_sizes_come_from_its_shapes(tmp_path):
    result = convert("electra", tf=fixture("electra_pretrain"), out=tmp_path / "out", tower="generator", verify=False)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    # The config is the discriminator's (hidden 16, 4 heads); the generator is 12 wide, 48 inner,
    # and upstream gives it max(1, 12 // 64) = 1 head.
    assert (config["hidden_size"], config["intermediate_size"], config["num_attention_heads"], config["embedding_size"]) == (12, 48, 1, 8)
    assert config["architectures"] == ["ElectraForMaskedLM"] and "temperature" not in config
    assert any("1 attention head(s) = max(1, 12 // 64)" in n for n in result.notes)


def test_a_generator_config_gives_the_generator_heads(tmp_path):
    # ymcui-style: one config per tower; this one's hidden_size is the generator's (12, not 16).
    config = dict(json.loads((fixture("electra_pretrain") / "electra_config.json").read_text()), hidden_size=12, num_attention_heads=3)
    (tmp_path / "generator_config.json").write_text(json.dumps(config))
    result = convert("electra", tf=fixture("electra_pretrain"), config=tmp_path / "generator_config.json", tower="generator", dry_run=True)
    assert hf_config_for(result.plan, {"gelu": "erf", "dtype": "float32", "config_label": "c"})["num_attention_heads"] == 3
    assert any("3 attention head(s) = from the config, whose hidden_size is the generator's" in n for n in result.notes)


def test_generator_heads_matter(tmp_path):
    """Negative control: the same weights read with the discriminator's 4 heads are measurably off."""
    src = fixture("electra_pretrain")
    convert("electra", tf=src, out=tmp_path / "out", tower="generator", verify=False)
    path = tmp_path / "out" / "config.json"
    config = json.loads(path.read_text())
    config["num_attention_heads"] = 4
    path.write_text(json.dumps(config))
    npz = np.load(src / "tf_outputs.npz")
    got = run_model(tmp_path / "out", npz)
    assert np.max(np.abs(got["sequence_output"] - npz["generator_sequence_output"])) > 1e-3


def test_embedding_size_is_taken_from_shapes(tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(fixture("electra_pretrain"), src)
    assert "embedding_size" not in json.loads((src / "electra_config.json").read_text())
    result = convert("electra", tf=src, out=tmp_path / "a", tower="discriminator", verify=False)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["embedding_size"] == 8
    config = json.loads((src / "electra_config.json").read_text())
    config["embedding_size"] = 128  # transformers' default, wrong here
    (src / "electra_config.json").write_text(json.dumps(config))
    result = convert("electra", tf=src, out=tmp_path / "b", tower="discriminator")
    assert result.verification["passed"]
    assert any(n.startswith("embedding_size: config says 128, using 8 from the checkpoint") for n in result.notes)


def test_projection_only_where_widths_differ(tmp_path):
    from safetensors import safe_open

    def keys(name, tower):
        out = tmp_path / f"{name}-{tower}"
        convert("electra", tf=fixture(name), out=out, tower=tower, verify=False)
        with safe_open(str(out / "model.safetensors"), "np") as f:
            return set(f.keys())

    assert "electra.embeddings_project.weight" in keys("electra_pretrain", "discriminator")  # E 8, H 16
    assert "electra.embeddings_project.weight" in keys("electra_pretrain", "generator")  # E 8, H 12
    assert not any("embeddings_project" in k for k in keys("electra_untied", "discriminator"))  # E == H
    assert not any("embeddings_project" in k for k in keys("electra_untied", "generator"))  # own embeddings at H


def test_drops_the_other_tower_slots_and_temperature():
    result = convert("electra", tf=fixture("electra_pretrain"), tower="discriminator", dry_run=True)
    plan = result.plan
    kinds = {d.name: d.kind for d in plan.dropped}
    assert kinds["temperature"] == "bookkeeping" and kinds["global_step"] == "bookkeeping"
    assert kinds["generator/encoder/layer_0/attention/self/query/kernel"] == "other tower"
    assert kinds["generator_predictions/output_bias"] == "other tower"
    assert kinds["electra/encoder/layer_1/output/dense/kernel/adam_v"] == "optimizer slot"
    assert any("temperature" in n for n in result.notes)


def test_untied_generator_discards_the_discriminator_embeddings():
    result = convert("electra", tf=fixture("electra_untied"), tower="generator", dry_run=True)
    assert sorted(n for n, _ in result.discarded) == [
        "electra/embeddings/LayerNorm/beta", "electra/embeddings/LayerNorm/gamma", "electra/embeddings/position_embeddings",
        "electra/embeddings/token_type_embeddings", "electra/embeddings/word_embeddings",
    ]
    assert all("has its own embeddings" in why for _, why in result.discarded)


# --- choosing the tower ------------------------------------------------------------------------


def test_missing_tower_on_a_two_tower_checkpoint_lists_both(tmp_path):
    src = fixture("electra_pretrain")
    result = CliRunner().invoke(app, ["convert", "electra", "--tf", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {src / 'model.ckpt-20'}: this electra checkpoint holds 2 models (discriminator, generator); "
        "choose one with --tower discriminator or --tower generator\n"
    )
    assert not (tmp_path / "out").exists()


def test_auto_asks_for_the_tower_too():
    with open_checkpoint(fixture("electra_pretrain")) as ckpt:
        with pytest.raises(FamilyError, match=r"holds 2 models \(discriminator, generator\)"):
            select("auto", ckpt.variables, None, "x")
        assert select("auto", ckpt.variables, "generator", "x").name == "electra_generator"
    with open_checkpoint(fixture("electra_chunk")) as ckpt:
        assert select("auto", ckpt.variables, None, "x").name == "electra"  # one tower: nothing to choose


def test_a_tower_the_checkpoint_lacks(tmp_path):
    with pytest.raises(FamilyError, match=r'tower="generator" is not available for this checkpoint .*; choices: discriminator$'):
        convert("electra", tf=fixture("electra_chunk"), out=tmp_path / "out", tower="generator")


def test_cli_converts_a_tower(tmp_path):
    result = CliRunner().invoke(app, ["convert", "auto", "--tf", str(fixture("electra_untied")), "--tower", "generator",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "ElectraForMaskedLM" in result.stdout and "passed" in result.stdout


def test_generator_with_a_tanh_gelu_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"ElectraForMaskedLM always applies the erf GELU"):
        convert("electra", tf=fixture("electra_pretrain"), out=tmp_path / "out", tower="generator", gelu="tanh")
    assert not (tmp_path / "out").exists()


# --- fine-tuned heads ------------------------------------------------------------------------


@dataclass
class Var:
    shape: tuple
    dtype: str = "float32"
    size: int = 0


@pytest.fixture(scope="module")
def chunk_vars():
    with open_checkpoint(fixture("electra_chunk")) as ckpt:
        return {n: Var(tuple(i.shape), i.dtype) for n, i in ckpt.variables.items() if not n.startswith("task_specific/")}


@pytest.mark.parametrize("task,why", [
    ("mnli", "a classification or regression head of ELECTRA's run_finetuning.py"),
    ("sts", "a classification or regression head of ELECTRA's run_finetuning.py"),
    ("squad", "a question-answering head of ELECTRA's run_finetuning.py"),
])
def test_finetuned_heads_without_an_exact_class_are_refused(chunk_vars, task, why):
    variables = dict(chunk_vars)
    variables[f"task_specific/{task}/dense/kernel"] = Var((16, 3))
    variables[f"task_specific/{task}/dense/bias"] = Var((3,))
    variables[f"task_specific/{task}/dense/bias/adam_m"] = Var((3,))  # slots are not listed
    with pytest.raises(UnsupportedModelError) as err:
        make_plan(get_family("electra"), variables, {"num_attention_heads": 4}, source="x", config_label="c")
    assert str(err.value).startswith(f"x: task_specific/{task}/dense/bias, task_specific/{task}/dense/kernel: {why}")


def test_chunk_tagger_labels_come_from_the_head_shape(tmp_path):
    convert("electra", tf=fixture("electra_chunk"), out=tmp_path / "out", verify=False)
    config = transformers.AutoConfig.from_pretrained(str(tmp_path / "out"))
    assert config.num_labels == 5 and type(config).__name__ == "ElectraConfig"


def test_encoder_only_checkpoint_becomes_electra_model(chunk_vars):
    plan = make_plan(get_family("electra"), chunk_vars, {"num_attention_heads": 4}, source="x", config_label="c")
    assert plan.target.cls == "ElectraModel"


# --- the table against transformers ------------------------------------------------------------


@pytest.mark.parametrize("name,tower", sorted(CASES, key=str))
def test_planned_keys_are_the_transformers_state_dict(name, tower):
    src = fixture(name)
    with open_checkpoint(src) as ckpt:
        family = select("electra", ckpt.variables, tower, str(src))
        config_path = src / "electra_config.json"
        plan = make_plan(family, ckpt.variables, json.loads(config_path.read_text()), source=str(src), config_label=str(config_path))
    accounted = {s for t in plan.tensors for s in t.sources} | {d.name for d in plan.dropped} | {n for n, _ in plan.discarded}
    assert accounted == set(plan.variables)
    config = hf_config_for(plan, {"gelu": "erf", "dtype": "float32", "config_label": str(config_path)})
    with torch.device("meta"):
        model = getattr(transformers, plan.target.cls)(transformers.AutoConfig.for_model(**config))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    planned = {t.key: t.shape for t in plan.tensors}
    assert set(planned) | set(plan.tied) == set(expected)
    for key, shape in planned.items():
        assert expected[key] == shape, key
