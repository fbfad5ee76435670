"""NumPy operations shared by the reference graphs.

Everything here works in float64 and mirrors what the TF1 code of google-research/bert,
google-research/albert and brightmart/albert_zh computes (dropout is off at inference, so it
does not appear). Weights are always fetched by their TF variable names through a ``get``
callable and never through converted tensors, so these graphs are an independent witness of
what the source checkpoint computes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

Getter = Callable[[str], np.ndarray]

#: ``tf.contrib.layers.layer_norm`` (used by all three upstream codebases) hard-codes this
#: variance epsilon; it is not read from any config.
LAYER_NORM_EPSILON = 1e-12

#: Upstream BERT/ALBERT turn the 0/1 input mask into an additive bias ``(1 - mask) * -10000``
#: rather than -inf. Masked keys still get exactly zero weight (``exp(-10000)`` underflows),
#: but when every key of a row is masked the constant shift cancels in the softmax and the row
#: attends as if unmasked; transformers adds the dtype's minimum instead, which swamps the
#: scores and gives a uniform row. The two agree whenever a row keeps one unmasked key.
MASK_PENALTY = -10000.0

#: Head names a caller may request (not every family has every head).
ALL_HEADS = frozenset({"pooler", "mlm", "nsp", "sop", "classifier", "squad"})

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


# --- reading weights -----------------------------------------------------------------------


def f64(array: Any) -> np.ndarray:
    """Return ``array`` as a float64 ndarray (the reference never computes in float32)."""
    return np.asarray(array, dtype=np.float64)


def param(get: Getter, name: str) -> np.ndarray:
    """Fetch one TF variable by name as float64."""
    return f64(get(name))


def param_rows(get: Getter, name: str, ids: Any) -> np.ndarray:
    """Rows ``ids`` of the table ``name`` as float64, without converting the whole table (the
    word embeddings are the largest tensor of a model: 188 MB in float64 for BERT-base)."""
    return f64(np.asarray(get(name))[np.asarray(ids)])


#: Rows of a large table converted to float64 at a time by :func:`times_table_t`.
_TABLE_BLOCK = 4096


def times_table_t(x: np.ndarray, get: Getter, name: str) -> np.ndarray:
    """``x @ table.T`` in float64 for a large ``[V, E]`` table (decoding with the word
    embeddings), converting a block of rows at a time so the table is never copied whole."""
    table = np.asarray(get(name))
    out = np.empty(x.shape[:-1] + (table.shape[0],), dtype=np.float64)
    for start in range(0, table.shape[0], _TABLE_BLOCK):
        out[..., start : start + _TABLE_BLOCK] = x @ f64(table[start : start + _TABLE_BLOCK]).T
    return out


def has_variable(get: Getter, name: str) -> bool:
    """True when ``get`` knows ``name``; ``get`` signals an absent name with ``KeyError``."""
    try:
        get(name)
    except KeyError:
        return False
    return True


def count_indexed(get: Getter, template: str) -> int:
    """Count consecutive indices ``0, 1, ...`` for which ``template.format(index)`` exists."""
    count = 0
    while has_variable(get, template.format(count)):
        count += 1
    return count


def require(config: Mapping[str, Any], key: str) -> Any:
    """Read a config value the graph cannot infer from variable shapes."""
    if key not in config:
        raise KeyError(f"the model config has no '{key}', which the reference graph needs")
    return config[key]


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


# --- elementwise ops -----------------------------------------------------------------------


# erf by W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for
# the error function", Math. Comp. 23, 1969), whose float64 coefficients give erf to within a
# couple of units in the last place on every range: vectorised, where ``math.erf`` would be
# called once per element.
_ERF_SMALL_P = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_SMALL_Q = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERFC_MID_P = (
    5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
    8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
    2.15311535474403846e-8,
)
_ERFC_MID_Q = (
    1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
    3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03,
)
_ERFC_LARGE_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_LARGE_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """``exp(-y*y)``, with ``y*y`` split into an exact part and a small rest so that its
    rounding error is not magnified by the exponential."""
    head = np.trunc(y * 16.0) / 16.0
    return np.exp(-head * head) * np.exp(-(y - head) * (y + head))


def erf(x: Any) -> np.ndarray:
    """The error function in float64, element-wise (agrees with ``math.erf`` to ~2e-16)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.abs(x).reshape(-1)
    out = np.full_like(y, np.nan)  # NaN stays NaN: it falls in none of the ranges below
    small = y <= 0.46875
    mid = (y > 0.46875) & (y <= 4.0)
    large = y > 4.0

    # |x| <= 0.46875: erf(x) = x P(x^2) / Q(x^2)
    ys = y[small]
    z = ys * ys
    num, den = _ERF_SMALL_P[4] * z, z
    for p, q in zip(_ERF_SMALL_P[:3], _ERF_SMALL_Q[:3]):
        num, den = (num + p) * z, (den + q) * z
    out[small] = ys * (num + _ERF_SMALL_P[3]) / (den + _ERF_SMALL_Q[3])

    # 0.46875 < |x| <= 4: erfc(x) = exp(-x^2) P(x) / Q(x)
    ym = y[mid]
    num, den = _ERFC_MID_P[8] * ym, ym
    for p, q in zip(_ERFC_MID_P[:7], _ERFC_MID_Q[:7]):
        num, den = (num + p) * ym, (den + q) * ym
    out[mid] = 1.0 - _exp_minus_square(ym) * (num + _ERFC_MID_P[7]) / (den + _ERFC_MID_Q[7])

    # |x| > 4: erfc(x) = exp(-x^2) / x (1/sqrt(pi) + P(1/x^2) / (x^2 Q(1/x^2)))
    yl = y[large]
    with np.errstate(invalid="ignore", over="ignore"):  # huge or infinite x: masked below
        z = 1.0 / (yl * yl)
        num, den = _ERFC_LARGE_P[5] * z, z
        for p, q in zip(_ERFC_LARGE_P[:4], _ERFC_LARGE_Q[:4]):
            num, den = (num + p) * z, (den + q) * z
        tail = (_INV_SQRT_PI - z * (num + _ERFC_LARGE_P[4]) / (den + _ERFC_LARGE_Q[4])) / yl
        erfc = _exp_minus_square(yl) * tail
    # Beyond 6, erfc < 3e-17: erf is 1 in float64.
    out[large] = np.where(yl < 6.0, 1.0 - erfc, 1.0)
    return np.copysign(out.reshape(x.shape), x)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """Exact GELU, ``x * Phi(x)``: the 2018 BERT releases and transformers' ``"gelu"``."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """Tanh approximation of GELU, as the upstream TF ``gelu`` functions compute it.

    This is transformers' ``"gelu_new"``; it differs from :func:`gelu_erf` by up to ~1e-3.
    """
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def relu(x: np.ndarray) -> np.ndarray:
    """Rectifier; one published Chinese ALBERT config names it as ``hidden_act``."""
    return np.maximum(x, 0.0)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "erf": gelu_erf,
    "tanh": gelu_tanh,
    "relu": relu,
}


def activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Map the ``gelu`` argument of ``forward`` (``erf``, ``tanh`` or ``relu``) to a function."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation '{name}'; expected one of {sorted(_ACTIVATIONS)}"
        ) from None


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax (what upstream reports as ``*_log_probs``)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# --- layers --------------------------------------------------------------------------------


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """TF dense layer: ``x @ kernel + bias`` with the kernel stored ``[in, out]``."""
    out = x @ kernel
    return out if bias is None else out + bias


def dense_from(get: Getter, scope: str, x: np.ndarray) -> np.ndarray:
    """Apply the dense layer whose variables are ``{scope}/kernel`` and ``{scope}/bias``."""
    return dense(x, param(get, f"{scope}/kernel"), param(get, f"{scope}/bias"))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Layer norm over the last axis as ``tf.contrib.layers.layer_norm`` computes it.

    The variance is the biased (population) one and the epsilon is 1e-12, added to the
    variance inside the square root.
    """
    mean = np.mean(x, axis=-1, keepdims=True)
    variance = np.mean(np.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + LAYER_NORM_EPSILON) * gamma + beta


