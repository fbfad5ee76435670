"""The config a conversion plans with, and the training graph's part in it (docs/GRAPH.md).

:func:`gather` finds the config (or, with none beside the checkpoint, starts from nothing: every
size but the head count follows from the shapes, and the heads from the graph), reads the graph
and settles the activation. :func:`apply_graph` puts the graph's head count and LayerNorm
epsilon into the ``config.json`` a family wrote, by the precedence of
:mod:`tf2hf.engine.graph_facts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tf2hf.engine.graph_facts import Settled, meta_path, read_facts, settle, settle_heads
from tf2hf.engine.table import Family
from tf2hf.errors import ConfigError
from tf2hf.sources import find_config, load_config, locate_config


@dataclass
class Gathered:
    config_path: Path | None  # None: built from the shapes and the graph
    config_label: str  # what messages name as "the config"
    config_given: bool
    settled: Settled


def gather(family: Family, prefix: Path, given: str | Path | None, gelu: str | None) -> Gathered:
    """Config, graph facts and settled activation for the checkpoint ``prefix``."""
    folder = prefix.parent
    found, candidates = locate_config(folder, family.config_names, given)
    facts = read_facts(family, prefix, None)
    if found is None and candidates:
        find_config(folder, family.config_names, given)  # raises: several configs, pass one
    if found is None:
        if facts.heads is None and not _heads_from_shapes(family):
            graph = meta_path(prefix)
            why = f"no training graph ({prefix}.meta)" if graph is None else f"the training graph {graph} does not show it"
            raise ConfigError(
                f"{folder}: no config JSON found beside the checkpoint, and {why} to read the number of attention heads from "
                "(every other size follows from the shapes); pass --config FILE"
            )
        label = f"{prefix} (no config: sizes from the shapes{', heads from ' + str(facts.path) if facts.heads else ''})"
        settled = settle(family, facts, {}, gelu, label)
        settled.notes.insert(0, f"no config beside the checkpoint: config built from the shapes{' and the training graph' if facts.path else ''}")
        return Gathered(None, label, False, settled)
    tf_config = load_config(found)
    return Gathered(found, str(found), given is not None, settle(family, facts, tf_config, gelu, str(found)))


def _heads_from_shapes(family: Family) -> bool:
    """Whether the family's shapes hold the head count (TF2's per-head kernels)."""
    return any(d.config_key == "num_attention_heads" and d.shape_of for d in family.dims)


def apply_graph(config: dict, family: Family, gathered: Gathered | None) -> None:
    """The graph's heads and epsilon into a family's ``config.json`` (in place)."""
    if gathered is None:
        return
    settled = gathered.settled
    if "num_attention_heads" in config or settled.heads is not None:
        heads = settle_heads(family, settled, config.get("num_attention_heads", settled.tf_config.get("num_attention_heads")),
                             gathered.config_given, gathered.config_label)
        if heads is not None:
            config["num_attention_heads"] = heads
    eps = settled.facts.epsilon
    if eps is not None and "layer_norm_eps" in config and epsilon_differs(eps, config["layer_norm_eps"]):
        settled.notes.append(f"layer_norm_eps: {eps:g} from the training graph {settled.facts.path} (the family's default is {config['layer_norm_eps']:g})")
        config["layer_norm_eps"] = eps


def epsilon_differs(graph: float, said: float) -> bool:
    """Whether the graph's LayerNorm epsilon is another value than ``said`` (the graph keeps
    float32's digits: 1e-12 reads back as 9.99999996e-13, which is the same value)."""
    return abs(graph - said) > 1e-6 * abs(said)


def settings_source(gathered: Gathered | None) -> str:
    """For verification's line: where the reference's activation and heads came from."""
    if gathered is None:
        return "assumed"
    facts = gathered.settled.facts
    shown = [what for what, value in (("activation", facts.activation), ("heads", facts.heads)) if value is not None]
    if not shown and gathered.settled.named:
        return "from the config (transformers' own activation name)"
    if not shown:
        return "assumed (no training graph)" if facts.path is None else f"assumed (the training graph {facts.path} does not show them)"
    rest = " and heads" if "heads" not in shown else ""
    return f"{' and '.join(shown)} from the training graph {facts.path}" + (f"; {rest.strip(' and')} from the config" if rest else "")
