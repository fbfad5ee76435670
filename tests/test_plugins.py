"""Family tables from other packages, through the ``tf2hf.converters`` entry-point group.

One test installs a real plugin package (pip, from a folder, into a --target directory) and
converts with it; the error cases fake ``importlib.metadata.entry_points``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from support import ROOT, fixture
from tf2hf.engine import registry
from tf2hf.errors import FamilyError

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tf2hf-acme-ner"
version = "1.0.0"
dependencies = ["tf2hf"]

[project.entry-points."tf2hf.converters"]
acme_ner = "tf2hf_acme_ner"

[tool.setuptools]
py-modules = ["tf2hf_acme_ner"]
"""

# The README's example plugin: google-research/bert plus a tagging head ner/dense [H, labels].
MODULE = '''\
"""ACME's BERT tagger: google-research/bert's encoder and a token-classification head."""
from dataclasses import replace

from tf2hf.families import bert
from tf2hf.verify.references.bert import encode
from tf2hf.verify.references.numerics import activation
from tf2hf.verify.references.weights import dense_from
from tf2hf.engine.table import Dim, Output, Part, Target, dense

NER = Part("ner", marker="ner/dense/kernel", label="NER head (ner/dense)",
           rules=dense("ner/dense", "classifier", "H", "C"))

FAMILY = replace(
    bert.FAMILY,
    name="acme_ner",
    description="ACME's BERT tagger: google-research/bert + ner/dense [H, labels]",
    signature=(*bert.FAMILY.signature, "ner/dense/kernel"),
    dims=(*[d for d in bert.FAMILY.dims if d.symbol != "C"], Dim("C", None, shape_of=("ner/dense/kernel", 1))),
    parts=(bert.EMBEDDINGS, bert.ENCODER, bert.POOLER, NER),
    targets=(Target("BertForTokenClassification", frozenset({"embeddings", "encoder", "ner"}), "bert.",
                    outputs=(Output("ner_logits", "logits"),),
                    discards={"pooler": "BertForTokenClassification has no pooler"}),),
    reference="tf2hf_acme_ner:forward",
)


def forward(get, config, inputs, *, gelu, heads):
    """The source graph: BERT's encoder, then ner/dense on every token."""
    sequence_output = encode(get, config, inputs, activation(gelu))
    return {"sequence_output": sequence_output, "ner_logits": dense_from(get, "ner/dense", sequence_output)}
'''

