"""NumPy reference of transformers' TF ALBERT classes (``TFAlbert*``, transformers 4.x).

What ``modeling_tf_albert.py`` computes: E-wide embeddings and their LayerNorm, the projection
``embedding_hidden_mapping_in`` to H, then ``num_hidden_layers`` layers, layer ``l`` running group
``l * G // L`` (all its inner layers in turn: attention with ``(1 - mask) * -10000`` on the
scores, ``attention/dense`` + ``attention/LayerNorm``, ``ffn`` with the activation, ``ffn_output``
+ ``full_layer_layer_norm``); the pooler ``tanh(dense(first token))``; the MLM head (dense,
activation, LayerNorm, word embeddings transposed plus ``predictions/decoder/bias`` — the bias
TF adds; ``predictions/bias`` is never read here); ``sop_classifier/classifier`` on the pooled
output; ``classifier`` (pooled, or per token; one-wide per choice) and ``qa_outputs``; the user's
Dense beside the model in a Keras checkpoint of their own model (``beside``).

Variables are found by both of their TF names — the h5 variable name and the Keras checkpoint
object path (where ``decoder/bias`` is spelled ``decoder.Sbias``) — under the root in front of
the first layer's query kernel, as listed here, never through the converter's renames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2hf.verify.references.heads import check_heads
from tf2hf.verify.references.keras_spelling import CKPT_SUFFIX, Pair, Spelling, base_outputs, embedding_names, start, task_outputs
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import activation
from tf2hf.verify.references.weights import Getter, require

SUPPORTED_HEADS = frozenset({"pooler", "mlm", "sop", "classifier", "squad", "choice", "beside"})

ANCHOR = ("albert/encoder/albert_layer_groups_._0/albert_layers_._0/attention/query/kernel",
          "albert/encoder/albert_layer_groups/0/albert_layers/0/attention/query/kernel")
LAYOUT = Layout(anchors=(f"{ANCHOR[0]}:0", f"{ANCHOR[1]}{CKPT_SUFFIX}"))

# (h5 variable name, Keras checkpoint object path) per weight, relative to the model.
_NAMES = {
    **embedding_names("albert"),
    "mapping": ("albert/encoder/embedding_hidden_mapping_in", "albert/encoder/embedding_hidden_mapping_in"),
    "pooler": ("albert/pooler", "albert/pooler"),
    "mlm_dense": ("predictions/dense", "predictions/dense"),
    "mlm_norm": ("predictions/LayerNorm", "predictions/LayerNorm"),
    "mlm_bias": ("predictions/decoder/bias", "predictions/decoder.Sbias"),
    "sop": ("sop_classifier/classifier", "sop_classifier/classifier"),
    "classifier": ("classifier", "classifier"),
    "qa": ("qa_outputs", "qa_outputs"),
}


def _sub(group: int, inner: int, sub: str) -> Pair:
    return (f"albert/encoder/albert_layer_groups_._{group}/albert_layers_._{inner}/{sub}",
            f"albert/encoder/albert_layer_groups/{group}/albert_layers/{inner}/{sub}")


def _inner_layer(w: Spelling, g: int, j: int, x: np.ndarray, bias: np.ndarray, heads: int, act, eps: float) -> np.ndarray:
    context = w.attention(_sub(g, j, "attention/query"), _sub(g, j, "attention/key"), _sub(g, j, "attention/value"), x, bias, heads)
    x = w.norm(_sub(g, j, "attention/LayerNorm"), w.dense(_sub(g, j, "attention/dense"), context) + x, eps)
    ffn = w.dense(_sub(g, j, "ffn_output"), act(w.dense(_sub(g, j, "ffn"), x)))
    return w.norm(_sub(g, j, "full_layer_layer_norm"), ffn + x, eps)


def forward(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """``sequence_output`` and the asked heads' outputs (as :mod:`.transformers_tf_bert`, with
    ``sop_logits`` for the sentence-order head)."""
    check_heads(heads, SUPPORTED_HEADS, "transformers' TF ALBERT")
    w, x, bias, eps = start(get, ANCHOR, config, inputs, _NAMES)
    act = activation(gelu)
    x = w.dense(_NAMES["mapping"], x)
    layers, groups = int(require(config, "num_hidden_layers")), int(require(config, "num_hidden_groups"))
    inner, n_heads = int(require(config, "inner_group_num")), int(require(config, "num_attention_heads"))
    for index in range(layers):
        group = int(index / (layers / groups))  # TFAlbertTransformer's group index
        for j in range(inner):
            x = _inner_layer(w, group, j, x, bias, n_heads, act, eps)
    out, pooled = base_outputs(w, x, heads, _NAMES, act, eps)
    if "sop" in heads and pooled is not None:
        out["sop_logits"] = w.dense(_NAMES["sop"], pooled)
    out.update(task_outputs(w, x, pooled, heads, _NAMES["classifier"], _NAMES["qa"], np.shape(inputs["input_ids"])[:-1]))
    if "beside" in heads and pooled is not None:  # the user's Dense on the pooled output
        out["classifier_logits"] = w.beside(pooled)
    return out
