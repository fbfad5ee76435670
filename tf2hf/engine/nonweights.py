"""Variables that are never model weights, shared by every family (docs/MAPPING.md §1).

A variable is only ever *mapped* when a family's table names it (an allow-list), so these rules
do not protect weights; they decide whether a variable nobody maps is harmless (an optimizer
slot or bookkeeping, dropped and reported) or unknown (an error). Patterns are full matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tf2hf.engine.table import DropRule

OPTIMIZER = "optimizer slot"
BOOKKEEPING = "bookkeeping"

RULES: tuple[DropRule, ...] = (
    # google-research/bert AdamWeightDecay, Google ALBERT's LAMB and ELECTRA name slots so.
    DropRule(r".+/adam_[mv]", OPTIMIZER, "AdamWeightDecay/LAMB moment (adam_m, adam_v)"),
    # brightmart's albert_zh LAMB optimizer.
    DropRule(r".+/lamb_[mv]", OPTIMIZER, "LAMB moment (lamb_m, lamb_v)"),
    # tf.train.AdamOptimizer and friends: <var>/Adam, <var>/Adam_1, <var>/Momentum, ...
    DropRule(r".+/(Adam|Adam_1|Adagrad|AdagradDA|Adadelta|Adadelta_1|Adamax|Adamax_1|Nadam|Nadam_1"
             r"|Ftrl|Ftrl_1|Momentum|RMSProp|RMSProp_1|ProximalAdagrad|LazyAdam|LazyAdam_1"
             r"|AdamWeightDecayOptimizer|AdamWeightDecayOptimizer_1|LAMBOptimizer|LAMBOptimizer_1)",
             OPTIMIZER, "tf.train optimizer slot"),
    DropRule(r"(.+/)?beta[12]_power(_\d+)?", OPTIMIZER, "Adam's running beta powers"),
    DropRule(r"(.+/)?global_step", BOOKKEEPING, "training step counter"),
    DropRule(r"(.+/)?(current_loss_scale|good_steps|loss_scale)", BOOKKEEPING, "mixed-precision loss scaling state"),
    DropRule(r"_CHECKPOINTABLE_OBJECT_GRAPH|save_counter(/.*)?", BOOKKEEPING, "TF2 object-graph bookkeeping"),
)


@dataclass(frozen=True)
class Drop:
    """Why one variable was dropped."""

    name: str
    kind: str
    why: str


def classify(name: str, extra: tuple[DropRule, ...] = ()) -> Drop | None:
    """Return the drop reason for ``name``, or None when it may be a weight."""
    for drop_rule in (*extra, *RULES):
        if re.fullmatch(drop_rule.pattern, name):
            return Drop(name, drop_rule.kind, drop_rule.why)
    return None
