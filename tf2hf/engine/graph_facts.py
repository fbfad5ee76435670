"""What the training graph beside a checkpoint says that its weights do not (docs/GRAPH.md).

A checkpoint's weights fix every size but the number of attention heads, and nothing of which
activation formula the training code computed. Its ``P.meta`` (written by every TF1 Saver and
Estimator) holds the graph that was trained: :func:`read_facts` reads the activation op of
layer 0's feed-forward layer, the query reshape of its attention, a LayerNorm's epsilon and,
where the family declares it, what the query projects (the LayerNorm order), at the scopes the
family declares (:class:`~tf2hf.engine.table.GraphProbe`). A graph without those ops (re-saved
checkpoints keep only variables and save ops) shows nothing, and nothing is then claimed.
:func:`settle` puts the graph beside the options and the config, in one order: a config that
names its formula (transformers' own) assumes nothing, an explicit ``--gelu`` wins (with a
warning when the graph disagrees), the graph wins over defaults, a config value that
contradicts the graph is an error, a pre-LN graph is refused; what is still assumed is said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tf2hf.engine.table import GELU_NAMES, Family, GraphProbe
from tf2hf.errors import ConfigError, UnsupportedModelError
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
    norm_order: str | None = None  # "pre" or "post": where the layer's LayerNorm sits
    norm_evidence: str = ""

    def said(self) -> list[str]:
        """One line per fact, for notes and ``inspect``."""
        plural = "" if self.heads == 1 else "s"
        shown = (
            (self.activation, f"activation {self.activation} ({self.activation_ops})"),
            (self.heads, f"{self.heads} attention head{plural} ({self.heads_evidence})"),
            (self.epsilon is not None, f"LayerNorm epsilon {self.epsilon:g}" if self.epsilon is not None else ""),
            (self.norm_order, f"{self.norm_order}-LN ({self.norm_evidence})"),
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
    named: bool = False  # the config's hidden_act names the formula (Family.activation_named)


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
    if probe.pre_norm:
        facts.norm_order, facts.norm_evidence = _norm_order(graph, _under(names, probe.attention_scope), probe)
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


#: Ops the query's projection may compute its product with.
_PRODUCTS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"}


def _norm_order(graph: Graph, names: list[str], probe: GraphProbe) -> tuple[str | None, str]:
    """``pre`` when layer 0's query projects the output of the layer's own LayerNorm
    (``probe.pre_norm``), ``post`` when it projects anything else (post-LN code normalises only
    after attention; the query then reads the layer's input). The product's input is followed
    back through the ops of the query's own scope (a Tensordot's reshapes), a few steps at most."""
    found: set[tuple[str, str]] = set()
    for node in graph.nodes(names):
        if node.op not in _PRODUCTS or probe.query not in node.name or not node.inputs:
            continue
        own = node.name[: node.name.index(probe.query) + len(probe.query)]
        source = _producer(node.inputs[0])
        for _ in range(4):
            upstream = graph.node(source) if source.startswith(own) else None
            if upstream is None or not upstream.inputs:
                break
            source = _producer(upstream.inputs[0])
        pre = _in_scope(source, probe.pre_norm)
        what = "the output of the layer's LayerNorm" if pre else "not a LayerNorm of the layer"
        found.add(("pre" if pre else "post", f"layer 0's query ({node.name}) reads {source}, {what}"))
    if len({order for order, _ in found}) != 1:
        return None, ""  # no query computed, or two graphs that disagree: nothing is claimed
    order, evidence = sorted(found)[0]
    return order, evidence


def _producer(tensor: str) -> str:
    """The node that produces a NodeDef input (``name:1`` an output index, ``^name`` control)."""
    return tensor.lstrip("^").split(":", 1)[0]


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
    graph_act, graph = facts.activation, facts.path
    said = tf_config.get("hidden_act")
    named = _named_formula(family, said)
    settled = Settled(gelu or named or family.default_gelu, tf_config, facts.heads, facts, named=named is not None)
    # A TF1 config's "gelu" (or none) names no formula: the graph or an assumption decides it.
    ambiguous = said in (None, "gelu") and named is None
    if graph_act is not None and not ambiguous and said != graph_act:
        raise ConfigError(
            f"{config_label}: hidden_act is {said!r} but the training graph {graph} computes {graph_act} ({facts.activation_ops}); "
            "pass the config that belongs to this checkpoint"
        )
    if graph_act == "relu":
        if said == "gelu":
            raise ConfigError(f"{config_label}: hidden_act is 'gelu' but the training graph {graph} computes relu ({facts.activation_ops}); pass the config that belongs to this checkpoint")
        tf_config["hidden_act"] = "relu"
    elif graph_act is not None and ambiguous:
        if gelu is None:
            settled.gelu = _FORMULA[graph_act]
        elif GELU_NAMES[gelu] != graph_act:
            settled.warnings.append(f"{graph}: the training graph computes {graph_act} ({facts.activation_ops}), but --gelu {gelu} was given: converting with {GELU_NAMES[gelu]}")
    elif graph_act is None and gelu is None and ambiguous:
        why = "no training graph beside the checkpoint" if graph is None else f"the training graph {graph} does not compute the feed-forward layer"
        formula = family.default_gelu
        settled.assumptions.append(f"activation: {GELU_NAMES[formula]} ({formula}) assumed — {why}; {_ADVICE[formula]}")
    if family.graph is not None and family.graph.order_key:
        _settle_order(family, facts, settled, config_label)
    if facts.heads is None and family.graph is not None:
        why = "no training graph beside the checkpoint" if graph is None else f"the training graph {graph} does not show the attention's reshape"
        settled.notes.append(f"num_attention_heads: from the config or the family's rule ({why})")
    if facts.said():
        settled.notes.append(f"training graph {graph}: {'; '.join(facts.said())}")
    return settled


def _settle_order(family: Family, facts: GraphFacts, settled: Settled, config_label: str) -> None:
    """The LayerNorm order: a pre-LN graph is refused (no transformers class computes one),
    whatever a config beside it says; a post-LN graph stands in for a config that does not say.
    A config that says pre-LN is refused by the family's config check either way (the graph
    cannot make a pre-LN conversion possible, so it is not consulted then)."""
    key = family.graph.order_key
    pre, post = family.graph.order_values
    said = settled.tf_config.get(key)
    if facts.norm_order == "pre" and said != pre:
        reason = next((c.refuse[pre] for c in family.config_checks if c.key == key and pre in c.refuse),
                      "no transformers class computes a pre-LN graph. Nothing was written")
        though = f" (though {config_label} says {key} {said!r})" if said is not None else ""
        raise UnsupportedModelError(f"{facts.path}: the training graph is pre-LN{though}: {facts.norm_evidence}; {reason}")
    if facts.norm_order == "post" and said is None:
        settled.tf_config[key] = post
        settled.notes.append(f"{key}: {post} from the training graph {facts.path} ({facts.norm_evidence})")


def _named_formula(family: Family, said: object) -> str | None:
    """The formula a config's ``hidden_act`` names, for a family whose configs name formulas
    (``Family.activation_named``: transformers' own config.json); ``None`` otherwise."""
    if not family.activation_named:
        return None
    return next((formula for formula, name in GELU_NAMES.items() if name == said), None)


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
