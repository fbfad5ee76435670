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

# The MLM head has BERT's names and graph (its transform maps H -> E, decoding with the [V, E] table).
from tf2hf.verify.references.bert import mlm_logits
from tf2hf.verify.references.common import (
    Getter,
    activation,
    add_position_and_type,
    attention_bias,
    check_heads,
    common_heads,
    count_indexed,
    dense_from,
    layer_norm_from,
    param_rows,
    post_ln_block,
    require,
)

SUPPORTED_HEADS = frozenset({"pooler", "mlm", "sop", "classifier", "squad"})

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


def embed(get: Getter, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Embedding output ``[B, S, E]`` (before the E -> H projection)."""
    words = param_rows(get, "bert/embeddings/word_embeddings", inputs["input_ids"])
    summed = add_position_and_type(get, words, inputs["token_type_ids"])
    return layer_norm_from(get, "bert/embeddings/LayerNorm", summed)


def encode(
    get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], act
) -> np.ndarray:
    """Sequence output ``[B, S, H]``."""
    num_layers = int(require(config, "num_hidden_layers"))
    num_heads = int(require(config, "num_attention_heads"))
    groups, inner = group_layout(get)
    hidden_size = get(f"{TRANSFORMER}/group_0/inner_group_0/{_QUERY}").shape[0]
    bias = attention_bias(inputs["input_mask"])
    x = embed(get, inputs)
    if x.shape[-1] != hidden_size:
        x = dense_from(get, "bert/encoder/embedding_hidden_mapping_in", x)
    for index in range(num_layers):
        group = int(index / num_layers * groups)
        for j in range(inner):
            scope = f"{TRANSFORMER}/group_{group}/inner_group_{j}"
            x = post_ln_block(get, scope, BLOCK_NAMES, x, bias, num_heads, act)
    return x


def forward(
    get: Getter,
    config: dict[str, Any],
    inputs: dict[str, np.ndarray],
    *,
    gelu: str,
    heads: frozenset[str],
) -> dict[str, np.ndarray]:
    """Run the Google ALBERT graph on ``inputs``; see :mod:`tf2hf.verify.references`."""
    check_heads(heads, SUPPORTED_HEADS, "google-research/albert")
    act = activation(gelu)
    sequence_output = encode(get, config, inputs, act)
    out = {"sequence_output": sequence_output}
    out.update(common_heads(get, sequence_output, heads, pair_head="sop"))
    if "mlm" in heads:
        out["mlm_logits"] = mlm_logits(get, sequence_output, inputs["positions"], act)
    return out
