"""NumPy reference of the google-research/albert TF1 graph (``modeling.py`` + heads).

Also covers Google's own Chinese ALBERT and brightmart's ``*_google_zh`` releases, which use
this code. Differences from BERT:

* embeddings (word, position, token type) and their LayerNorm have width E; when E differs
  from H, ``bert/encoder/embedding_hidden_mapping_in`` projects E -> H (TF only creates it
  then, so its absence means no projection);
* layer ``i`` runs the blocks of group ``int(i / num_hidden_layers * num_hidden_groups)``,
  i.e. every ``inner_group_{j}`` of that group in order, each a post-LN block named
  ``attention_1/...``, ``LayerNorm``, ``ffn_1/intermediate/...``, ``LayerNorm_1``;
* the MLM transform maps H -> E and decodes with the [V, E] word embeddings;
* ``cls/seq_relationship`` is sentence-order prediction (reported as ``sop_logits``).

E, H and the group layout come from variable shapes and names, because released configs often
lack ``embedding_size`` or carry defaults that do not match the checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2hf.verify.references.blocks import WORDS, embed, stack
from tf2hf.verify.references.heads import forward_with_heads
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import layer_norm_epsilon
from tf2hf.verify.references.weights import Getter, count_indexed, dense_from

SUPPORTED_HEADS = frozenset({"pooler", "mlm", "sop", "classifier", "squad"})

#: The root (a hub module's ``module/``) is what stands in front of the word embeddings.
#: modeling.AlbertModel takes a ``scope`` argument (default ``"bert"``); users who passed
#: ``scope="albert"`` have the whole encoder under ``albert/``.
LAYOUT = Layout(anchors=(WORDS,), scope_spellings={"bert/": ("albert/",)})

TRANSFORMER = "bert/encoder/transformer"

#: Sub-scopes of ``{TRANSFORMER}/group_{g}/inner_group_{j}``. The attention LayerNorm sits
#: directly in the inner group (not under ``attention_1``), and the FFN output dense is nested
#: inside ``ffn_1/intermediate``.
BLOCK_NAMES = {
    "self": "attention_1/self",
    "attention_output": "attention_1/output/dense",
    "attention_norm": "LayerNorm",
    "intermediate": "ffn_1/intermediate/dense",
    "output": "ffn_1/intermediate/output/dense",
    "output_norm": "LayerNorm_1",
}

_QUERY = "attention_1/self/query/kernel"


def group_layout(get: Getter) -> tuple[int, int]:
    """``(num_groups, inner_groups_per_group)`` found by probing variable names.

    The config's ``num_hidden_groups``/``inner_group_num`` are not consulted: the checkpoint is
    what the graph ran with. (Checking the config against it is the converter's job.)
    """
    groups = count_indexed(get, f"{TRANSFORMER}/group_{{}}/inner_group_0/{_QUERY}")
    inner = count_indexed(get, f"{TRANSFORMER}/group_0/inner_group_{{}}/{_QUERY}")
    if groups == 0 or inner == 0:
        raise KeyError(f"no ALBERT transformer blocks found under '{TRANSFORMER}/group_0'")
    return groups, inner


def encode(
    get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], act
) -> np.ndarray:
    """Sequence output ``[B, S, H]``: the embeddings (width E), projected to H when E differs,
    then layer ``i`` runs every inner group of group ``int(i / num_hidden_layers * groups)``."""
    groups, inner = group_layout(get)
    hidden_size = get(f"{TRANSFORMER}/group_0/inner_group_0/{_QUERY}").shape[0]
    x = embed(get, inputs, layer_norm_epsilon(config))
    if x.shape[-1] != hidden_size:
        x = dense_from(get, "bert/encoder/embedding_hidden_mapping_in", x)

    def blocks(index: int, num_layers: int) -> list[str]:
        group = int(index / num_layers * groups)
        return [f"{TRANSFORMER}/group_{group}/inner_group_{j}" for j in range(inner)]

    return stack(get, config, inputs, x, blocks, BLOCK_NAMES, act)


# The MLM head has BERT's names and graph (its transform maps H -> E, decoding with the [V, E] table).
forward = forward_with_heads(encode, "google-research/albert", SUPPORTED_HEADS, pair_head="sop")