def layer_norm_from(get: Getter, scope: str, x: np.ndarray) -> np.ndarray:
    """Apply the layer norm whose variables are ``{scope}/gamma`` and ``{scope}/beta``."""
    return layer_norm(x, param(get, f"{scope}/gamma"), param(get, f"{scope}/beta"))


def attention_bias(input_mask: np.ndarray) -> np.ndarray:
    """Additive attention bias ``[B, 1, 1, S]`` from a 0/1 input mask ``[B, S]``.

    Upstream masks keys only (every query row gets the same key mask), and uses a finite
    penalty; see :data:`MASK_PENALTY`.
    """
    mask = f64(input_mask)
    return ((1.0 - mask) * MASK_PENALTY)[:, None, None, :]


def _split_heads(x: np.ndarray, num_heads: int) -> np.ndarray:
    """``[B, S, N*D] -> [B, N, S, D]``; upstream orders the hidden axis head-major."""
    batch, seq, width = x.shape
    return x.reshape(batch, seq, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def self_attention(
    get: Getter, scope: str, x: np.ndarray, bias: np.ndarray, num_heads: int
) -> np.ndarray:
    """Multi-head self-attention context ``[B, S, H]`` (before the output projection).

    ``scope`` holds ``query``, ``key`` and ``value`` dense layers. Scores are scaled by
    ``1/sqrt(head_size)`` before the mask bias is added, as upstream does.
    """
    width = x.shape[-1]
    if width % num_heads:
        raise ValueError(f"hidden size {width} is not a multiple of {num_heads} heads")
    query = _split_heads(dense_from(get, f"{scope}/query", x), num_heads)
    key = _split_heads(dense_from(get, f"{scope}/key", x), num_heads)
    value = _split_heads(dense_from(get, f"{scope}/value", x), num_heads)
    scores = query @ key.transpose(0, 1, 3, 2) / math.sqrt(width // num_heads)
    context = softmax(scores + bias) @ value
    batch, _, seq, _ = context.shape
    return context.transpose(0, 2, 1, 3).reshape(batch, seq, width)


def post_ln_block(
    get: Getter,
    scope: str,
    names: Mapping[str, str],
    x: np.ndarray,
    bias: np.ndarray,
    num_heads: int,
    act: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """One post-LN transformer block: attention, residual + LN, FFN, residual + LN.

    BERT, brightmart and Google ALBERT compute the same block under different variable
    names; ``names`` maps the roles ``self``, ``attention_output``, ``attention_norm``,
    ``intermediate``, ``output`` and ``output_norm`` to sub-scopes of ``scope``.
    """
    context = self_attention(get, f"{scope}/{names['self']}", x, bias, num_heads)
    attended = dense_from(get, f"{scope}/{names['attention_output']}", context)
    attended = layer_norm_from(get, f"{scope}/{names['attention_norm']}", attended + x)
    hidden = act(dense_from(get, f"{scope}/{names['intermediate']}", attended))
    out = dense_from(get, f"{scope}/{names['output']}", hidden)
    return layer_norm_from(get, f"{scope}/{names['output_norm']}", out + attended)


# --- embeddings ----------------------------------------------------------------------------


def add_position_and_type(
    get: Getter, x: np.ndarray, token_type_ids: np.ndarray
) -> np.ndarray:
    """Add the token-type and position embeddings of ``bert/embeddings`` to ``x`` [B, S, W].

    Position ``p`` gets row ``p`` of the table (upstream slices the first ``S`` rows).
    """
    seq = x.shape[1]
    types = param(get, "bert/embeddings/token_type_embeddings")
    positions = param(get, "bert/embeddings/position_embeddings")
    if seq > positions.shape[0]:
        raise ValueError(
            f"sequence length {seq} exceeds the {positions.shape[0]} position embeddings"
        )
    return x + types[np.asarray(token_type_ids)] + positions[None, :seq, :]


# --- heads ---------------------------------------------------------------------------------


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
    get: Getter,
    sequence_output: np.ndarray,
    positions: np.ndarray,
    act: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """``cls/predictions/transform``: gather, dense with the model's activation, layer norm.

    All three upstream ``get_masked_lm_output`` functions use ``hidden_act`` here.
    """
    gathered = gather_positions(sequence_output, positions)
    hidden = act(dense_from(get, "cls/predictions/transform/dense", gathered))
    return layer_norm_from(get, "cls/predictions/transform/LayerNorm", hidden)


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
    if "squad" in heads:
        out.update(squad_logits(get, sequence_output))
    return out
