"""What the training graph beside a checkpoint says that its weights do not (docs/GRAPH.md).

A checkpoint's weights fix every size but the number of attention heads, and nothing of which
activation formula the training code computed. Its ``P.meta`` (written by every TF1 Saver and
Estimator) holds the graph that was trained: :func:`read_facts` reads the activation op of
layer 0's feed-forward layer and the query reshape of its attention, at the scopes the family
declares (:class:`~tf2hf.engine.table.GraphProbe`). A graph without those ops (re-saved
checkpoints keep only variables and save ops) shows nothing, and nothing is then claimed.
:func:`settle` puts the graph beside the options and the config, in one order: an explicit
``--gelu`` wins (with a warning when the graph disagrees), the graph wins over defaults, a
config value that contradicts the graph is an error; what is still assumed is said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tf2hf.engine.table import GELU_NAMES, Family, GraphProbe
from tf2hf.errors import ConfigError
from tf2hf.tfckpt.metagraph import Graph, Node, read_graph

#: Ops that compute a dense layer: a scope holding one was run, not only declared.
_COMPUTE = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "BiasAdd"}
_FORMULA = {"gelu": "erf", "gelu_new": "tanh"}
_ADVICE = {
    "erf": "pass --gelu tanh if it was trained with google-research/bert code after February 2019",
    "tanh": "pass --gelu erf if its training code computed the erf GELU",
}


@dataclass
class GraphFacts:
    """What one training graph shows; ``None`` where it shows nothing."""

    path: str | None = None
    activation: str | None = None  # transformers' name: gelu, gelu_new, relu
    activation_ops: str = ""
    heads: int | None = None
    heads_evidence: str = ""
    epsilon: float | None = None

    def said(self) -> list[str]:
        """One line per fact, for notes and ``inspect``."""
        plural = "" if self.heads == 1 else "s"
        shown = (
            (self.activation, f"activation {self.activation} ({self.activation_ops})"),
            (self.heads, f"{self.heads} attention head{plural} ({self.heads_evidence})"),
            (self.epsilon is not None, f"LayerNorm epsilon {self.epsilon:g}" if self.epsilon is not None else ""),
        )
        return [line for present, line in shown if present]


@dataclass
class Settled:
    """The activation formula and head count a conversion uses, and how it knows them."""

    gelu: str
    tf_config: dict
    heads: int | None
    facts: GraphFacts
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def meta_path(prefix: str | Path) -> Path | None:
    """``P.meta`` beside the checkpoint ``P``, if there is one."""
    path = Path(f"{prefix}.meta")
    return path if path.is_file() else None


def read_facts(family: Family, prefix: str | Path, hidden: int | None) -> GraphFacts:
    """The facts of the graph beside ``prefix`` (none without a graph or a probe)."""
    path = meta_path(prefix)
    if path is None or family.graph is None:
        return GraphFacts(str(path) if path else None)
    return facts_of(read_graph(path), family.graph, hidden)


def facts_of(graph: Graph, probe: GraphProbe, hidden: int | None) -> GraphFacts:
    facts = GraphFacts(graph.path)
    names = list(graph.names())
    facts.activation, facts.activation_ops = _activation(graph, _under(names, probe.activation_scope), probe)
    facts.heads, facts.heads_evidence = _heads(graph, _under(names, probe.attention_scope), probe, hidden)
    if probe.epsilon:
        for name in names:
            if _in_scope(name, probe.epsilon) and name.endswith(probe.epsilon):
                value = _scalar(graph.node(name))
                # Stored as float32: 1e-12 reads back as 9.99999996e-13; keep the digits float32 has.
                facts.epsilon = float(f"{value:.7g}") if isinstance(value, float) else None
                break
    return facts


def _in_scope(name: str, scope: str) -> bool:
    """``name`` lies under ``scope`` in the forward graph: at the root or under a root prefix
    (an Estimator's or TF-Hub's), never under ``gradients/`` (backprop repeats every scope)."""
    if name.startswith(scope):
        return True
    at = name.find("/" + scope)
    return at > 0 and "gradients" not in name[:at].split("/")


def _under(names: list[str], scope: str) -> list[str]:
    return [n for n in names if _in_scope(n, scope)]


def _activation(graph: Graph, names: list[str], probe: GraphProbe) -> tuple[str | None, str]:
    ops = {node.op for node in graph.nodes(names)}
    if not ops & _COMPUTE:
        return None, ""  # variables and save ops only: the layer was never computed in this graph
    if "Erf" in ops:
        return "gelu", f"Erf under {probe.activation_scope}"
    if "Tanh" in ops and "Pow" in ops:
        return "gelu_new", f"Tanh and Pow under {probe.activation_scope}"
    if "Relu" in ops:
        return "relu", f"Relu under {probe.activation_scope}"
    raise ConfigError(
        f"{graph.path}: the feed-forward layer under {probe.activation_scope} computes none of the activations tf2hf knows "
        f"(Erf, Tanh with Pow, Relu); its ops are {', '.join(sorted(ops))}. No transformers activation is known to match: "
        "if you know it does, move the .meta file away and convert with --gelu erf|tanh"
    )


def _heads(graph: Graph, names: list[str], probe: GraphProbe, hidden: int | None) -> tuple[int | None, str]:
    """Heads from the query's reshape to ``[…, heads, head_size]`` (BERT: the activations,
    ``[B, S, N, W]``; ALBERT: the kernel, ``[H, N, W]``), whose last two sizes multiply to H."""
    found: set[tuple[int, int]] = set()
    for node in graph.nodes(names):
        if node.op != "Reshape" or len(node.inputs) < 2:
            continue
        if probe.query not in node.name and probe.query not in node.inputs[0]:
            continue
        shape = _shape_input(graph, graph.node(node.inputs[1]))
        if shape is None or len(shape) < 3:
            continue
        heads, size = shape[-2], shape[-1]
        if heads > 0 and size > 0 and (hidden is None or heads * size == hidden):
            found.add((heads, size))
    if len(found) != 1:
        return None, ""
    (heads, size), = found
    return heads, f"the query reshaped to [..., {heads}, {size}] under {probe.attention_scope}"


def _shape_input(graph: Graph, node: Node | None) -> tuple[int, ...] | None:
    """A reshape's target: a Const, or a Pack whose last two inputs are Consts."""
    if node is None:
        return None
    if node.op == "Const":
        tensor = node.attr("value")
        values = getattr(tensor, "values", None)
        return tuple(int(v) for v in values) if values and tensor.dtype in ("int32", "int64") else None
    if node.op == "Pack" and len(node.inputs) >= 3:
        tail = [_scalar(graph.node(name)) for name in node.inputs[-2:]]
        if all(isinstance(v, (int, float)) and v == int(v) for v in tail):
            return (-1,) * (len(node.inputs) - 2) + tuple(int(v) for v in tail)
    return None


