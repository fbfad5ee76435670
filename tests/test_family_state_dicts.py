"""Every family's tables against transformers: for each registered family (built-in or plugin)
and each class it can write, the plan of a checkpoint holding that class's parts has exactly the
keys and shapes of the class's ``state_dict()``, less the keys the family declares tied.

The expected side is transformers' own model, built from the config the family writes; the
actual side is :func:`~tf2hf.engine.plan.make_plan` run on a synthetic variable list. That list
takes its names from the rules' sources (the input a checkpoint would give) and its shapes from
how TF stores each transform's operand, written out below: a misspelt target key, a shape in the
wrong order or a transform that yields the wrong shape fails here.
"""

from __future__ import annotations

import itertools
import re
from support import Var

import pytest

from tf2hf.api import hf_config_for
from tf2hf.engine.plan import make_plan
from tf2hf.engine.registry import families

# Tiny sizes, all different where a transposition must show (E != H: ALBERT and ELECTRA keep
# their projections; two groups of two inner layers: ALBERT's loops are expanded).
SIZES = {
    "V": 30, "E": 4, "H": 8, "P": 12, "T": 2, "I": 16, "L": 2, "C": 3, "N": 2, "G": 2, "J": 2,
    "EW": 4, "HG": 6, "IG": 12, "LG": 2, "HD": 8,
}
HEADS = 2
OTHER = 4  # a plugin's own size symbols


def size(symbol):
    return symbol if isinstance(symbol, int) else SIZES.get(symbol, OTHER)


def source_shapes(op, target, sources):
    """The shapes TF stores for the operands of ``op`` yielding ``target`` (how each layout
    keeps its kernels: docs/MAPPING.md), independent of the tables' own shape checks."""
    if op == "copy":
        return [target]
    if op == "transpose":  # TF dense kernels are [in, out]
        return [target[::-1]]
    if op == "matmul":  # brightmart's factorised word embeddings [V, E] x [E, H]
        return [(target[0], SIZES["E"]), (SIZES["E"], target[1])]
    if op == "merge_out_transpose":  # TF2 q/k/v kernels [in, heads, head_dim]
        return [(target[1], HEADS, target[0] // HEADS)]
    if op == "merge_in_transpose":  # TF2 attention output kernel [heads, head_dim, out]
        return [(HEADS, target[1] // HEADS, target[0])]
    if op == "flatten":  # TF2 q/k/v biases [heads, head_dim]
        return [(HEADS, target[0] // HEADS)]
    if op in ("eye", "zeros"):
        return []
    raise AssertionError(f"no TF layout known for transform {op!r} (sources {sources}): add it to source_shapes")


PLACEHOLDER = re.compile(r"\{(\w+)(?:\+(\d+))?\}")


def expand(template, loops):
    """Every name a template stands for: loop letters over their sizes, ``{L+4}`` resolved."""
    letters = sorted({m.group(1) for m in PLACEHOLDER.finditer(template) if m.group(1) in loops})
    for values in itertools.product(*(range(SIZES[loops[letter]]) for letter in letters)):
        index = dict(zip(letters, values))

        def fill(match):
            name, plus = match.group(1), int(match.group(2) or 0)
            return str((index[name] if name in index else SIZES[name]) + plus)

        yield PLACEHOLDER.sub(fill, template)


def synthetic_variables(family, target):
    """The variables of a checkpoint that holds exactly the parts of ``target``."""
    variables = {}
    for part in family.parts:
        if part.name not in target.parts:
            continue
        for rule in part.rules:
            shape = tuple(size(d) for d in rule.shape)
            for source, source_shape in zip(rule.sources, source_shapes(rule.op, shape, rule.sources)):
                for name in expand(source, family.loops):
                    variables[name] = Var(source_shape)
    return variables


def tf_config(family):
    config = {dim.config_key: SIZES.get(dim.symbol, OTHER) for dim in family.dims if dim.config_key}
    config.setdefault("num_attention_heads", HEADS)
    return config


CASES = [
    pytest.param(family, target, id=f"{name}-{index}-{target.cls}")
    for name, family in families().items()
    for index, target in enumerate(family.targets)
]


@pytest.mark.parametrize(("family", "target"), CASES)
def test_planned_keys_and_shapes_are_the_transformers_state_dict(family, target):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    # A class ``auto`` never picks (a per-token head stores what a sequence head stores) is asked for by its task.
    task = None if target.auto else target.task
    plan = make_plan(family, synthetic_variables(family, target), tf_config(family), source="ckpt", config_label="cfg.json", task=task)
    assert plan.target == target
    config = hf_config_for(plan, {"gelu": family.default_gelu, "dtype": "float32", "config_label": "cfg.json"})
    with torch.device("meta"):
        model = getattr(transformers, target.cls)(transformers.AutoConfig.for_model(**config))
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    planned = {t.key: t.shape for t in plan.tensors}
    assert not set(planned) & set(plan.tied)
    assert sorted(set(expected) - set(planned) - set(plan.tied)) == [], "transformers keys the plan leaves unfilled"
    assert sorted((set(planned) | set(plan.tied)) - set(expected)) == [], "planned or tied keys transformers does not have"
    assert {key: shape for key, shape in planned.items() if expected[key] != shape} == {}, "planned shapes transformers does not have"
