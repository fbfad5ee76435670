"""Verification catches the silent mistakes a shape check cannot see.

Each test breaks one rule of a family's table — a square kernel copied instead of transposed,
query and key swapped, a LayerNorm's gamma and beta swapped, ALBERT's two LayerNorms swapped —
and converts a fixture with the broken table. Every broken table still plans (all shapes fit)
and converts with ``verify=False``; with verification (the default) the conversion fails with
:class:`VerificationError` and writes nothing. The intact table passes on the same fixture, so
the failures come from the broken rule alone.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import pytest

import tf2hf.api
from support import edit_rules, fixture
from tf2hf import convert
from tf2hf.tfckpt import open_checkpoint
from tf2hf.errors import VerificationError
from tf2hf.engine.plan import make_plan
from tf2hf.engine.registry import families
from tf2hf.sources import load_config
from tf2hf.engine.table import Family, Rule

LAYER0 = "bert/encoder/layer_0"


def _find(rules: list[Rule], target_suffix: str) -> int | None:
    hits = [i for i, r in enumerate(rules) if r.target.endswith(target_suffix)]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def copy_instead_of_transpose(suffix: str) -> Callable[[list[Rule]], None]:
    """The classic missing transpose: for a square kernel the shape is the same either way."""

    def edit(rules: list[Rule]) -> None:
        i = _find(rules, suffix)
        if i is not None:
            assert rules[i].op == "transpose"
            rules[i] = dataclasses.replace(rules[i], op="copy")

    return edit


def swap_sources(suffix_a: str, suffix_b: str) -> Callable[[list[Rule]], None]:
    """Two rules fed from each other's variable (same shapes, different meaning)."""

    def edit(rules: list[Rule]) -> None:
        a, b = _find(rules, suffix_a), _find(rules, suffix_b)
        if a is None and b is None:
            return
        assert a is not None and b is not None
        rules[a], rules[b] = (
            dataclasses.replace(rules[a], sources=rules[b].sources),
            dataclasses.replace(rules[b], sources=rules[a].sources),
        )

    return edit


BROKEN = {
    "bert": [
        ("query kernel not transposed", copy_instead_of_transpose("attention.self.query.weight")),
        ("attention output kernel not transposed", copy_instead_of_transpose("attention.output.dense.weight")),
        ("pooler kernel not transposed", copy_instead_of_transpose("pooler.dense.weight")),
        ("query and key swapped", swap_sources("attention.self.query.weight", "attention.self.key.weight")),
        ("query and key biases swapped", swap_sources("attention.self.query.bias", "attention.self.key.bias")),
        ("LayerNorm gamma and beta swapped", swap_sources("attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias")),
    ],
    "albert": [
        ("LayerNorm and LayerNorm_1 swapped (weights)", swap_sources("attention.LayerNorm.weight", "full_layer_layer_norm.weight")),
        ("LayerNorm and LayerNorm_1 swapped", lambda rules: [
            swap_sources("attention.LayerNorm.weight", "full_layer_layer_norm.weight")(rules),
            swap_sources("attention.LayerNorm.bias", "full_layer_layer_norm.bias")(rules),
        ]),
        ("value kernel not transposed", copy_instead_of_transpose("attention.value.weight")),
        ("query and key swapped", swap_sources("attention.query.weight", "attention.key.weight")),
    ],
}
FIXTURE = {"bert": "bert_pretrain", "albert": "albert_pretrain_g2i2"}
CASES = [(family, name, edit) for family, edits in BROKEN.items() for name, edit in edits]

MESSAGE = re.compile(
    r"(?P<source>\S+): the converted model differs from the TF graph by (?P<diff>[0-9.e+-]+) in (?P<output>\w+) "
    r"\(tolerance 0\.0001\); nothing was written\. (?P<advice>If the model was trained with the other GELU formula, try (?:--gelu |gelu=\")(erf|tanh)\"?"
    r"|That is more than the GELU formula changes \(about 1e-3 at most\); please report it)"
)


def _with_family(monkeypatch, family: Family) -> None:
    """Make tf2hf.convert use ``family`` instead of the registered one."""
    monkeypatch.setattr(tf2hf.api, "select", lambda *args, **kwargs: family)


@pytest.mark.parametrize(("family_name", "name", "edit"), CASES, ids=[f"{f}: {n}" for f, n, _ in CASES])
def test_a_broken_rule_fails_verification(family_name, name, edit, tmp_path, monkeypatch):
    src = fixture(FIXTURE[family_name])
    broken = edit_rules(families()[family_name], edit)
    assert broken != families()[family_name]

    # The plan's shape checks accept the broken table ...
    with open_checkpoint(src) as ckpt:
        config_path = next(src.glob("*config.json"))
        make_plan(broken, ckpt.variables, load_config(config_path), source=str(ckpt.prefix), config_label=str(config_path))

    _with_family(monkeypatch, broken)
    # ... so without verification it would be written, looking fine ...
    unverified = convert(family_name, tf=src, out=tmp_path / "unverified", gelu="tanh", verify=False)
    assert (tmp_path / "unverified" / "model.safetensors").exists() and unverified.verification is None

    # ... and verification refuses it, writing nothing.
    with pytest.raises(VerificationError) as caught:
        convert(family_name, tf=src, out=tmp_path / "out", gelu="tanh")
    match = MESSAGE.fullmatch(str(caught.value))
    assert match, str(caught.value)
    assert float(match.group("diff")) > 1e-3  # not a rounding matter: the graph is different
    # The other --gelu is suggested only for a difference that formula could explain (compare.GELU_GAP).
    assert match.group("advice").startswith("If the model") == (float(match.group("diff")) <= 1e-2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unverified"]


@pytest.mark.parametrize("family_name", sorted(FIXTURE))
def test_the_intact_table_passes_on_the_same_fixture(family_name, tmp_path):
    result = convert(family_name, tf=fixture(FIXTURE[family_name]), out=tmp_path / "out", gelu="tanh")
    assert result.verification["passed"] and result.verification["worst"] < 1e-5
