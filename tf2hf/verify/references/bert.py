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

from tf2hf.verify.references.blocks import WORDS, embed, stack
from tf2hf.verify.references.heads import forward_with_heads
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import layer_norm_epsilon
from tf2hf.verify.references.weights import Getter

SUPPORTED_HEADS = frozenset({"pooler", "mlm", "nsp", "classifier", "squad"})

#: The root (a hub module's ``module/``) is what stands in front of the word embeddings.
LAYOUT = Layout(anchors=(WORDS,))

#: Sub-scopes of ``bert/encoder/layer_{i}`` (brightmart's ``layer_shared`` uses them too).
LAYER_NAMES = {
    "self": "attention/self",
    "attention_output": "attention/output/dense",
    "attention_norm": "attention/output/LayerNorm",
    "intermediate": "intermediate/dense",
    "output": "output/dense",
    "output_norm": "output/LayerNorm",
}


def encode(
    get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], act
) -> np.ndarray:
    """Sequence output ``[B, S, H]`` of the embedding layer and all encoder layers."""
    return stack(get, config, inputs, embed(get, inputs, layer_norm_epsilon(config)), lambda index, _: [f"bert/encoder/layer_{index}"], LAYER_NAMES, act)


forward = forward_with_heads(encode, "google-research/bert", SUPPORTED_HEADS, pair_head="nsp")
