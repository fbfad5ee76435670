"""NumPy reference of tensorflow/models' TF2 BERT encoder (the 2020 ``TransformerEncoder``).

Variables are read by their object paths without the ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix and
the ``model/`` or ``encoder/`` root (:data:`LAYOUT` finds both): ``layer_with_weights-0/1/2`` word/position/type embeddings,
``-3`` the embedding LayerNorm, ``-4`` … ``-(L+3)`` the Transformer layers, ``-(L+4)`` the pooler.

The attention is computed on the 3-D kernels directly, head axis and all, as the einsum layers
do (``BSH,HND->BSND``, then ``BFND,NDH->BFH`` for the output projection), so this graph is
independent of the reshapes the converter applies. Keras LayerNormalization with the config's epsilon (1e-12),
the masked softmax's -10000 for padded keys, the activation named by ``gelu`` (tensorflow/models
computes the tanh form), and the pooler ``tanh(dense(first token))``.

Heads: a Keras model that applies one Dense layer to the encoder saves it as its next layer with
weights, beside the encoder's object (encoder ``…/layer_with_weights-K/``, head
``…/layer_with_weights-(K+1)/kernel [H, n]``). ``squad`` reads it as a span head
(``logits = sequence_output @ kernel + bias``; start = column 0, end = column 1), ``classifier``
as a classifier on the pooled output (``classifier_logits``) and on every token
(``token_logits``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from tf2hf.verify.references.blocks import attention_bias
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import activation, layer_norm_epsilon, softmax
from tf2hf.verify.references.weights import Getter, dense_from, layer_norm_from, param, require

SUPPORTED_HEADS = frozenset({"pooler", "squad", "classifier"})

#: ``tf.train.Checkpoint(model=encoder)`` or ``(encoder=encoder)`` roots every name at the
#: object's attribute and appends the value's own path to it.
LAYOUT = Layout(anchors=("layer_with_weights-0/embeddings",), suffix="/.ATTRIBUTES/VARIABLE_VALUE")


def _attention_output_scope(get: Getter, layer: str) -> str:
    try:
        get(f"{layer}/_attention_output_dense/kernel")
        return f"{layer}/_attention_output_dense"
    except KeyError:
        return f"{layer}/_attention_layer/_output_dense"


def _per_head(get: Getter, scope: str, x: np.ndarray) -> np.ndarray:
    """An einsum dense layer ``BSH,HND->BSND`` with its ``[N, D]`` bias."""
    return np.einsum("bsh,hnd->bsnd", x, param(get, f"{scope}/kernel")) + param(get, f"{scope}/bias")


def encoder_layer(get: Getter, layer: str, x: np.ndarray, bias: np.ndarray, act, eps: float) -> np.ndarray:
    attention = f"{layer}/_attention_layer"
    q = _per_head(get, f"{attention}/_query_dense", x)
    k = _per_head(get, f"{attention}/_key_dense", x)
    v = _per_head(get, f"{attention}/_value_dense", x)
    scores = np.einsum("btnd,bfnd->bnft", k, q) / math.sqrt(q.shape[-1])
    context = np.einsum("bnft,btnd->bfnd", softmax(scores + bias), v)
    out_scope = _attention_output_scope(get, layer)
    attended = np.einsum("bfnd,ndh->bfh", context, param(get, f"{out_scope}/kernel")) + param(get, f"{out_scope}/bias")
    x = layer_norm_from(get, f"{layer}/_attention_layer_norm", x + attended, eps)
    out = dense_from(get, f"{layer}/_output_dense", act(dense_from(get, f"{layer}/_intermediate_dense", x)))
    return layer_norm_from(get, f"{layer}/_output_layer_norm", out + x, eps)


def _dense_beside(get: Getter) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and bias of the layer after the encoder's own ``layer_with_weights-K``."""
    root = getattr(get, "root", "")
    found = re.search(r"layer_with_weights-(\d+)/$", root)
    if not found or not hasattr(get, "beside"):
        raise KeyError(f"a Dense head beside the encoder (the encoder is not a layer of a Keras model here: root {root!r})")
    scope = f"layer_with_weights-{int(found.group(1)) + 1}"
    return param(get.beside, f"{scope}/kernel"), param(get.beside, f"{scope}/bias")


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
    eps = layer_norm_epsilon(config)
    x = layer_norm_from(get, "layer_with_weights-3", x, eps)
    bias = attention_bias(inputs["input_mask"])
    for index in range(num_layers):
        x = encoder_layer(get, f"layer_with_weights-{index + 4}", x, bias, act, eps)
    out = {"sequence_output": x}
    if heads & {"pooler", "classifier"}:
        pooler = f"layer_with_weights-{num_layers + 4}"
        out["pooled_output"] = np.tanh(dense_from(get, pooler, x[:, 0, :]))
    if heads & {"squad", "classifier"}:
        kernel, bias = _dense_beside(get)
        if "squad" in heads:
            logits = x @ kernel + bias
            out["start_logits"], out["end_logits"] = logits[..., 0], logits[..., 1]
        if "classifier" in heads:
            out["classifier_logits"] = out["pooled_output"] @ kernel + bias
            out["token_logits"] = x @ kernel + bias
    return out
