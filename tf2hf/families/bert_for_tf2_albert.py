"""bert-for-tf2's Keras ALBERT (``BertModelLayer`` with ``shared_layer=True``, ``embedding_size``).

The names of :mod:`tf2hf.families.bert_for_tf2` (docs/KERAS.md), with ALBERT's two changes:
one ``encoders_layer/shared_layer`` that every one of the ``num_hidden_layers`` passes runs, and
E-wide embeddings followed by ``embeddings_layer/word_embeddings_projector_layer`` (``projector``
``[E, H]`` and ``bias``). With ``project_position_embeddings=True`` (the default, for Google's
ALBERT weights) the projection follows the embeddings' LayerNorm, as transformers'
``embedding_hidden_mapping_in`` does; brightmart's order (``False``: only the word embeddings
projected, before the sum) is not what AlbertModel computes, and cannot be told from the names:
the verification, which computes the default order, is what shows a difference.

The one shared layer is ``AlbertModel``'s single group with a single inner layer; no pooler:
the written pooler is the identity with a zero bias (``pooler_output`` = tanh of the first
token), said in a note. params-flow's GELU is the tanh formula (``gelu_new``).
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Family, Part, Rename, Target, hidden_act, rule
from tf2hf.families.blocks import HF_ALBERT, embeddings, layer
from tf2hf.families.keras_blocks import B4T2_ATTENTION, b4t2_pooler, OPTIMIZER_DROPS, TF_B4T2

EMB = "embeddings_layer"
WORD = f"{EMB}/word_embeddings_layer/embeddings"
SHARED = "encoders_layer/shared_layer"
QUERY = f"{SHARED}/{B4T2_ATTENTION}/query_layer/kernel"
PROJECTOR = f"{EMB}/word_embeddings_projector_layer"

DIMS = (
    Dim("V", "vocab_size", shape_of=(WORD, 0)),
    Dim("E", "embedding_size", shape_of=(WORD, 1)),
    Dim("H", "hidden_size", shape_of=(f"{PROJECTOR}/projector", 1)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings_layer/embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings_layer/embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=(f"{SHARED}/intermediate_layer/kernel", 1)),
)

EMBEDDINGS = Part(
    "embeddings", marker=WORD, label="embeddings (E wide)",
    rules=embeddings(WORD, f"{EMB}/position_embeddings_layer/embeddings", f"{EMB}/token_type_embeddings_layer/embeddings",
                     f"{EMB}/layer_norm_layer", "E"),
)
ENCODER = Part(
    "encoder", marker=QUERY, label="projector and the shared layer",
    rules=(
        rule("encoder.embedding_hidden_mapping_in.weight", f"{PROJECTOR}/projector", "transpose", ("H", "E"),
             why="word_embeddings_projector_layer/projector [E, H], applied after the LayerNorm"),
        rule("encoder.embedding_hidden_mapping_in.bias", f"{PROJECTOR}/bias", "copy", ("H",)),
        *layer(SHARED, "encoder.albert_layer_groups.0.albert_layers.0", tf=TF_B4T2, hf=HF_ALBERT),
    ),
)
POOLER = b4t2_pooler("pooler", marker="pooler/kernel")

CARRIED = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "num_hidden_layers")


def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
    config = {key: tf_config[key] for key in CARRIED if key in tf_config}
    config.update(
        vocab_size=dims["V"], embedding_size=dims["E"], hidden_size=dims["H"], intermediate_size=dims["I"],
        max_position_embeddings=dims["P"], type_vocab_size=dims["T"], num_hidden_groups=1, inner_group_num=1,
        layer_norm_eps=1e-12, hidden_act=hidden_act(tf_config, options["gelu"]),
    )
    return config


def notes(tf_config: dict, dims: dict) -> list[str]:
    return ["found a bert-for-tf2 Keras ALBERT (BertModelLayer with shared_layer, saved by save_weights / ModelCheckpoint)"]


FAMILY = Family(
    name="bert_for_tf2_albert",
    description="bert-for-tf2's Keras ALBERT (shared_layer, embedding_size) saved by save_weights / ModelCheckpoint",
    model_type="albert",
    signature=(WORD, QUERY),
    dims=DIMS,
    loops={},
    parts=(EMBEDDINGS, ENCODER, POOLER),
    targets=(Target("AlbertModel", frozenset({"embeddings", "encoder", "pooler"}), "", task="feature-extraction"),),
    hf_config=hf_config,
    reference="tf2hf.verify.references.bert_for_tf2:forward_albert",
    default_gelu="tanh",  # params_flow.activations.gelu
    scopes=(f"{EMB}/", "encoders_layer/"),
    renames=(Rename(r"(.+)/\.ATTRIBUTES/VARIABLE_VALUE", r"\1", "a Keras checkpoint's /.ATTRIBUTES/VARIABLE_VALUE suffix"),),
    extra_drops=OPTIMIZER_DROPS,
    config_names=("albert_config*.json", "*config*.json"),
    notes=notes,
)
