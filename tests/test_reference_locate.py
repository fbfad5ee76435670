"""The references find the checkpoint's variables themselves, so a wrong rename is caught.

The engine reads Keras-style LayerNorm names (``layer_normalization_N``) and hub prefixes
(``module/``) through its rename rules. Verification must not borrow that reading: if a rename
placed the wrong variable, a reference fed through it would compute the same wrong graph and
agree. Here a family whose renames swap two LayerNorms still plans (all shapes fit) and
converts with ``verify=False``; with verification the conversion fails and writes nothing.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import tf2hf.api
from support import fixture
from tf2hf import convert
from tf2hf.engine.registry import families
from tf2hf.engine.table import Rename
from tf2hf.errors import VerificationError
from tf2hf.verify.references.locate import Ambiguous, Layout, Missing, locate

MESSAGE = re.compile(
    r"\S+: the converted model differs from the TF graph by (?P<diff>[0-9.e+-]+) in \w+ "
    r"\(tolerance 0\.0001\); nothing was written\. "
    # A difference this large is no GELU mix-up, and the message says so (issue 14).
    r"(?:If the model was trained with the other GELU formula, try (?:--gelu |gelu=\")(erf|tanh)\"?"
    r"|That is more than the GELU formula changes \(about 1e-3 at most\); please report it)"
)

ATTENTION_LN = "bert/encoder/layer_0/attention/output/layer_normalization_1"
OUTPUT_LN = "bert/encoder/layer_0/output/layer_normalization_2"

# Read each of layer 0's two LayerNorms as the other one (same shapes, different place).
SWAP = (
    Rename(f"{ATTENTION_LN}/(gamma|beta)", r"bert/encoder/layer_0/output/LayerNorm/\1", "swap (test)"),
    Rename(f"{OUTPUT_LN}/(gamma|beta)", r"bert/encoder/layer_0/attention/output/LayerNorm/\1", "swap (test)"),
)


def test_a_wrong_rename_fails_verification(tmp_path, monkeypatch):
    src = fixture("bert_keras_names")
    family = families()["bert"]
    broken = dataclasses.replace(family, renames=(*SWAP, *family.renames))
    monkeypatch.setattr(tf2hf.api, "select", lambda *args, **kwargs: broken)

    plan = convert("bert", tf=src, dry_run=True).plan
    sources = {t.key: t.sources[0] for t in plan.tensors}
    assert sources["bert.encoder.layer.0.attention.output.LayerNorm.weight"] == f"{OUTPUT_LN}/gamma"

    unverified = convert("bert", tf=src, out=tmp_path / "unverified", verify=False)
    assert (tmp_path / "unverified" / "model.safetensors").exists() and unverified.verification is None

    with pytest.raises(VerificationError) as caught:
        convert("bert", tf=src, out=tmp_path / "out")
    match = MESSAGE.fullmatch(str(caught.value))
    assert match, str(caught.value)
    assert float(match.group("diff")) > 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unverified"]


def test_the_intact_keras_table_passes(tmp_path):
    result = convert("bert", tf=fixture("bert_keras_names"), out=tmp_path / "out")
    assert result.verification["passed"] and result.verification["worst"] < 1e-5


def missing_forward(get, config, inputs, *, gelu, heads):
    """A reference (without a LAYOUT, like a plugin's) that needs a variable no checkpoint has."""
    get("bert/encoder/layer_0/attention/self/query/kernel")  # found: the default layout finds the root
    return {"x": get("bert/nowhere/kernel")}


def test_a_variable_the_reference_cannot_find_fails_verification(tmp_path, monkeypatch):
    src = fixture("bert_slots_zoo")  # everything under module/
    broken = dataclasses.replace(families()["bert"], reference=f"{__name__}:missing_forward")
    monkeypatch.setattr(tf2hf.api, "select", lambda *args, **kwargs: broken)
    source = convert("bert", tf=src, dry_run=True).source
    with pytest.raises(VerificationError) as caught:
        convert("bert", tf=src, out=tmp_path / "out")
    assert str(caught.value) == (
        f"{source}: the reference graph cannot find its variables in the checkpoint (no bert/nowhere/kernel); convert with verify=False"
    )
    assert not (tmp_path / "out").exists()


# --- the locator on its own ---------------------------------------------------------------------

BERT = Layout(anchors=("bert/embeddings/word_embeddings",))


def _reader(names):
    values = {name: np.full((2,), float(i)) for i, name in enumerate(names)}

    def read(name):
        return values[name]

    return values, read


def test_the_root_scope_is_found_from_the_anchor_and_heads_may_sit_outside_it():
    names = ["module/bert/embeddings/word_embeddings", "module/bert/pooler/dense/kernel", "output_weights", "global_step"]
    values, read = _reader(names)
    get = locate(BERT, names, read)
    assert get.root == "module/"
    assert get("bert/pooler/dense/kernel") is values["module/bert/pooler/dense/kernel"]
    assert get("output_weights") is values["output_weights"]
    with pytest.raises(Missing):
        get("bert/pooler/dense/bias")


def test_a_suffix_is_part_of_the_layout():
    names = ["encoder/layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE"]
    values, read = _reader(names)
    get = locate(Layout(anchors=("layer_with_weights-0/embeddings",), suffix="/.ATTRIBUTES/VARIABLE_VALUE"), names, read)
    assert get("layer_with_weights-0/embeddings") is values[names[0]]


def test_two_roots_are_refused():
    names = ["bert/embeddings/word_embeddings", "module/bert/embeddings/word_embeddings"]
    with pytest.raises(Ambiguous, match="several copies"):
        locate(BERT, names, _reader(names)[1])


def test_keras_layer_norms_are_found_in_the_scope_the_graph_puts_them():
    names = [
        "bert/embeddings/word_embeddings",
        "bert/embeddings/layer_normalization/gamma",
        "bert/encoder/layer_0/attention/output/layer_normalization_2/gamma",
        "bert/encoder/layer_0/output/layer_normalization_1/gamma",
        "bert/encoder/layer_0/output/layer_normalization_1/gamma/adam_m",
    ]
    values, read = _reader(names)
    get = locate(BERT, names, read)
    assert get("bert/embeddings/LayerNorm/gamma") is values[names[1]]
    # The scope decides, not the counter's order.
    assert get("bert/encoder/layer_0/attention/output/LayerNorm/gamma") is values[names[2]]
    assert get("bert/encoder/layer_0/output/LayerNorm/gamma") is values[names[3]]
    with pytest.raises(Missing):
        get("bert/encoder/layer_0/output/LayerNorm/beta")


def test_two_keras_layer_norms_in_one_scope_are_not_guessed():
    names = ["bert/embeddings/word_embeddings", "bert/embeddings/layer_normalization/gamma", "bert/embeddings/layer_normalization_7/gamma"]
    get = locate(BERT, names, _reader(names)[1])
    with pytest.raises(Ambiguous, match="2 LayerNorms"):
        get("bert/embeddings/LayerNorm/gamma")
