"""The vocabulary in which family tables are written.

A family module (``tf2hf/families/<family>.py``) is data: it builds one :class:`Family` out of
the classes below. The engine (``tf2hf.engine.plan``) reads these and knows no family by name.

Templates
---------
Source and target names are exact strings with placeholders:

* ``{i}`` (and any other loop letter the family declares in :attr:`Family.loops`) is expanded
  over a range whose length is a dimension, e.g. ``{"i": "L"}`` expands ``layer_{i}`` for
  ``i`` in ``0 … L-1``;
* ``{p}`` in a target is the base-model prefix of the chosen target class (``"bert."`` in
  ``BertForPreTraining``, ``""`` in ``BertModel``);
* ``{i+4}`` is the loop index plus a constant, and ``{L+4}`` a resolved dimension plus a
  constant (``{L}`` alone is allowed too): layouts that number their objects in one sequence,
  like TF2's ``layer_with_weights-N`` (embeddings 0-3, layers 4 … L+3, pooler L+4).

Shapes are tuples of dimension symbols (``("V", "H")``) or integers, resolved by
:class:`Dim` entries from the config and the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping


@dataclass(frozen=True)
class Dim:
    """A named size the family's shapes are written in.

    ``config_key`` names the TF config entry. ``shape_of`` = (TF name, axis) reads the size from a
    variable's shape; ``count_of`` = a template with one loop letter counts how many indices of it
    exist in the checkpoint (e.g. the number of layers).

    When both the config and the checkpoint give a value and they differ, ``on_conflict`` says
    what happens: ``"error"`` (the config contradicts the weights: refuse) or ``"checkpoint"``
    (configs of this family are known to be unreliable for this size: use the checkpoint's value
    and report it).
    """

    symbol: str
    config_key: str | None = None
    shape_of: tuple[str, int] | None = None
    count_of: str | None = None
    on_conflict: str = "error"
    default: int | None = None


@dataclass(frozen=True)
class Rule:
    """One target tensor, and how it is made from source variables.

    ``sources`` are TF names (templates); ``op`` names a transform in :mod:`tf2hf.engine.transforms`
    (``copy``, ``transpose``, ``matmul``, ``eye``, ``zeros`` ...); ``shape`` is the target's shape
    in dimension symbols, checked at plan time. ``why`` says why a rule that is not obvious is
    the way it is; it is shown by ``--dry-run``.
    """

    target: str
    sources: tuple[str, ...]
    op: str
    shape: tuple[str | int, ...]
    why: str = ""


def rule(target: str, source: str | tuple[str, ...] | None, op: str, shape: tuple, why: str = "") -> Rule:
    """Shorthand used by family tables: a single source may be given as a plain string."""
    if source is None:
        sources: tuple[str, ...] = ()
    elif isinstance(source, str):
        sources = (source,)
    else:
        sources = tuple(source)
    return Rule(target=target, sources=sources, op=op, shape=tuple(shape), why=why)


def dense(src: str, dst: str, n_in: str, n_out: str) -> tuple[Rule, Rule]:
    """A TF dense layer: ``kernel`` [in, out] becomes ``Linear.weight`` [out, in]; bias as is."""
    return (
        rule(f"{dst}.weight", f"{src}/kernel", "transpose", (n_out, n_in)),
        rule(f"{dst}.bias", f"{src}/bias", "copy", (n_out,)),
    )


def layer_norm(src: str, dst: str, n: str) -> tuple[Rule, Rule]:
    """A TF LayerNorm: ``gamma``/``beta`` become ``weight``/``bias``."""
    return (
        rule(f"{dst}.weight", f"{src}/gamma", "copy", (n,)),
        rule(f"{dst}.bias", f"{src}/beta", "copy", (n,)),
    )


GELU_NAMES = {"erf": "gelu", "tanh": "gelu_new"}


def hidden_act(tf_config: dict, gelu: str) -> str:
    """transformers' activation name: a config's ambiguous ``"gelu"`` becomes the formula the
    user chose (``--gelu``); any other activation (``relu``…) is kept as written."""
    act = tf_config.get("hidden_act", "gelu")
    return GELU_NAMES[gelu] if act == "gelu" else act


@dataclass(frozen=True)
class Part:
    """A piece of the model that is present or not as a whole (embeddings, pooler, a head).

    A part is present when its ``marker`` variable is in the checkpoint. ``tied`` lists target
    keys the transformers class has but which are tied to another key and so are never written
    (target key → the key it is tied to).

    ``when_absent``: rules used instead of ``rules`` when the marker is missing (TF omits some
    layers that transformers always has, e.g. ALBERT's projection when E == H); such a part is
    always present, and ``absent_note`` is reported when the substitute is used.

    ``optional``: TF and transformers both create this layer only under the same condition
    (ELECTRA's ``embeddings_project`` exists in both exactly when E != H). The part counts as
    present either way, so targets need not come in pairs; its rules apply only when the
    marker is in the checkpoint.
    """

    name: str
    marker: str
    rules: tuple[Rule, ...]
    tied: Mapping[str, str] = field(default_factory=dict)
    label: str = ""
    when_absent: tuple[Rule, ...] = ()
    absent_note: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Output:
    """A verified output: the reference's name, the transformers output field, how to compare.

    ``select`` is ``"all"`` (compare as is), ``"positions"`` (gather the transformers output
    at the MLM positions, as the TF graph does before its softmax) or ``"choices"`` (both sides
    run the batch as one example whose sequences are its choices, ``[1, choices, seq]``, as the
    multiple-choice classes take it).
    """

    reference: str
    field: str
    select: str = "all"


@dataclass(frozen=True)
class Target:
    """A transformers class and the parts it takes.

    A target is chosen when its ``parts`` are all present and every other present part is in
    ``discards`` (part → why it cannot be kept). ``prefix`` replaces ``{p}`` in target keys.
    ``outputs`` are the head outputs compared by verification, besides the sequence and pooled
    outputs of the base model.
    """

    cls: str
    parts: frozenset[str]
    prefix: str
    outputs: tuple[Output, ...] = ()
    discards: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, object] = field(default_factory=dict)
    # The task this class serves (one of TASKS), and whether ``auto`` may pick it: a per-token
    # head stores the same variables as a sequence head, so only the user can choose it.
    task: str = ""
    auto: bool = True
    # Names in the source config's ``architectures`` that choose this class under ``auto``: two
    # classes may store the same weights (a multiple-choice head is a one-label sequence
    # classifier), and then only the config that was saved with them tells them apart.
    architectures: tuple[str, ...] = ()


#: The task names of transformers pipelines and optimum's exporter, as ``--task`` takes them.
TASKS = (
    "pretraining",
    "fill-mask",
    "text-classification",
    "token-classification",
    "question-answering",
    "feature-extraction",
    "multiple-choice",
)


@dataclass(frozen=True)
class DropRule:
    """Source variables that are never weights: ``pattern`` is a full-match regex on the name."""

    pattern: str
    kind: str
    why: str


@dataclass(frozen=True)
class Refusal:
    """Variables whose presence means the layout cannot be converted exactly.

    ``pattern`` is a full-match regex on the (prefix-stripped) name; ``ndim``, when set, limits
    the refusal to variables of that rank (e.g. 3-D kernels).
    """

    pattern: str
    why: str
    ndim: int | None = None


@dataclass(frozen=True)
class ConfigCheck:
    """A config entry that decides whether the graph is one transformers can compute.

    ``refuse`` maps values to the reason they are refused; ``missing`` is reported when the
    key is absent (and says what is assumed).
    """

    key: str
    refuse: Mapping[object, str] = field(default_factory=dict)
    missing: str = ""


@dataclass(frozen=True)
class Rename:
    """A name normalisation: a checkpoint name that full-matches ``pattern`` is read as
    ``re.sub``'s ``replacement`` before anything else looks at it (after prefix stripping).

    Used for layouts whose names differ from the table's only by a regular spelling: TF2's
    ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix, Keras' ``layer_normalization_N`` for ``LayerNorm``.
    Two names that normalise to one are refused (the position did not tell them apart); ``why``
    is shown then, and in the notes of a conversion that renamed anything.
    """

    pattern: str
    replacement: str
    why: str


@dataclass(frozen=True)
class GraphProbe:
    """Where a family's training graph (``P.meta``) shows what its weights do not say
    (docs/GRAPH.md): name scopes of layer 0 as the graph's ops are named, not as variables are.

    ``activation_scope``: the feed-forward layer whose activation op tells the formula (``Erf``;
    ``Tanh`` with ``Pow``; ``Relu``). ``attention_scope``: the self-attention whose query reshape
    (a node or first input containing ``query``) ends in ``[heads, head_size]``. ``heads_key``:
    the config entry the graph's head count is checked against; ``None`` when the config's entry
    describes another model (ELECTRA's generator is converted with the discriminator's config).
    ``epsilon``: the node holding a LayerNorm's variance epsilon. ``pre_norm``: for a family
    whose config may not say its LayerNorm order, the scope of layer 0's LayerNorm whose output
    feeds the query only in a pre-LN graph; ``order_key`` the config entry that says the order
    and ``order_values`` its pre-LN and post-LN values.
    """

    activation_scope: str
    attention_scope: str
    query: str = "/query/"
    heads_key: str | None = "num_attention_heads"
    epsilon: str = ""
    pre_norm: str = ""
    order_key: str = ""
    order_values: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Family:
    """Everything the engine needs to convert one family of checkpoints.

    ``signature`` are TF names (no loop letters, after prefix stripping) whose presence
    identifies the family; ``refuse`` lists layouts of this family that no transformers class
    can hold. ``group`` is the name users type (``convert albert`` covers Google's and
    brightmart's layouts); ``variant`` is the value that selects between families of one group
    with the same signature (``convert(variant=...)``; the first registered is the default,
    unless ``needs_variant``: then a checkpoint that several variants match must name one, e.g.
    the two towers of an ELECTRA checkpoint). ``variant_option`` is how users name a variant (the CLI
    option shown in messages). The checkpoint may hold the table's names under any root prefix
    (``module/``, an Estimator name scope, a TF2 object path): the engine finds the one in front
    of the signature (:mod:`tf2hf.engine.roots`), and names beside that root are read as
    ``../<name>``. ``renames`` normalise names after that (see :class:`Rename`). ``notes(tf_config, dims)``, when given, says what the family derived
    rather than read (e.g. a head count computed as upstream computes it). ``base_parts`` are the parts every target has; the others are heads, named as the
    reference graph names them. ``hf_config`` turns (TF config, resolved dims, options) into
    the ``config.json`` dict; ``reference`` is the dotted path of the NumPy forward function of
    the source graph used by verification.

    Roles name what the engine, inspection and verification need to find without knowing the
    family's symbols: ``vocab_dim`` the dimension that counts vocabulary rows (checked against
    the vocabulary file), ``positions_dim`` the maximum sequence length (the tokenizer's
    ``model_max_length``), ``token_types_dim`` the number of segments, ``pooler_part`` the part
    that is base model although it is not in every target (``inspect`` counts it so).
    """

    name: str
    description: str
    model_type: str
    signature: tuple[str, ...]
    dims: tuple[Dim, ...]
    loops: Mapping[str, str]
    parts: tuple[Part, ...]
    targets: tuple[Target, ...]
    hf_config: Callable[[dict, dict, dict], dict]
    reference: str
    default_gelu: str
    # The table's own top-level scopes (``bert/``, ``cls/``), after the root prefix: an unknown
    # variable inside them would change what the model computes (an error with every task); one
    # outside them is a head no class holds, kept aside with an explicit --task. Empty: every
    # variable under the root prefix counts as inside.
    scopes: tuple[str, ...] = ()
    # Other spellings of a root scope of the table, checkpoint spelling -> table spelling:
    # AlbertModel(scope="albert") builds ALBERT's encoder under albert/ instead of bert/.
    root_aliases: Mapping[str, str] = field(default_factory=dict)
    extra_drops: tuple[DropRule, ...] = ()
    refuse: tuple[Refusal, ...] = ()
    config_checks: tuple[ConfigCheck, ...] = ()
    base_parts: frozenset[str] = frozenset({"embeddings", "encoder"})
    group: str = ""
    variant: str = ""
    config_names: tuple[str, ...] = ("bert_config*.json", "*config*.json")
    vocab_names: tuple[str, ...] = ("vocab.txt", "*vocab*.txt")
    renames: tuple[Rename, ...] = ()
    needs_variant: bool = False
    variant_option: str = "--target"
    notes: Callable[[dict, dict], list[str]] | None = None
    vocab_dim: str = "V"
    positions_dim: str = "P"
    token_types_dim: str = "T"
    pooler_part: str = "pooler"
    # What the training graph beside a checkpoint can tell (activation, heads): see GraphProbe.
    graph: GraphProbe | None = None
    # Table names (after the root) whose presence makes the checkpoint another family's although
    # the signature is there: bert-for-tf2's ALBERT has its BERT's names plus a projector.
    unless: tuple[str, ...] = ()
    # The config's hidden_act is a transformers activation name (transformers' own config.json,
    # read by its TF classes' get_tf_activation): "gelu" is the erf formula, "gelu_new" the tanh
    # one, so a named activation assumes nothing. False for TF1 configs, whose "gelu" named
    # whichever formula the training code computed (docs/GRAPH.md).
    activation_named: bool = False

    def part(self, name: str) -> Part:
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)
