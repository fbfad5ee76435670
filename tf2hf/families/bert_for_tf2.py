"""bert-for-tf2's Keras BERT (``bert.BertModelLayer``), saved by ``save_weights`` / ``ModelCheckpoint``.

The layer sits in a user's Keras model (``layer_with_weights-0/``, found as the root), its
sublayers named by its own attributes (docs/KERAS.md): ``embeddings_layer/{word,position,
token_type}_embeddings_layer/embeddings`` and ``layer_norm_layer``; per layer
``encoders_layer/encoder_layers/N/self_attention_layer/attention_layer/{query,key,value}_layer``,
``…/attention_projector/{dense,layer_norm}``, ``intermediate_layer``, ``output_projector/{dense,
layer_norm}``. Every kernel is a Keras Dense ``[in, out]``. The graph is BERT's, with params-flow's
GELU (the tanh formula) and LayerNorm epsilon 1e-12; the head count is in no shape, so a config
is needed (Google's ``bert_config.json``).

It has **no pooler**. transformers' ``BertModel`` always has one, so the written pooler is the
identity with a zero bias: its ``pooler_output`` is ``tanh`` of the first token's hidden state,
computed from weights nobody trained — use ``last_hidden_state``. Dense layers a user put on top
(``layer_with_weights-1/…``) are no head transformers knows: kept aside by ``--task``
(issue 10), never guessed.

Masking: by default (``mask_zero=False``) bert-for-tf2 attends to every position, padding
included; with a mask it adds ``-10000 * (1 - mask)`` to the scores as BERT does, which is what
``BertModel`` does with ``attention_mask`` (all ones reproduces the unmasked default).

ALBERT (``shared_layer``, ``embedding_size``): :mod:`tf2hf.families.bert_for_tf2_albert`.
"""

from __future__ import annotations

from tf2hf.engine.nonweights import OPTIMIZER
from tf2hf.engine.table import Dim, DropRule, Family, Part, Rename, Target, hidden_act, rule
from tf2hf.families.blocks import embeddings, layer
from tf2hf.families.keras_blocks import B4T2_ATTENTION, b4t2_pooler, TF_B4T2

EMB = "embeddings_layer"
WORD = f"{EMB}/word_embeddings_layer/embeddings"
LAYER = "encoders_layer/encoder_layers/{i}"
ATTN = B4T2_ATTENTION
QUERY0 = f"encoders_layer/encoder_layers/0/{ATTN}/query_layer/kernel"

DIMS = (
    Dim("V", "vocab_size", shape_of=(WORD, 0)),
    Dim("H", "hidden_size", shape_of=(WORD, 1)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings_layer/embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings_layer/embeddings", 0), default=2),
    Dim("I", "intermediate_size", shape_of=("encoders_layer/encoder_layers/0/intermediate_layer/kernel", 1)),
    Dim("L", "num_hidden_layers", count_of=f"encoders_layer/encoder_layers/{{i}}/{ATTN}/query_layer/kernel"),
)

RENAMES = (Rename(r"(.+)/\.ATTRIBUTES/VARIABLE_VALUE", r"\1", "a Keras checkpoint's /.ATTRIBUTES/VARIABLE_VALUE suffix"),)
DROPS = (
    DropRule(r".+/\.OPTIMIZER_SLOT/.+", OPTIMIZER, "Keras optimizer slot (.OPTIMIZER_SLOT/optimizer/m, v, ...)"),
    DropRule(r"(?:.+/)?optimizer/.+", OPTIMIZER, "Keras optimizer state (iterations, learning rate, decay)"),
)

TYPES = f"{EMB}/token_type_embeddings_layer/embeddings"
EMBEDDINGS = Part(
    "embeddings", marker=WORD, label="embeddings (embeddings_layer)",
    rules=tuple(r for r in embeddings(WORD, f"{EMB}/position_embeddings_layer/embeddings", TYPES, f"{EMB}/layer_norm_layer")
                if TYPES not in r.sources),
)
# use_token_type=False builds no token-type table and adds nothing; BertModel always adds one:
# zeros add nothing, whatever token_type_ids are.
TOKEN_TYPES = Part(
    "token_types", marker=TYPES, label="token-type embeddings",
    rules=(rule("embeddings.token_type_embeddings.weight", TYPES, "copy", ("T", "H")),),
    when_absent=(rule("embeddings.token_type_embeddings.weight", None, "zeros", ("T", "H"), why="no token types in bert-for-tf2 (use_token_type=False): zero"),),
    absent_note="bert-for-tf2 was built without token types (use_token_type=False): the written token-type embeddings are zeros, which add nothing",
)
ENCODER = Part("encoder", marker=QUERY0, label="encoder layers (encoders_layer/encoder_layers/N)", rules=layer(LAYER, tf=TF_B4T2))
# No pooler in bert-for-tf2; BertModel always has one (keras_blocks.b4t2_pooler).
POOLER = b4t2_pooler("pooler.dense", marker="pooler/dense/kernel")

CARRIED = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")


def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
    config = {key: tf_config[key] for key in CARRIED if key in tf_config}
    config.update(
        vocab_size=dims["V"], hidden_size=dims["H"], num_hidden_layers=dims["L"], intermediate_size=dims["I"],
        max_position_embeddings=dims["P"], type_vocab_size=dims["T"], layer_norm_eps=1e-12, pad_token_id=0,
        hidden_act=hidden_act(tf_config, options["gelu"]),
    )
    return config


def notes(tf_config: dict, dims: dict) -> list[str]:
    return ["found a bert-for-tf2 Keras model (BertModelLayer, saved by save_weights / ModelCheckpoint)"]


FAMILY = Family(
    name="bert_for_tf2",
    description="bert-for-tf2's Keras BertModelLayer saved by save_weights / ModelCheckpoint (embeddings_layer, encoders_layer)",
    model_type="bert",
    signature=(WORD, QUERY0),
    dims=DIMS,
    loops={"i": "L"},
    parts=(EMBEDDINGS, TOKEN_TYPES, ENCODER, POOLER),
    targets=(Target("BertModel", frozenset({"embeddings", "token_types", "encoder", "pooler"}), "", task="feature-extraction"),),
    hf_config=hf_config,
    reference="tf2hf.verify.references.bert_for_tf2:forward",
    # params_flow.activations.gelu, which bert-for-tf2's layers use, is the tanh formula.
    default_gelu="tanh",
    scopes=(f"{EMB}/", "encoders_layer/"),
    renames=RENAMES,
    extra_drops=DROPS,
    base_parts=frozenset({"embeddings", "token_types", "encoder"}),
    notes=notes,
    # The same names with a projector are its ALBERT without shared_layer (bert_for_tf2_albert).
    unless=(f"{EMB}/word_embeddings_projector_layer/projector",),
)
