"""bert-for-tf2's Keras ALBERT (``BertModelLayer`` with ``embedding_size``, with or without ``shared_layer``).

The names of :mod:`tf2hf.families.bert_for_tf2` (docs/KERAS.md), with ALBERT's changes:
E-wide embeddings followed by ``embeddings_layer/word_embeddings_projector_layer`` (``projector``
``[E, H]`` and ``bias``), and with ``shared_layer=True`` (what ``bert.albert_params`` sets, and
Google's ALBERT weights need) one ``encoders_layer/shared_layer`` that every one of the
``num_hidden_layers`` passes runs. With ``project_position_embeddings=True`` (the default, for Google's
ALBERT weights) the projection follows the embeddings' LayerNorm, as transformers'
``embedding_hidden_mapping_in`` does; brightmart's order (``False``: only the word embeddings
projected, before the sum) is not what AlbertModel computes, and cannot be told from the names:
the verification, which computes the default order, is what shows a difference.

The one shared layer is ``AlbertModel``'s single group with a single inner layer. Without
``shared_layer`` the layers are ``encoders_layer/encoder_layers/N`` as in BERT: each becomes a
group of its own (``num_hidden_groups`` = ``num_hidden_layers``, one inner layer), which
AlbertModel runs in order (layer i uses group i). No pooler in either: the written pooler is
the identity with a zero bias (``pooler_output`` = tanh of the first token), said in a note.
params-flow's GELU is the tanh formula (``gelu_new``).
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
LAYER = "encoders_layer/encoder_layers/{i}"
QUERY_I = f"{LAYER}/{B4T2_ATTENTION}/query_layer/kernel"

DIMS = (
    Dim("V", "vocab_size", shape_of=(WORD, 0)),
    Dim("E", "embedding_size", shape_of=(WORD, 1)),
    Dim("H", "hidden_size", shape_of=(f"{PROJECTOR}/projector", 1)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings_layer/embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings_layer/embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=(f"{SHARED}/intermediate_layer/kernel", 1)),
)

DIMS_LAYERS = (
    *DIMS[:-1],  # all but the shared layer's intermediate size
    Dim("I", "intermediate_size", shape_of=("encoders_layer/encoder_layers/0/intermediate_layer/kernel", 1)),
    Dim("L", "num_hidden_layers", count_of=QUERY_I),
)

EMBEDDINGS = Part(
    "embeddings", marker=WORD, label="embeddings (E wide)",
    rules=embeddings(WORD, f"{EMB}/position_embeddings_layer/embeddings", f"{EMB}/token_type_embeddings_layer/embeddings",
                     f"{EMB}/layer_norm_layer", "E"),
)
PROJECTION = (
    rule("encoder.embedding_hidden_mapping_in.weight", f"{PROJECTOR}/projector", "transpose", ("H", "E"),
         why="word_embeddings_projector_layer/projector [E, H], applied after the LayerNorm"),
    rule("encoder.embedding_hidden_mapping_in.bias", f"{PROJECTOR}/bias", "copy", ("H",)),
)
ENCODER = Part(
    "encoder", marker=QUERY, label="projector and the shared layer",
    rules=(*PROJECTION, *layer(SHARED, "encoder.albert_layer_groups.0.albert_layers.0", tf=TF_B4T2, hf=HF_ALBERT)),
)
ENCODER_LAYERS = Part(
    "encoder", marker=QUERY_I.format(i=0), label="projector and the layers (each its own group)",
    rules=(*PROJECTION, *layer(LAYER, "encoder.albert_layer_groups.{i}.albert_layers.0", tf=TF_B4T2, hf=HF_ALBERT)),
)
POOLER = b4t2_pooler("pooler", marker="pooler/kernel")

CARRIED = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "num_hidden_layers")


def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
    config = {key: tf_config[key] for key in CARRIED if key in tf_config}
    groups = dims.get("L", 1)  # one group per layer without shared_layer, else the one shared
    config.update(
        vocab_size=dims["V"], embedding_size=dims["E"], hidden_size=dims["H"], intermediate_size=dims["I"],
        max_position_embeddings=dims["P"], type_vocab_size=dims["T"], num_hidden_groups=groups, inner_group_num=1,
        layer_norm_eps=1e-12, hidden_act=hidden_act(tf_config, options["gelu"]),
    )
    if "L" in dims:
        config["num_hidden_layers"] = dims["L"]
    return config


def notes(tf_config: dict, dims: dict) -> list[str]:
    shared = "L" not in dims
    return [f"found a bert-for-tf2 Keras ALBERT (BertModelLayer {'with shared_layer' if shared else 'without shared_layer: a group per layer'}, "
            "saved by save_weights / ModelCheckpoint)"]


COMMON = dict(
    model_type="albert",
    targets=(Target("AlbertModel", frozenset({"embeddings", "encoder", "pooler"}), "", task="feature-extraction"),),
    hf_config=hf_config,
    reference="tf2hf.verify.references.bert_for_tf2:forward_albert",
    default_gelu="tanh",  # params_flow.activations.gelu
    scopes=(f"{EMB}/", "encoders_layer/"),
    renames=(Rename(r"(.+)/\.ATTRIBUTES/VARIABLE_VALUE", r"\1", "a Keras checkpoint's /.ATTRIBUTES/VARIABLE_VALUE suffix"),),
    extra_drops=OPTIMIZER_DROPS,
    config_names=("albert_config*.json", "*config*.json"),
    notes=notes,
    group="bert_for_tf2_albert",
)
FAMILIES = (
    Family(
        name="bert_for_tf2_albert",
        description="bert-for-tf2's Keras ALBERT (shared_layer, embedding_size) saved by save_weights / ModelCheckpoint",
        signature=(WORD, QUERY),
        dims=DIMS,
        loops={},
        parts=(EMBEDDINGS, ENCODER, POOLER),
        **COMMON,
    ),
    Family(
        name="bert_for_tf2_albert_layers",
        description="bert-for-tf2's Keras ALBERT without shared_layer (embedding_size, a layer each) saved by save_weights / ModelCheckpoint",
        signature=(WORD, f"{PROJECTOR}/projector", QUERY_I.format(i=0)),
        dims=DIMS_LAYERS,
        loops={"i": "L"},
        parts=(EMBEDDINGS, ENCODER_LAYERS, POOLER),
        **COMMON,
    ),
)
