"""NumPy reference of brightmart/albert_zh's original (post-LN) TF1 graph.

This is BERT with two changes, recognisable by the variable names:

* factorised word embeddings: the ``[V, E]`` lookup is multiplied by
  ``bert/embeddings/word_embeddings_2`` ``[E, H]`` (no bias) *before* the position and
  token-type embeddings (both width H) are added and the ``[H]`` LayerNorm is applied;
* one BERT-named block ``bert/encoder/layer_shared`` is applied ``num_hidden_layers`` times.

The MLM transform stays H -> H; its output is first mapped back to E with the transposed
``word_embeddings_2`` and then decoded with the ``[V, E]`` word embeddings, in that order as
upstream does. NSP is BERT's. The pre-LN variant (``ln_type: "preln"``) shares every name and
shape but computes something else, so it is refused here rather than mis-modelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2hf.verify.references.bert import LAYER_NAMES
from tf2hf.verify.references.common import (
    Getter,
    activation,
    add_position_and_type,
    attention_bias,
    check_heads,
    common_heads,
    layer_norm_from,
    mlm_transform,
    param,
    param_rows,
    post_ln_block,
    require,
    times_table_t,
)

SUPPORTED_HEADS = frozenset({"pooler", "mlm", "nsp", "classifier", "squad"})

SHARED_LAYER = "bert/encoder/layer_shared"


def check_layer_norm_type(config: dict[str, Any]) -> None:
    """Accept only the post-LN graph (``ln_type`` missing or ``"postln"``)."""
    ln_type = config.get("ln_type")
    if ln_type not in (None, "postln"):
        raise ValueError(
            f"brightmart ln_type '{ln_type}' is not the post-LN graph this reference models"
        )


def embed(get: Getter, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Embedding output ``[B, S, H]``: projected words plus type and position, layer-normed."""
    words = param_rows(get, "bert/embeddings/word_embeddings", inputs["input_ids"])
    projected = words @ param(get, "bert/embeddings/word_embeddings_2")
    summed = add_position_and_type(get, projected, inputs["token_type_ids"])
    return layer_norm_from(get, "bert/embeddings/LayerNorm", summed)


def encode(
    get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], act
) -> np.ndarray:
    """Sequence output ``[B, S, H]``: the shared block applied ``num_hidden_layers`` times."""
    num_layers = int(require(config, "num_hidden_layers"))
    num_heads = int(require(config, "num_attention_heads"))
    bias = attention_bias(inputs["input_mask"])
    x = embed(get, inputs)
    for _ in range(num_layers):
        x = post_ln_block(get, SHARED_LAYER, LAYER_NAMES, x, bias, num_heads, act)
    return x


def mlm_logits(
    get: Getter, sequence_output: np.ndarray, positions: np.ndarray, act
) -> np.ndarray:
    """MLM logits ``[B*K, V]`` = ``x · (W_word · W_2)ᵀ + output_bias``."""
    hidden = mlm_transform(get, sequence_output, positions, act)
    back_to_e = hidden @ param(get, "bert/embeddings/word_embeddings_2").T
    logits = times_table_t(back_to_e, get, "bert/embeddings/word_embeddings")
    return logits + param(get, "cls/predictions/output_bias")


def forward(
    get: Getter,
    config: dict[str, Any],
    inputs: dict[str, np.ndarray],
    *,
    gelu: str,
    heads: frozenset[str],
) -> dict[str, np.ndarray]:
    """Run the brightmart albert_zh (post-LN) graph; see :mod:`tf2hf.verify.references`."""
    check_heads(heads, SUPPORTED_HEADS, "brightmart/albert_zh")
    check_layer_norm_type(config)
    act = activation(gelu)
    sequence_output = encode(get, config, inputs, act)
    out = {"sequence_output": sequence_output}
    out.update(common_heads(get, sequence_output, heads, pair_head="nsp"))
    if "mlm" in heads:
        out["mlm_logits"] = mlm_logits(get, sequence_output, inputs["positions"], act)
    return out
