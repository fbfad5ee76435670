"""NumPy reference of bert-for-tf2's ``BertModelLayer`` (BERT, without ALBERT's options).

What ``bert/embeddings.py``, ``bert/attention.py`` and ``bert/transformer.py`` compute: word +
token type (when built with ``use_token_type``) + position embeddings, params-flow's LayerNorm (epsilon 1e-12); per layer the
attention (``query_layer``, ``key_layer``, ``value_layer``; scores scaled by ``1/sqrt(head
size)``, ``-10000 * (1 - mask)`` added where a mask is given), ``attention_projector`` (dense,
residual, ``layer_norm``), ``intermediate_layer`` with the activation (params-flow's GELU, the tanh
formula), ``output_projector`` (dense, residual, ``layer_norm``). The sequence output is all it
returns: it has no pooler, so no ``pooled_output`` is computed or compared.

Variables are read by bert-for-tf2's own object paths under the root in front of the word
embeddings (``layer_with_weights-0/`` in a functional Keras model).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tf2hf.verify.references.heads import check_heads
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import activation, softmax
from tf2hf.verify.references.weights import Getter, dense_from, has_variable, param, require

ATTENTION = "self_attention_layer/attention_layer"
SUPPORTED_HEADS = frozenset({"pooler"})  # asked for by BertModel; nothing to compute (no pooler)

LAYOUT = Layout(anchors=("embeddings_layer/word_embeddings_layer/embeddings",), suffix="/.ATTRIBUTES/VARIABLE_VALUE")


def _norm(get: Getter, scope: str, x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = np.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * param(get, f"{scope}/gamma") + param(get, f"{scope}/beta")


def _layer(get: Getter, scope: str, x: np.ndarray, bias: np.ndarray, heads: int, act) -> np.ndarray:
    batch, seq, hidden = x.shape
    size = hidden // heads

    def split(t: np.ndarray) -> np.ndarray:
        return t.reshape(batch, seq, heads, size).transpose(0, 2, 1, 3)

    attn = f"{scope}/{ATTENTION}"
    q, k, v = (split(dense_from(get, f"{attn}/{n}_layer", x)) for n in ("query", "key", "value"))
    context = (softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + bias) @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
    projector = f"{scope}/self_attention_layer/attention_projector"
    x = _norm(get, f"{projector}/layer_norm", dense_from(get, f"{projector}/dense", context) + x)
    inner = act(dense_from(get, f"{scope}/intermediate_layer", x))
    return _norm(get, f"{scope}/output_projector/layer_norm", dense_from(get, f"{scope}/output_projector/dense", inner) + x)


def forward(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """``sequence_output`` only (bert-for-tf2 has no pooler)."""
    check_heads(heads, SUPPORTED_HEADS, "bert-for-tf2's BERT")
    act = activation(gelu)
    ids = np.asarray(inputs["input_ids"])
    seq = ids.shape[1]
    x = param(get, "embeddings_layer/word_embeddings_layer/embeddings")[ids]
    if has_variable(get, "embeddings_layer/token_type_embeddings_layer/embeddings"):  # use_token_type
        x = x + param(get, "embeddings_layer/token_type_embeddings_layer/embeddings")[np.asarray(inputs["token_type_ids"])]
    x = x + param(get, "embeddings_layer/position_embeddings_layer/embeddings")[None, :seq]
    x = _norm(get, "embeddings_layer/layer_norm_layer", x)
    bias = ((1.0 - np.asarray(inputs["input_mask"], dtype=np.float64)) * -10000.0)[:, None, None, :]
    heads_n = int(require(config, "num_attention_heads"))
    for index in range(int(require(config, "num_hidden_layers"))):
        x = _layer(get, f"encoders_layer/encoder_layers/{index}", x, bias, heads_n, act)
    return {"sequence_output": x}


def forward_albert(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """bert-for-tf2's ALBERT (``embedding_size``, ``project_position_embeddings`` as by default):
    E-wide embeddings and LayerNorm, then ``word_embeddings_projector_layer`` (``x @ projector +
    bias``), then the one ``encoders_layer/shared_layer`` run ``num_hidden_layers`` times, or
    without ``shared_layer`` each ``encoders_layer/encoder_layers/N`` once. ``sequence_output`` only."""
    check_heads(heads, SUPPORTED_HEADS, "bert-for-tf2's ALBERT")
    act = activation(gelu)
    ids = np.asarray(inputs["input_ids"])
    x = param(get, "embeddings_layer/word_embeddings_layer/embeddings")[ids]
    x = x + param(get, "embeddings_layer/token_type_embeddings_layer/embeddings")[np.asarray(inputs["token_type_ids"])]
    x = x + param(get, "embeddings_layer/position_embeddings_layer/embeddings")[None, : ids.shape[1]]
    x = _norm(get, "embeddings_layer/layer_norm_layer", x)
    projector = "embeddings_layer/word_embeddings_projector_layer"
    x = x @ param(get, f"{projector}/projector") + param(get, f"{projector}/bias")
    bias = ((1.0 - np.asarray(inputs["input_mask"], dtype=np.float64)) * -10000.0)[:, None, None, :]
    heads_n = int(require(config, "num_attention_heads"))
    shared = has_variable(get, f"encoders_layer/shared_layer/{ATTENTION}/query_layer/kernel")
    for index in range(int(require(config, "num_hidden_layers"))):
        x = _layer(get, "encoders_layer/shared_layer" if shared else f"encoders_layer/encoder_layers/{index}", x, bias, heads_n, act)
    return {"sequence_output": x}
