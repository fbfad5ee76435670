"""NumPy reference of google-research/electra's TF1 graphs (``model/modeling.py`` + heads).

Both towers are BERT's post-LN encoder without a pooler:

* embeddings (word + token type + position, LayerNorm) of width E, from ``electra/embeddings``
  — the generator reads the same table unless it has its own ``generator/embeddings``;
* ``<tower>/embeddings_project`` (a dense layer, E -> the tower's hidden size) when the two
  widths differ, as ``BertModel.__init__`` adds it;
* ``<tower>/encoder/layer_{i}`` with BERT's names;
* discriminator head (``run_pretraining._get_discriminator_output``): dense H -> H with
  ``hidden_act``, then ``dense_1`` H -> 1, one logit per token;
* generator head (``_get_masked_lm_output``): gather the masked positions, dense to the embedding
  width with ``hidden_act``, LayerNorm, then logits against the embedding table plus
  ``output_bias``;
* run_finetuning's tagging head (``finetune/tagging``): ``task_specific/chunk/dense`` on every token.

Sizes come from the variables' shapes; the layer count and head count from ``config`` (the
config of the tower being verified).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2hf.verify.references.bert import LAYER_NAMES
from tf2hf.verify.references.blocks import add_position_and_type, stack
from tf2hf.verify.references.heads import gather_positions
from tf2hf.verify.references.locate import Layout
from tf2hf.verify.references.numerics import activation, layer_norm_epsilon
from tf2hf.verify.references.weights import Getter, dense_from, has_variable, layer_norm_from, param

DISCRIMINATOR_HEADS = frozenset({"discriminator", "tagger"})
GENERATOR_HEADS = frozenset({"mlm"})
TAGGING_TASK = "chunk"

#: Both towers read the discriminator's embeddings, unless the generator has its own.
LAYOUT = Layout(anchors=("electra/embeddings/word_embeddings", "generator/embeddings/word_embeddings"))


def _check(heads: frozenset[str], supported: frozenset[str], tower: str) -> None:
    unknown = set(heads) - supported
    if unknown:
        raise ValueError(f"the ELECTRA {tower} has no {sorted(unknown)} head; its heads are {sorted(supported)}")


def embed(get: Getter, scope: str, inputs: dict[str, np.ndarray], eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Embedding output ``[B, S, E]`` and the word table ``[V, E]`` of ``scope``."""
    words = param(get, f"{scope}/word_embeddings")
    summed = add_position_and_type(get, words[np.asarray(inputs["input_ids"])], inputs["token_type_ids"], scope)
    return layer_norm_from(get, f"{scope}/LayerNorm", summed, eps), words


def tower(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], scope: str, embeddings: str, act) -> tuple[np.ndarray, np.ndarray]:
    """Sequence output ``[B, S, H]`` of one tower, and the embedding table it read."""
    hidden = get(f"{scope}/encoder/layer_0/attention/self/query/kernel").shape[0]
    x, words = embed(get, embeddings, inputs, layer_norm_epsilon(config))
    if x.shape[-1] != hidden:
        x = dense_from(get, f"{scope}/embeddings_project", x)
    return stack(get, config, inputs, x, lambda index, _: [f"{scope}/encoder/layer_{index}"], LAYER_NAMES, act), words


def forward_discriminator(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """The discriminator ``electra/*``: ``sequence_output``, and ``discriminator_logits``
    ``[B, S]`` or ``tagger_logits`` ``[B, S, C]`` when asked."""
    _check(heads, DISCRIMINATOR_HEADS, "discriminator")
    act = activation(gelu)
    sequence_output, _ = tower(get, config, inputs, "electra", "electra/embeddings", act)
    out = {"sequence_output": sequence_output}
    if "discriminator" in heads:
        hidden = act(dense_from(get, "discriminator_predictions/dense", sequence_output))
        out["discriminator_logits"] = dense_from(get, "discriminator_predictions/dense_1", hidden)[..., 0]
    if "tagger" in heads:
        out["tagger_logits"] = dense_from(get, f"task_specific/{TAGGING_TASK}/dense", sequence_output)
    return out


def forward_generator(get: Getter, config: dict[str, Any], inputs: dict[str, np.ndarray], *, gelu: str, heads: frozenset[str]) -> dict[str, np.ndarray]:
    """The generator ``generator/*``: ``sequence_output`` and, when asked, ``mlm_logits``
    ``[B*K, V]`` at ``inputs["positions"]``."""
    _check(heads, GENERATOR_HEADS, "generator")
    act = activation(gelu)
    own = has_variable(get, "generator/embeddings/word_embeddings")
    sequence_output, words = tower(get, config, inputs, "generator", "generator/embeddings" if own else "electra/embeddings", act)
    out = {"sequence_output": sequence_output}
    if "mlm" in heads:
        gathered = gather_positions(sequence_output, inputs["positions"])
        transformed = act(dense_from(get, "generator_predictions/dense", gathered))
        hidden = layer_norm_from(get, "generator_predictions/LayerNorm", transformed, layer_norm_epsilon(config))
        out["mlm_logits"] = hidden @ words.T + param(get, "generator_predictions/output_bias")
    return out
