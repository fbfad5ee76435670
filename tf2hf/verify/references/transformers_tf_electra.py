"""NumPy reference of transformers' TF ELECTRA discriminator (``TFElectraForPreTraining``).

``modeling_tf_electra.py``: E-wide embeddings and their LayerNorm, ``embeddings_project`` to H
when the checkpoint has it (E != H), BERT's post-LN layers with ``(1 - mask) * -10000`` on the
scores, and the discriminator head ``dense_prediction(act(dense(x)))`` squeezed to one logit per
token. Variables by both of their TF names (h5 variable name, Keras object path), listed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2hf.verify.references.keras_spelling import CKPT_SUFFIX, bert_layer, embedding_names, start
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import activation
from tf2hf.verify.references.weights import Getter, require

ANCHOR = ("electra/encoder/layer_._0/attention/self/query/kernel", "electra/encoder/layer/0/attention/self_attention/query/kernel")
LAYOUT = Layout(anchors=(f"{ANCHOR[0]}:0", f"{ANCHOR[1]}{CKPT_SUFFIX}"))

_NAMES = {
    **embedding_names("electra"),
    "project": ("electra/embeddings_project", "electra/embeddings_project"),
    "dense": ("discriminator_predictions/dense", "discriminator_predictions/dense"),
    "prediction": ("discriminator_predictions/dense_prediction", "discriminator_predictions/dense_prediction"),
}


def forward(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """``sequence_output`` and, for the ``discriminator`` head, ``discriminator_logits``."""
    if set(heads) - {"discriminator"}:
        raise ValueError(f"transformers' TF ELECTRA discriminator has no {sorted(set(heads) - {'discriminator'})} head")
    w, x, bias, eps = start(get, ANCHOR, config, inputs, _NAMES)
    act = activation(gelu)
    try:
        x = w.dense(_NAMES["project"], x)
    except KeyError:
        pass  # E == H: neither framework has the projection
    for index in range(int(require(config, "num_hidden_layers"))):
        x = bert_layer(w, "electra", index, x, bias, int(require(config, "num_attention_heads")), act, eps)
    out = {"sequence_output": x}
    if "discriminator" in heads:
        out["discriminator_logits"] = w.dense(_NAMES["prediction"], act(w.dense(_NAMES["dense"], x)))[..., 0]
    return out
