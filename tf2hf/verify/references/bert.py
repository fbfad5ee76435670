"""NumPy reference of the google-research/bert TF1 graph (``modeling.py`` + heads).

Embeddings: word + token-type + position, then ``bert/embeddings/LayerNorm``. Encoder:
``num_hidden_layers`` post-LN blocks ``bert/encoder/layer_{i}``. Heads: pooler (first token,
dense + tanh), MLM (``cls/predictions``, tied to the word embeddings), NSP
(``cls/seq_relationship``), run_classifier (top-level ``output_*``) and run_squad
(``cls/squad``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

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

#: Sub-scopes of ``bert/encoder/layer_{i}`` (brightmart's ``layer_shared`` uses them too).
LAYER_NAMES = {
    "self": "attention/self",
    "attention_output": "attention/output/dense",
    "attention_norm": "attention/output/LayerNorm",
    "intermediate": "intermediate/dense",
    "output": "output/dense",
    "output_norm": "output/LayerNorm",
}


def embed(get: Getter, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Embedding output ``[B, S, H]``: looked-up words plus type and position, layer-normed."""
    words = param_rows(get, "bert/embeddings/word_embeddings", inputs["input_ids"])
    summed = add_position_and_type(get, words, inputs["token_type_ids"])
    return layer_norm_from(get, "bert/embeddings/LayerNorm", summed)


def encode(
    get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], act
) -> np.ndarray:
    """Sequence output ``[B, S, H]`` of the embedding layer and all encoder layers."""
    num_layers = int(require(config, "num_hidden_layers"))
    num_heads = int(require(config, "num_attention_heads"))
    bias = attention_bias(inputs["input_mask"])
    x = embed(get, inputs)
    for index in range(num_layers):
        x = post_ln_block(
            get, f"bert/encoder/layer_{index}", LAYER_NAMES, x, bias, num_heads, act
        )
    return x


def mlm_logits(
    get: Getter, sequence_output: np.ndarray, positions: np.ndarray, act
) -> np.ndarray:
    """MLM logits ``[B*K, V]`` at ``positions``, decoding with the word embeddings ``[V, H]``."""
    hidden = mlm_transform(get, sequence_output, positions, act)
    logits = times_table_t(hidden, get, "bert/embeddings/word_embeddings")
    return logits + param(get, "cls/predictions/output_bias")


def forward(
    get: Getter,
    config: dict[str, Any],
    inputs: dict[str, np.ndarray],
    *,
    gelu: str,
    heads: frozenset[str],
) -> dict[str, np.ndarray]:
    """Run the BERT graph on ``inputs``; see :mod:`tf2hf.verify.references` for the contract."""
    check_heads(heads, SUPPORTED_HEADS, "google-research/bert")
    act = activation(gelu)
    sequence_output = encode(get, config, inputs, act)
    out = {"sequence_output": sequence_output}
    out.update(common_heads(get, sequence_output, heads, pair_head="nsp"))
    if "mlm" in heads:
        out["mlm_logits"] = mlm_logits(get, sequence_output, inputs["positions"], act)
    return out