LABELS = 3


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The plugin package, installed by pip from its folder into a directory of its own."""
    base = tmp_path_factory.mktemp("plugin")
    source = base / "tf2hf-acme-ner"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "tf2hf_acme_ner.py").write_text(MODULE)
    site = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(site), str(source)],
        check=True, capture_output=True, cwd=base,
    )
    return site


@pytest.fixture(scope="module")
def ner_checkpoint(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """bert_encoder_only's weights plus ner/dense, saved by TensorFlow; and the logits TF's own
    sequence output gives through that head."""
    tf = pytest.importorskip("tensorflow")
    src = fixture("bert_encoder_only")
    folder = tmp_path_factory.mktemp("ner") / "ckpt"
    folder.mkdir()
    for name in ("bert_config.json", "vocab.txt"):
        (folder / name).write_bytes((src / name).read_bytes())
    reader = tf.train.load_checkpoint(str(src / "model.ckpt-1"))
    values = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}
    rng = np.random.default_rng(5)
    kernel = rng.normal(0, 0.5, (16, LABELS)).astype(np.float32)
    bias = rng.normal(0, 0.1, (LABELS,)).astype(np.float32)
    values.update({"ner/dense/kernel": kernel, "ner/dense/bias": bias})
    tf1 = tf.compat.v1
    graph = tf1.Graph()
    with graph.as_default():
        variables = {n: tf1.Variable(v, name=n) for n, v in values.items()}
        saver = tf1.train.Saver(var_list=variables, save_relative_paths=True)
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            saver.save(session, str(folder / "model.ckpt-9"), write_meta_graph=False)
    npz = np.load(src / "tf_outputs.npz")
    expected = npz["sequence_output"].astype(np.float64) @ kernel + bias
    return folder, npz, expected


@pytest.fixture
def installed(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    registry._registry.cache_clear()
    yield plugin_site
    registry._registry.cache_clear()
    sys.modules.pop("tf2hf_acme_ner", None)


def test_installed_plugin_adds_a_family_and_converts(installed, ner_checkpoint, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tf2hf import convert

    assert "acme_ner" in registry.families() and registry.origin("acme_ner") == "tf2hf-acme-ner"
    assert registry.origin("bert") == "tf2hf"
    folder, npz, expected = ner_checkpoint
    gelu = "tanh" if "tanh" in json.dumps(json.loads((fixture("bert_encoder_only") / "meta.json").read_text()).get("gelu")) else "erf"
    result = convert("acme_ner", tf=folder, out=tmp_path / "out", gelu=gelu)
    assert result.target_class == "BertForTokenClassification" and result.verification["passed"]
    assert [n for n, _ in result.discarded] == ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]
    model, info = transformers.BertForTokenClassification.from_pretrained(str(tmp_path / "out"), output_loading_info=True)
    assert not any(info.values())
    model.eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(npz["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(npz["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(npz["token_type_ids"], dtype=torch.long),
        )
    assert np.max(np.abs(out.logits.numpy() - expected)) <= 1e-5
    assert model.config.num_labels == LABELS


def test_installed_plugin_is_found_in_a_fresh_process_and_listed(plugin_site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), str(ROOT)])}
    out = subprocess.run([sys.executable, "-m", "tf2hf", "architectures"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "acme_ner: ACME's BERT tagger" in text
    assert "from: plugin package tf2hf-acme-ner; convert with: tf2hf convert acme_ner (or auto)" in text
    assert "BertForTokenClassification       heads: NER head (ner/dense)" in text
    # Built-in families are still all listed, each with an example command.
    for name in ("bert", "albert", "electra", "electra_generator", "tf2_bert"):
        assert f"\n{name}: " in "\n" + text
    assert "example: tf2hf convert electra --tower generator" in text


# --- error cases (entry points faked) ---------------------------------------------------------


def fake_entry(name: str, package: str, loaded):
    def load():
        if isinstance(loaded, BaseException):
            raise loaded
        return loaded

    return SimpleNamespace(name=name, value=f"{package.replace('-', '_')}:FAMILY", dist=SimpleNamespace(name=package), load=load)


@pytest.fixture
def fake_entry_points(monkeypatch):
    entries: list = []

    def entry_points(*, group):
        assert group == "tf2hf.converters"
        return list(entries)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry._registry.cache_clear()
    yield entries
    registry._registry.cache_clear()


def renamed(name: str):
    from dataclasses import replace

    from tf2hf.families import bert

    return replace(bert.FAMILY, name=name, description=f"{name} test family")


def test_a_family_object_as_entry_point(fake_entry_points):
    fake_entry_points.append(fake_entry("mine", "pkg-mine", renamed("mine")))
    assert registry.families()["mine"].description == "mine test family"
    assert registry.origin("mine") == "pkg-mine"


def test_duplicate_of_a_builtin_names_both_packages(fake_entry_points):
    fake_entry_points.append(fake_entry("bert", "acme-bert", renamed("bert")))
    with pytest.raises(FamilyError) as err:
        registry.families()
    assert str(err.value) == "family 'bert' is defined twice: by tf2hf and by acme-bert; uninstall one of them (pip uninstall acme-bert)"


def test_duplicate_between_plugins_names_both_packages(fake_entry_points):
    fake_entry_points.append(fake_entry("x", "pkg-one", SimpleNamespace(FAMILY=renamed("twin"))))
    fake_entry_points.append(fake_entry("y", "pkg-two", SimpleNamespace(FAMILIES=(renamed("twin"),))))
    with pytest.raises(FamilyError, match=r"^family 'twin' is defined twice: by pkg-one and by pkg-two; uninstall one of them"):
        registry.families()


def test_broken_plugin_is_named(fake_entry_points):
    fake_entry_points.append(fake_entry("bad", "pkg-bad", ImportError("No module named 'acme_internal'")))
    with pytest.raises(FamilyError, match=r"^plugin bad = pkg_bad:FAMILY \(package pkg-bad\): cannot be imported \(ImportError: No module named 'acme_internal'\); fix or uninstall pkg-bad$"):
        registry.families()


def test_entry_point_without_a_family(fake_entry_points):
    fake_entry_points.append(fake_entry("empty", "pkg-empty", SimpleNamespace()))
    with pytest.raises(FamilyError, match=r"defines neither a tf2hf Family nor a module with FAMILY or FAMILIES"):
        registry.families()


def test_cli_reports_a_plugin_error_in_one_line(fake_entry_points, tmp_path):
    from typer.testing import CliRunner

    from tf2hf.cli import app

    fake_entry_points.append(fake_entry("bert", "acme-bert", renamed("bert")))
    result = CliRunner().invoke(app, ["convert", "auto", "--tf", str(fixture("bert_pretrain")), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: family 'bert' is defined twice: by tf2hf and by acme-bert")
    assert result.stderr.count("\n") == 1
