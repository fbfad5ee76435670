"""NumPy reference of transformers' TF ELECTRA classes (``TFElectra*``, transformers 4.x).

``modeling_tf_electra.py``: E-wide embeddings and their LayerNorm, ``embeddings_project`` to H
when the checkpoint has it (E != H), BERT's post-LN layers with ``(1 - mask) * -10000`` on the
scores, then the head of the class:

* ``discriminator``: ``dense_prediction(act(dense(x)))`` squeezed to one logit per token;
* ``mlm`` (the generator): ``generator_predictions`` — ``dense`` to E, the erf GELU (TF names
  ``"gelu"`` there, whatever ``hidden_act`` is), ``LayerNorm`` — then the word embeddings
  transposed plus ``generator_lm_head/bias``;
* ``classifier``: the first token, ``classifier/dense``, the erf GELU, ``classifier/out_proj``;
* ``token``: the ``classifier`` Dense on every token; ``squad``: ``qa_outputs`` split in two;
* ``choice``: TFSequenceSummary (the config's ``summary_type`` ``"first"``, ``summary_use_proj``,
  ``summary_activation``) then the one-wide ``classifier``, reshaped to ``[batch, choices]`` for
  inputs ``[batch, choices, seq]``.

Variables by both of their TF names (h5 variable name, Keras object path), listed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2hf.verify.references.heads import NotModelled
from tf2hf.verify.references.keras_spelling import CKPT_SUFFIX, bert_layer, embedding_names, start
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import activation
from tf2hf.verify.references.weights import Getter, require

SUPPORTED_HEADS = frozenset({"discriminator", "mlm", "classifier", "token", "squad", "choice"})

ANCHOR = ("electra/encoder/layer_._0/attention/self/query/kernel", "electra/encoder/layer/0/attention/self_attention/query/kernel")
LAYOUT = Layout(anchors=(f"{ANCHOR[0]}:0", f"{ANCHOR[1]}{CKPT_SUFFIX}"))

# Every head's layers have the same name in both spellings.
_NAMES = {
    **embedding_names("electra"),
    **{key: (name, name) for key, name in (
        ("project", "electra/embeddings_project"),
        ("dense", "discriminator_predictions/dense"),
        ("prediction", "discriminator_predictions/dense_prediction"),
        ("generator_dense", "generator_predictions/dense"),
        ("generator_norm", "generator_predictions/LayerNorm"),
        ("generator_bias", "generator_lm_head/bias"),
        ("head_dense", "classifier/dense"),
        ("head_out", "classifier/out_proj"),
        ("classifier", "classifier"),
        ("qa", "qa_outputs"),
        ("summary", "sequence_summary/summary"),
    )},
}

#: transformers' TF activation names (get_tf_activation) -> the reference's formulas.
_TF_ACTIVATION = {"gelu": "erf", "gelu_new": "tanh", "relu": "relu"}


def _summary(w, x: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """TFSequenceSummary as ELECTRA configures it: the first token, projected, activated."""
    kind, project = config.get("summary_type", "first"), config.get("summary_use_proj", True)
    name = config.get("summary_activation")
    if kind != "first" or not project or (name and name not in _TF_ACTIVATION and name != "tanh"):
        raise NotModelled(f"no reference for sequence_summary with summary_type={kind!r}, summary_use_proj={project!r}, summary_activation={name!r}")
    out = w.dense(_NAMES["summary"], x[:, 0])
    if name == "tanh":
        return np.tanh(out)
    return activation(_TF_ACTIVATION[name])(out) if name else out


def _heads(w, x: np.ndarray, heads: frozenset[str], config: dict[str, Any], act, eps: float, lead: tuple[int, ...]) -> dict[str, np.ndarray]:
    erf = activation("erf")  # the generator and classification heads name "gelu" in TF's code
    out: dict[str, np.ndarray] = {}
    if "discriminator" in heads:
        out["discriminator_logits"] = w.dense(_NAMES["prediction"], act(w.dense(_NAMES["dense"], x)))[..., 0]
    if "mlm" in heads:
        hidden = w.norm(_NAMES["generator_norm"], erf(w.dense(_NAMES["generator_dense"], x)), eps)
        out["mlm_logits"] = hidden @ w(_NAMES["word"]).T + w(_NAMES["generator_bias"])
    if "classifier" in heads:
        out["classifier_logits"] = w.dense(_NAMES["head_out"], erf(w.dense(_NAMES["head_dense"], x[:, 0])))
    if "token" in heads:
        out["token_logits"] = w.dense(_NAMES["classifier"], x)
    if "squad" in heads:
        spans = w.dense(_NAMES["qa"], x)
        out["start_logits"], out["end_logits"] = spans[..., 0], spans[..., 1]
    if "choice" in heads:
        out["choice_logits"] = w.dense(_NAMES["classifier"], _summary(w, x, config)).reshape(lead or (-1,))
    return out


def forward(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """``sequence_output`` and each asked head's logits (module docstring)."""
    if set(heads) - SUPPORTED_HEADS:
        raise ValueError(f"transformers' TF ELECTRA has no {sorted(set(heads) - SUPPORTED_HEADS)} head; its heads are {sorted(SUPPORTED_HEADS)}")
    w, x, bias, eps = start(get, ANCHOR, config, inputs, _NAMES)
    act = activation(gelu)
    try:
        x = w.dense(_NAMES["project"], x)
    except KeyError:
        pass  # E == H: neither framework has the projection
    for index in range(int(require(config, "num_hidden_layers"))):
        x = bert_layer(w, "electra", index, x, bias, int(require(config, "num_attention_heads")), act, eps)
    return {"sequence_output": x, **_heads(w, x, frozenset(heads), config, act, eps, np.shape(inputs["input_ids"])[:-1])}
