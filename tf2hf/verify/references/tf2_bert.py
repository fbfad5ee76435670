"""NumPy reference of tensorflow/models' TF2 BERT encoder (the 2020 ``TransformerEncoder``).

Variables are read by their object paths without the ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix and
the ``model/`` or ``encoder/`` root: ``layer_with_weights-0/1/2`` word/position/type embeddings,
``-3`` the embedding LayerNorm, ``-4`` … ``-(L+3)`` the Transformer layers, ``-(L+4)`` the pooler.

The attention is computed on the 3-D kernels directly, head axis and all, as the einsum layers
do (``BSH,HND->BSND``, then ``BFND,NDH->BFH`` for the output projection), so this graph is
independent of the reshapes the converter applies. Keras LayerNormalization with epsilon 1e-12,
the masked softmax's -10000 for padded keys, the activation named by ``gelu`` (tensorflow/models
computes the tanh form), and the pooler ``tanh(dense(first token))``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tf2hf.verify.references.common import Getter, activation, attention_bias, layer_norm, param, require, softmax

SUPPORTED_HEADS = frozenset({"pooler"})


def _layer_norm(get: Getter, scope: str, x: np.ndarray) -> np.ndarray:
    return layer_norm(x, param(get, f"{scope}/gamma"), param(get, f"{scope}/beta"))


def _attention_output_scope(get: Getter, layer: str) -> str:
    try:
        get(f"{layer}/_attention_output_dense/kernel")
        return f"{layer}/_attention_output_dense"
    except KeyError:
        return f"{layer}/_attention_layer/_output_dense"


def encoder_layer(get: Getter, layer: str, x: np.ndarray, bias: np.ndarray, act) -> np.ndarray:
    attention = f"{layer}/_attention_layer"
    q = np.einsum("bsh,hnd->bsnd", x, param(get, f"{attention}/_query_dense/kernel")) + param(get, f"{attention}/_query_dense/bias")
    k = np.einsum("bsh,hnd->bsnd", x, param(get, f"{attention}/_key_dense/kernel")) + param(get, f"{attention}/_key_dense/bias")
    v = np.einsum("bsh,hnd->bsnd", x, param(get, f"{attention}/_value_dense/kernel")) + param(get, f"{attention}/_value_dense/bias")
    scores = np.einsum("btnd,bfnd->bnft", k, q) / math.sqrt(q.shape[-1])
    context = np.einsum("bnft,btnd->bfnd", softmax(scores + bias), v)
    out_scope = _attention_output_scope(get, layer)
    attended = np.einsum("bfnd,ndh->bfh", context, param(get, f"{out_scope}/kernel")) + param(get, f"{out_scope}/bias")
    x = _layer_norm(get, f"{layer}/_attention_layer_norm", x + attended)
    hidden = act(x @ param(get, f"{layer}/_intermediate_dense/kernel") + param(get, f"{layer}/_intermediate_dense/bias"))
    out = hidden @ param(get, f"{layer}/_output_dense/kernel") + param(get, f"{layer}/_output_dense/bias")
    return _layer_norm(get, f"{layer}/_output_layer_norm", out + x)


def forward(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """``sequence_output`` and, when asked, ``pooled_output``."""
    unknown = set(heads) - SUPPORTED_HEADS
    if unknown:
        raise ValueError(f"the TF2 BERT encoder has no {sorted(unknown)} head; its heads are {sorted(SUPPORTED_HEADS)}")
    act = activation(gelu)
    num_layers = int(require(config, "num_hidden_layers"))
    ids = np.asarray(inputs["input_ids"])
    seq = ids.shape[1]
    positions = param(get, "layer_with_weights-1/embeddings")
    if seq > positions.shape[0]:
        raise ValueError(f"sequence length {seq} exceeds the {positions.shape[0]} position embeddings")
    x = param(get, "layer_with_weights-0/embeddings")[ids] + positions[None, :seq, :]
    x = x + param(get, "layer_with_weights-2/embeddings")[np.asarray(inputs["token_type_ids"])]
    x = _layer_norm(get, "layer_with_weights-3", x)
    bias = attention_bias(inputs["input_mask"])
    for index in range(num_layers):
        x = encoder_layer(get, f"layer_with_weights-{index + 4}", x, bias, act)
    out = {"sequence_output": x}
    if "pooler" in heads:
        pooler = f"layer_with_weights-{num_layers + 4}"
        out["pooled_output"] = np.tanh(x[:, 0, :] @ param(get, f"{pooler}/kernel") + param(get, f"{pooler}/bias"))
    return out
