"""The task heads of the BERT-family TF1 graphs: pooler, masked LM, sentence pair, run_classifier
and run_squad, and the checks of which heads a caller may ask for."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from tf2hf.verify.references.blocks import WORDS, Activation
from tf2hf.verify.references.numerics import activation, layer_norm_epsilon
from tf2hf.verify.references.weights import Getter, dense_from, layer_norm_from, param, times_table_t

#: Head names a caller may request (not every family has every head).
ALL_HEADS = frozenset({"pooler", "mlm", "nsp", "sop", "classifier", "squad", "choice", "beside"})


class NotModelled(ValueError):
    """A setting of the config (not of the table) that the reference does not compute, e.g.
    an ELECTRA sequence summary other than the first token's: verification cannot run."""


def check_heads(heads: Iterable[str], supported: frozenset[str], family: str) -> None:
    """Reject head names that are unknown or that this family's graph does not have."""
    unknown = set(heads) - ALL_HEADS
    if unknown:
        raise ValueError(f"unknown head(s) {sorted(unknown)}; known: {sorted(ALL_HEADS)}")
    foreign = set(heads) - supported
    if foreign:
        raise ValueError(
            f"{family} has no {sorted(foreign)} head; its heads are {sorted(supported)}"
        )


def pooler(get: Getter, sequence_output: np.ndarray) -> np.ndarray:
    """``bert/pooler``: dense + tanh on the first token of every sequence."""
    return np.tanh(dense_from(get, "bert/pooler/dense", sequence_output[:, 0, :]))


def gather_positions(sequence_output: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rows at ``positions`` [B, K] of ``sequence_output`` [B, S, W], flattened to [B*K, W].

    Row ``b*K + k`` is ``sequence_output[b, positions[b, k]]``, the order of upstream's
    ``gather_indexes``.
    """
    batch, seq, width = sequence_output.shape
    flat = (np.asarray(positions) + (np.arange(batch) * seq)[:, None]).reshape(-1)
    return sequence_output.reshape(batch * seq, width)[flat]


def mlm_transform(
    get: Getter, sequence_output: np.ndarray, positions: np.ndarray, act: Activation, eps: float
) -> np.ndarray:
    """``cls/predictions/transform``: gather, dense with the model's activation, layer norm
    (variance epsilon ``eps``).

    All three upstream ``get_masked_lm_output`` functions use ``hidden_act`` here.
    """
    gathered = gather_positions(sequence_output, positions)
    hidden = act(dense_from(get, "cls/predictions/transform/dense", gathered))
    return layer_norm_from(get, "cls/predictions/transform/LayerNorm", hidden, eps)


def mlm_logits(
    get: Getter, sequence_output: np.ndarray, positions: np.ndarray, act: Activation, eps: float
) -> np.ndarray:
    """BERT's (and Google ALBERT's) MLM logits ``[B*K, V]`` at ``positions``, decoding with the
    word embeddings (ALBERT's transform maps H -> E, to the ``[V, E]`` table's width)."""
    hidden = mlm_transform(get, sequence_output, positions, act, eps)
    return decode(get, hidden)


def decode(get: Getter, hidden: np.ndarray) -> np.ndarray:
    """``hidden @ word_embeddings.T + cls/predictions/output_bias``."""
    return times_table_t(hidden, get, WORDS) + param(get, "cls/predictions/output_bias")


def weights_t_logits(get: Getter, scope: str, x: np.ndarray) -> np.ndarray:
    """``x @ output_weights.T + output_bias``: heads that store their weights ``[out, in]``.

    NSP/SOP (``cls/seq_relationship``), run_classifier (top level) and run_squad
    (``cls/squad``) all create ``output_weights`` this way round, unlike dense kernels.
    """
    prefix = f"{scope}/" if scope else ""
    weights = param(get, f"{prefix}output_weights")
    return x @ weights.T + param(get, f"{prefix}output_bias")


def squad_logits(get: Getter, sequence_output: np.ndarray) -> dict[str, np.ndarray]:
    """run_squad head: per-token logits; row 0 of the weights is start, row 1 is end."""
    logits = weights_t_logits(get, "cls/squad", sequence_output)
    return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


def common_heads(
    get: Getter,
    sequence_output: np.ndarray,
    heads: frozenset[str],
    *,
    pair_head: str,
) -> dict[str, np.ndarray]:
    """Compute the pooler, sentence-pair, classifier and squad heads that are requested.

    ``pair_head`` is ``"nsp"`` or ``"sop"``: the name under which this family's
    ``cls/seq_relationship`` head is reported. The MLM head is family-specific and is left to
    the caller.
    """
    out: dict[str, np.ndarray] = {}
    needs_pooled = bool(heads & {"pooler", pair_head, "classifier"})
    pooled = pooler(get, sequence_output) if needs_pooled else None
    if "pooler" in heads:
        out["pooled_output"] = pooled
    if pair_head in heads:
        out[f"{pair_head}_logits"] = weights_t_logits(get, "cls/seq_relationship", pooled)
    if "classifier" in heads:
        out["classifier_logits"] = weights_t_logits(get, "", pooled)
        # The same weights applied to every token (tagging fine-tunes): compared only when the
        # class written is a token classifier.
        out["token_logits"] = weights_t_logits(get, "", sequence_output)
    if "squad" in heads:
        out.update(squad_logits(get, sequence_output))
    return out


MlmLogits = Callable[[Getter, np.ndarray, np.ndarray, Activation, float], np.ndarray]
Encoder = Callable[[Getter, dict, dict, Activation], np.ndarray]


def forward_with_heads(
    encode: Encoder,
    family: str,
    supported: frozenset[str],
    *,
    pair_head: str,
    mlm: MlmLogits = mlm_logits,
    check_config: Callable[[dict], None] | None = None,
) -> Callable[..., dict[str, np.ndarray]]:
    """The ``forward`` of a BERT-shaped pre-training or run_* graph (see
    :mod:`tf2hf.verify.references` for its contract): ``encode`` gives the sequence output,
    then every requested head of ``supported`` is computed; ``mlm`` computes the family's
    masked-LM logits and ``check_config`` refuses configs of a graph this one is not."""

    def forward(get: Getter, config: dict, inputs: dict, *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
        check_heads(heads, supported, family)
        if check_config is not None:
            check_config(config)
        act = activation(gelu)
        sequence_output = encode(get, config, inputs, act)
        out = {"sequence_output": sequence_output}
        out.update(common_heads(get, sequence_output, heads, pair_head=pair_head))
        if "mlm" in heads:
            out["mlm_logits"] = mlm(get, sequence_output, inputs["positions"], act, layer_norm_epsilon(config))
        return out

    forward.__doc__ = f"Run the {family} graph on ``inputs``; see :mod:`tf2hf.verify.references`."
    return forward
