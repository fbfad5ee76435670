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
from tf2hf.verify.references.blocks import WORDS, embed, stack
from tf2hf.verify.references.heads import decode, forward_with_heads, mlm_transform
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import layer_norm_epsilon
from tf2hf.verify.references.weights import Getter, param

SUPPORTED_HEADS = frozenset({"pooler", "mlm", "nsp", "classifier", "squad"})

#: The root (a hub module's ``module/``) is what stands in front of the word embeddings.
LAYOUT = Layout(anchors=(WORDS,))

SHARED_LAYER = "bert/encoder/layer_shared"
PROJECTION = "bert/embeddings/word_embeddings_2"


def check_layer_norm_type(config: dict[str, Any]) -> None:
    """Accept only the post-LN graph (``ln_type`` missing or ``"postln"``)."""
    ln_type = config.get("ln_type")
    if ln_type not in (None, "postln"):
        raise ValueError(
            f"brightmart ln_type '{ln_type}' is not the post-LN graph this reference models"
        )


def encode(
    get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], act
) -> np.ndarray:
    """Sequence output ``[B, S, H]``: the shared block applied ``num_hidden_layers`` times."""
    x = embed(get, inputs, layer_norm_epsilon(config), projection=PROJECTION)
    return stack(get, config, inputs, x, lambda index, _: [SHARED_LAYER], LAYER_NAMES, act)


def mlm_logits(
    get: Getter, sequence_output: np.ndarray, positions: np.ndarray, act, eps: float
) -> np.ndarray:
    """MLM logits ``[B*K, V]`` = ``x · (W_word · W_2)ᵀ + output_bias``."""
    hidden = mlm_transform(get, sequence_output, positions, act, eps)
    return decode(get, hidden @ param(get, PROJECTION).T)


forward = forward_with_heads(
    encode, "brightmart/albert_zh", SUPPORTED_HEADS, pair_head="nsp", mlm=mlm_logits, check_config=check_layer_norm_type
)