def _scalar(node: Node | None) -> float | int | None:
    if node is None or node.op != "Const":
        return None
    tensor = node.attr("value")
    values = getattr(tensor, "values", None)
    return values[0] if values and len(values) == 1 else None


def settle(family: Family, facts: GraphFacts, tf_config: dict, gelu: str | None, config_label: str) -> Settled:
    """The activation and heads to convert with, by the precedence written in the module doc."""
    tf_config = dict(tf_config)
    settled = Settled(gelu or family.default_gelu, tf_config, facts.heads, facts)
    graph_act, graph = facts.activation, facts.path
    said = tf_config.get("hidden_act")
    if graph_act is not None and said not in (None, "gelu") and said != graph_act:
        raise ConfigError(
            f"{config_label}: hidden_act is {said!r} but the training graph {graph} computes {graph_act} ({facts.activation_ops}); "
            "pass the config that belongs to this checkpoint"
        )
    if graph_act == "relu":
        if said == "gelu":
            raise ConfigError(f"{config_label}: hidden_act is 'gelu' but the training graph {graph} computes relu ({facts.activation_ops}); pass the config that belongs to this checkpoint")
        tf_config["hidden_act"] = "relu"
    elif graph_act is not None and said in (None, "gelu"):
        if gelu is None:
            settled.gelu = _FORMULA[graph_act]
        elif GELU_NAMES[gelu] != graph_act:
            settled.warnings.append(f"{graph}: the training graph computes {graph_act} ({facts.activation_ops}), but --gelu {gelu} was given: converting with {GELU_NAMES[gelu]}")
    elif graph_act is None and gelu is None and said in (None, "gelu"):
        why = "no training graph beside the checkpoint" if graph is None else f"the training graph {graph} does not compute the feed-forward layer"
        formula = family.default_gelu
        settled.assumptions.append(f"activation: {GELU_NAMES[formula]} ({formula}) assumed — {why}; {_ADVICE[formula]}")
    if facts.heads is None and family.graph is not None:
        why = "no training graph beside the checkpoint" if graph is None else f"the training graph {graph} does not show the attention's reshape"
        settled.notes.append(f"num_attention_heads: from the config or the family's rule ({why})")
    if facts.said():
        settled.notes.append(f"training graph {graph}: {'; '.join(facts.said())}")
    return settled


def settle_heads(family: Family, settled: Settled, family_heads: object, config_given: bool, config_label: str) -> object:
    """The head count written: the graph's, unless the config (given with ``--config``) says
    otherwise; a config found beside the checkpoint that contradicts the graph is an error."""
    graph_heads = settled.heads
    if graph_heads is None:
        return family_heads
    key = family.graph.heads_key if family.graph else None
    said = settled.tf_config.get(key) if key else None
    if said is not None and said != graph_heads:
        message = f"{config_label}: {key} is {said} but the training graph {settled.facts.path} splits attention into {graph_heads} heads ({settled.facts.heads_evidence})"
        if not config_given:
            raise ConfigError(f"{message}; pass the config that belongs to this checkpoint")
        settled.warnings.append(f"{message}; using the config's {said} (given with --config)")
        return said
    return graph_heads
