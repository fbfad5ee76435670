"""``tf2hf inspect``: figures checked against sums computed here, independently of tf2hf.

The references are TensorFlow's own listing of a checkpoint (``tf.train.list_variables``) or
the ``*.VARS.txt`` listing published beside the real indexes, grouped with name patterns
written out in this file, and hand-computed parameter counts from the model sizes.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import ROOT, fixture, shared
import tf2hf
from tf2hf.cli import app

runner = CliRunner()
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int32": 4, "int64": 8}
SLOT = re.compile(r".+/(adam_m|adam_v|lamb_m|lamb_v|Adam|Adam_1|Momentum|Adagrad)|(.+/)?beta[12]_power")
BOOKKEEPING = re.compile(r"(.+/)?(global_step|current_loss_scale|good_steps)")
CHINESE = "pyxz-google_chinese_L-12_H-768_A-12"


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


def vars_txt(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) from a published ``*.VARS.txt`` (tab-separated)."""
    listing = {}
    for line in path.read_text().splitlines():
        name, shape, dtype = line.split("\t")
        listing[name] = (tuple(json.loads(shape)), dtype)
    return listing


def tf_listing(tf, folder: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    reader = tf.train.load_checkpoint(str(folder))
    dtypes = reader.get_variable_to_dtype_map()
    return {name: (tuple(shape), dtypes[name].name) for name, shape in tf.train.list_variables(str(folder))}


def numel(shape) -> int:
    return math.prod(shape)


def group_sum(listing, pattern: str) -> tuple[int, int]:
    """(variables, parameters) of the weights (not slots, not bookkeeping) matching ``pattern``."""
    hits = [shape for name, (shape, _) in listing.items() if re.fullmatch(pattern, name) and not SLOT.fullmatch(name) and not BOOKKEEPING.fullmatch(name)]
    return len(hits), sum(numel(s) for s in hits)


def groups_of(report) -> dict[str, tuple[int, int]]:
    return {g.name: (g.variables, g.parameters) for g in report.groups}


def test_chinese_bert_base_index_only():
    folder = shared("real-index", CHINESE)
    report = tf2hf.inspect_checkpoint(folder)
    listing = vars_txt(folder / "bert_model.ckpt.VARS.txt")

    # Hand-computed from the sizes: V=21128, H=768, I=3072, P=512, T=2, L=12.
    V, H, I, P, T, L = 21128, 768, 3072, 512, 2, 12
    embeddings = V * H + P * H + T * H + 2 * H
    layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    pooler = H * H + H
    mlm = H * H + H + 2 * H + V
    nsp = 2 * H + 2
    assert embeddings + L * layer + pooler == 102_267_648  # BertModel: the "~102M" of model cards
    assert report.base_parameters == embeddings + L * layer + pooler
    assert report.model_parameters == embeddings + L * layer + pooler + mlm + nsp == 102_882_442
    assert report.converted_parameters == 102_882_442 and report.target_class == "BertForPreTraining"

    # Every group against the published listing; groups add up to the listing's total.
    expected = {
        "embeddings": group_sum(listing, r"bert/embeddings/.+"),
        "pooler": group_sum(listing, r"bert/pooler/.+"),
        "head: masked-LM head": group_sum(listing, r"cls/predictions/.+"),
        "head: next-sentence head": group_sum(listing, r"cls/seq_relationship/.+"),
        **{f"encoder layer {i}": group_sum(listing, rf"bert/encoder/layer_{i}/.+") for i in range(12)},
    }
    assert groups_of(report) == expected
    assert expected["encoder layer 7"] == (16, layer)
    total = sum(numel(shape) for shape, _ in listing.values())
    assert report.parameters == sum(g.parameters for g in report.groups) == total
    assert report.variables == sum(g.variables for g in report.groups) == len(listing)
    assert report.bytes == sum(numel(s) * ITEMSIZE[d] for s, d in listing.values())
    assert report.dtypes == {"float32": 206}
    assert report.shards == 1 and report.shards_present == 0 and report.data_on_disk == 0
    assert report.ratio == pytest.approx((report.index_bytes + 4 * total) / (4 * total))
    assert report.heads == ["masked-LM head", "next-sentence head"]


def test_chinese_bert_cli_text_json_and_layers():
    folder = shared("real-index", CHINESE)
    result = runner.invoke(app, ["inspect", str(folder)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "converts to BertForPreTraining: 206 tensors, 102,882,442 parameters" in out
    assert re.search(r"encoder layers 0…11 +192 +85,054,464 .*12 × 7,087,872", out)
    assert "of which base model (embeddings, encoder, pooler) 102,267,648" in out
    assert re.search(r"^total +206 +102,882,442 ", out, re.M)

    layers = runner.invoke(app, ["inspect", str(folder), "--layers"]).stdout
    assert len(re.findall(r"^encoder layer \d+ +16 +7,087,872 ", layers, re.M)) == 12

    data = json.loads(runner.invoke(app, ["inspect", str(folder), "--json"]).stdout)
    assert data["model_parameters"] == 102_882_442 and data["family"] == "bert"
    assert sum(g["parameters"] for g in data["groups"]) == data["parameters"]


def test_inspect_imports_neither_torch_nor_transformers():
    code = (
        "import sys; from typer.testing import CliRunner; from tf2hf.cli import app; "
        f"r = CliRunner().invoke(app, ['inspect', {str(ROOT / 'fixtures' / 'bert_pretrain')!r}]); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'transformers', 'tensorflow', 'safetensors') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.tf
def test_slots_zoo_groups_match_tensorflow_listing(tf):
    folder = fixture("bert_slots_zoo")
    listing = tf_listing(tf, folder)
    report = tf2hf.inspect_checkpoint(folder)
    found = groups_of(report)
    assert found["embeddings"] == group_sum(listing, r"module/bert/embeddings/.+")
    assert found["encoder layer 0"] == group_sum(listing, r"module/bert/encoder/layer_0/.+")
    assert found["encoder layer 1"] == group_sum(listing, r"module/bert/encoder/layer_1/.+")
    assert found["pooler"] == group_sum(listing, r"module/bert/pooler/.+")
    assert found["head: classifier head (run_classifier)"] == group_sum(listing, r"output_(weights|bias)")
    for kind in ("adam_m", "adam_v", "lamb_m", "lamb_v", "Adam", "Adam_1", "Momentum", "Adagrad"):
        hits = [s for n, (s, _) in listing.items() if n.endswith("/" + kind)]
        assert found[f"optimizer: {kind}"] == (len(hits), sum(numel(s) for s in hits)), kind
    assert found["optimizer: beta1_power"] == (1, 1) and found["optimizer: beta2_power"] == (1, 1)
    assert found["bookkeeping"] == (3, 3)  # global_step, current_loss_scale, good_steps
    assert report.parameters == sum(numel(s) for s, _ in listing.values())
    assert report.bytes == sum(numel(s) * ITEMSIZE[d] for s, d in listing.values())
    assert report.dtypes == {"float32": 160, "int64": 2}
    data_file = folder / "model.ckpt-1.data-00000-of-00001"
    assert report.data_bytes == report.data_on_disk == data_file.stat().st_size


@pytest.mark.tf
def test_albert_groups_and_adam_ratio(tf):
    folder = fixture("albert_pretrain_g2i2")
    listing = tf_listing(tf, folder)
    report = tf2hf.inspect_checkpoint(folder)
    found = groups_of(report)
    for g in (0, 1):
        assert found[f"encoder group {g}"] == group_sum(listing, rf"bert/encoder/transformer/group_{g}/.+")
    assert found["projection"] == group_sum(listing, r"bert/encoder/embedding_hidden_mapping_in/.+")
    assert found["head: sentence-order head"] == group_sum(listing, r"cls/seq_relationship/.+")
    assert report.parameters == sum(numel(s) for s, _ in listing.values())
    weights = sum(numel(s) * 4 for n, (s, _) in listing.items() if not SLOT.fullmatch(n) and not BOOKKEEPING.fullmatch(n))
    on_disk = sum(p.stat().st_size for p in folder.glob("model.ckpt-1.*"))
    assert report.ratio == pytest.approx(on_disk / weights)
    assert 3.0 < report.ratio < 3.5  # weights + two Adam moments + index


def test_real_index_fine_tuned_with_adam_is_about_three_times_the_model():
    folder = shared("real-index", "heytgala-bert_tiny_pretrain_step20")
    report = tf2hf.inspect_checkpoint(folder)
    (listing_file,) = folder.glob("*.VARS.txt")
    listing = vars_txt(listing_file)
    assert report.parameters == sum(numel(s) for s, _ in listing.values())
    slots = sum(numel(s) for n, (s, _) in listing.items() if SLOT.fullmatch(n))
    assert report.optimizer_parameters == slots
    assert 2.9 < report.ratio < 3.2


def test_non_bert_checkpoint_is_grouped_without_a_family():
    folder = shared("real", "t2t-2shard-nonbert")
    report = tf2hf.inspect_checkpoint(folder)
    listing = vars_txt(folder / "model.ckpt-1.VARS.txt")
    assert report.family is None and report.target_class is None
    assert "matches no known family" in report.problems[0]
    found = groups_of(report)
    assert found["unmapped: transformer"] == group_sum(listing, r"transformer/.+")
    assert report.parameters == sum(numel(s) for s, _ in listing.values())
    assert report.dtypes == {"float32": 248, "int32": 1, "int64": 1}
    assert report.shards == report.shards_present == 2
    result = runner.invoke(app, ["inspect", str(folder)])
    assert result.exit_code == 0 and "family:     none recognised" in result.stdout


def test_squad_pooler_is_listed_but_not_converted():
    report = tf2hf.inspect_checkpoint(fixture("bert_squad"))
    pooler = next(g for g in report.groups if g.name == "pooler")
    assert pooler.variables == 2 and not pooler.converted
    assert report.target_class == "BertForQuestionAnswering"
    assert report.converted_parameters == report.model_parameters - pooler.parameters


def test_missing_checkpoint_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(f"error: {tmp_path / 'nope'}")


@pytest.mark.tf
@pytest.mark.parametrize("name", sorted(p.parent.name for p in (ROOT / "fixtures").glob("*/*.index")))
def test_every_fixture_groups_add_up_to_tensorflow_listing(tf, name):
    """Whatever the family (or none), every variable lands in exactly one group."""
    folder = ROOT / "fixtures" / name
    listing = tf_listing(tf, folder)
    report = tf2hf.inspect_checkpoint(folder)
    assert sum(g.variables for g in report.groups) == len(listing)
    assert sum(g.parameters for g in report.groups) == sum(numel(s) for s, _ in listing.values())
    weights = [g for g in report.groups if g.kind in ("model", "head")]
    assert report.model_parameters == sum(g.parameters for g in weights)
    if report.target_class:  # what converts comes from the weights, never from slots
        assert not any(g.converted for g in report.groups if g.kind in ("optimizer", "bookkeeping"))
