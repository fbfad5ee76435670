"""The pieces of BERT's TF1 graph every reference shares: embeddings, attention, the post-LN block
and the stack of blocks.

google-research/bert, google-research/albert, brightmart/albert_zh and google-research/electra
all build these with BERT's ``modeling.py`` code, under different variable names; the families'
modules say which names and which blocks run in which order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from tf2hf.verify.references.numerics import f64, layer_norm_epsilon, softmax
from tf2hf.verify.references.weights import Getter, dense_from, layer_norm_from, param, param_rows, require

Activation = Callable[[np.ndarray], np.ndarray]

#: Upstream BERT/ALBERT turn the 0/1 input mask into an additive bias ``(1 - mask) * -10000``
#: rather than -inf. Masked keys still get exactly zero weight (``exp(-10000)`` underflows),
#: but when every key of a row is masked the constant shift cancels in the softmax and the row
#: attends as if unmasked; transformers adds the dtype's minimum instead, which swamps the
#: scores and gives a uniform row. The two agree whenever a row keeps one unmasked key.
MASK_PENALTY = -10000.0

EMBEDDINGS = "bert/embeddings"
#: BERT's word embeddings: looked up by the embeddings, decoded with by the MLM heads (tied).
WORDS = f"{EMBEDDINGS}/word_embeddings"


# --- embeddings ----------------------------------------------------------------------------


def add_position_and_type(
    get: Getter, x: np.ndarray, token_type_ids: np.ndarray, scope: str = EMBEDDINGS
) -> np.ndarray:
    """Add the token-type and position embeddings of ``scope`` to ``x`` [B, S, W].

    Position ``p`` gets row ``p`` of the table (upstream slices the first ``S`` rows).
    """
    seq = x.shape[1]
    types = param(get, f"{scope}/token_type_embeddings")
    positions = param(get, f"{scope}/position_embeddings")
    if seq > positions.shape[0]:
        raise ValueError(
            f"sequence length {seq} exceeds the {positions.shape[0]} position embeddings"
        )
    return x + types[np.asarray(token_type_ids)] + positions[None, :seq, :]


def embed(get: Getter, inputs: Mapping[str, np.ndarray], eps: float, *, projection: str | None = None) -> np.ndarray:
    """``bert/embeddings``' output: looked-up words plus type and position, layer-normed (with
    the variance epsilon ``eps``).

    ``projection`` names a ``[E, H]`` matrix the looked-up words are multiplied by before
    anything is added (brightmart's factorised embeddings).
    """
    words = param_rows(get, WORDS, inputs["input_ids"])
    if projection is not None:
        words = words @ param(get, projection)
    summed = add_position_and_type(get, words, inputs["token_type_ids"])
    return layer_norm_from(get, f"{EMBEDDINGS}/LayerNorm", summed, eps)


# --- attention and the transformer block ---------------------------------------------------


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
    act: Activation,
    eps: float,
) -> np.ndarray:
    """One post-LN transformer block: attention, residual + LN, FFN, residual + LN (variance
    epsilon ``eps``).

    BERT, brightmart and Google ALBERT compute the same block under different variable
    names; ``names`` maps the roles ``self``, ``attention_output``, ``attention_norm``,
    ``intermediate``, ``output`` and ``output_norm`` to sub-scopes of ``scope``.
    """
    context = self_attention(get, f"{scope}/{names['self']}", x, bias, num_heads)
    attended = dense_from(get, f"{scope}/{names['attention_output']}", context)
    attended = layer_norm_from(get, f"{scope}/{names['attention_norm']}", attended + x, eps)
    hidden = act(dense_from(get, f"{scope}/{names['intermediate']}", attended))
    out = dense_from(get, f"{scope}/{names['output']}", hidden)
    return layer_norm_from(get, f"{scope}/{names['output_norm']}", out + attended, eps)


def stack(
    get: Getter,
    config: Mapping[str, Any],
    inputs: Mapping[str, np.ndarray],
    x: np.ndarray,
    blocks: Callable[[int, int], Iterable[str]],
    names: Mapping[str, str],
    act: Activation,
) -> np.ndarray:
    """``x`` through the encoder: for each of the config's ``num_hidden_layers`` layers ``i``,
    the post-LN blocks at the scopes ``blocks(i, num_layers)``, in order, with the config's
    LayerNorm epsilon.

    The layer and head counts are the config's: nothing in a TF1 checkpoint records the head
    count, and shared-weight layouts (ALBERT, brightmart) do not record the layer count.
    """
    num_layers = int(require(config, "num_hidden_layers"))
    num_heads = int(require(config, "num_attention_heads"))
    bias = attention_bias(inputs["input_mask"])
    eps = layer_norm_epsilon(config)
    for index in range(num_layers):
        for scope in blocks(index, num_layers):
            x = post_ln_block(get, scope, names, x, bias, num_heads, act, eps)
    return x
