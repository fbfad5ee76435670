"""NumPy reference of transformers' TF BERT classes (``TFBert*``, transformers 4.x), as TF ran them.

What ``modeling_tf_bert.py`` computes: embeddings (word + position + token type, LayerNorm),
``L`` post-LN layers whose attention adds ``(1 - mask) * -10000`` to the scores, the pooler
``tanh(dense(first token))``, and the heads of the classes: ``classifier`` on the pooled output
(sequence classification) or on every token (token classification), ``qa_outputs`` split into
start and end logits, the MLM head (dense, activation, LayerNorm, then the word embeddings
transposed plus ``predictions/bias``), the NSP head on the pooled output. Every kernel is a
Keras Dense ``[in, out]``; LayerNorm's epsilon is the config's ``layer_norm_eps``.

Variables are found by this module itself, not through the converter's renames: each weight is
listed under both names TF gives it — its variable name, as ``tf_model.h5`` records it
(``…/bert/encoder/layer_._0/attention/self/query/kernel:0``), and its object path in a Keras
checkpoint (``…/bert/encoder/layer/0/attention/self_attention/query/kernel/.ATTRIBUTES/VARIABLE_VALUE``)
— under the root in front of the encoder's first query kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2hf.verify.references.heads import check_heads
from tf2hf.verify.references.keras_spelling import CKPT_SUFFIX, base_outputs, bert_layer, embedding_names, start, task_outputs
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import activation
from tf2hf.verify.references.weights import Getter, require

SUPPORTED_HEADS = frozenset({"pooler", "mlm", "nsp", "classifier", "squad", "choice", "beside"})

ANCHOR = ("bert/encoder/layer_._0/attention/self/query/kernel", "bert/encoder/layer/0/attention/self_attention/query/kernel")
LAYOUT = Layout(anchors=(f"{ANCHOR[0]}:0", f"{ANCHOR[1]}{CKPT_SUFFIX}"))

# (h5 variable name, Keras checkpoint object path), relative to the model, per weight.
_NAMES = {
    **embedding_names("bert"),
    "pooler": ("bert/pooler/dense", "bert/pooler/dense"),
    "mlm_dense": ("mlm___cls/predictions/transform/dense", "mlm/predictions/transform/dense"),
    "mlm_norm": ("mlm___cls/predictions/transform/LayerNorm", "mlm/predictions/transform/LayerNorm"),
    "mlm_bias": ("mlm___cls/predictions/bias", "mlm/predictions/bias"),
    "nsp": ("nsp___cls/seq_relationship", "nsp/seq_relationship"),
    "classifier": ("classifier", "classifier"),
    "qa": ("qa_outputs", "qa_outputs"),
}
def forward(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """``sequence_output``, and per head asked for: ``pooled_output``, ``mlm_logits`` (every
    position), ``nsp_logits``, ``classifier_logits`` (pooled) and ``token_logits``,
    ``start_logits``/``end_logits``, ``choice_logits`` (``[batch, choices]`` for inputs
    ``[batch, choices, seq]``), or ``classifier_logits`` of the user's Dense beside the model."""
    check_heads(heads, SUPPORTED_HEADS, "transformers' TF BERT")
    w, x, bias, eps = start(get, ANCHOR, config, inputs, _NAMES)
    act = activation(gelu)
    for index in range(int(require(config, "num_hidden_layers"))):
        x = bert_layer(w, "bert", index, x, bias, int(require(config, "num_attention_heads")), act, eps)
    out, pooled = base_outputs(w, x, heads, _NAMES, act, eps)
    if "nsp" in heads and pooled is not None:
        out["nsp_logits"] = w.dense(_NAMES["nsp"], pooled)
    out.update(task_outputs(w, x, pooled, heads, _NAMES["classifier"], _NAMES["qa"], np.shape(inputs["input_ids"])[:-1]))
    if "beside" in heads and pooled is not None:  # the user's Dense on the pooled output
        out["classifier_logits"] = w.beside(pooled)
    return out
