"""brightmart/albert_zh, original format (``albert_tiny_zh``, ``albert_base_zh`` … ``xlarge``).

Recognised by its names (``word_embeddings_2``, ``layer_shared``), never by its config, which
``AlbertConfig`` accepts silently (docs/MAPPING.md §4). Its graph: word embeddings [V,E] times
``word_embeddings_2`` [E,H] (no bias), *then* position and token-type embeddings [·,H] and a
LayerNorm at H; one BERT-named block shared by every layer; an MLM head at H whose decoder is
the product of the two factors.

Stock ALBERT has its position/type embeddings and LayerNorm at width E, so the factors are
folded into one [V,H] word-embedding matrix (computed in float64). Two exact targets:

* ``albert`` (default): ``AlbertFor*`` with ``embedding_size = hidden_size``, the identity as
  ``embedding_hidden_mapping_in`` and one group holding the shared block: a small file;
* ``bert``: ``BertFor*`` with the shared block copied into every layer.
"""

from __future__ import annotations

from tf2hf.engine.table import ConfigCheck, Dim, Family, GraphProbe, Part, hidden_act, rule
from tf2hf.families.blocks import (
    HF_ALBERT, HF_ALBERT_MLM, HF_BERT_MLM, WORD, classifier, head_targets, identity, layer, mlm_part, pooler, scoped_embeddings,
    sentence_head,
)

EMB = "bert/embeddings"
SHARED = "bert/encoder/layer_shared"

DIMS = (
    Dim("V", "vocab_size", shape_of=(f"{EMB}/word_embeddings", 0)),
    Dim("E", "embedding_size", shape_of=(f"{EMB}/word_embeddings", 1), on_conflict="checkpoint"),
    Dim("H", "hidden_size", shape_of=(f"{EMB}/word_embeddings_2", 1)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=(f"{SHARED}/intermediate/dense/kernel", 1)),
    Dim("L", "num_hidden_layers"),
    Dim("C", None, shape_of=("output_weights", 0), on_conflict="checkpoint"),
)

CONFIG_CHECKS = (
    ConfigCheck(
        "ln_type",
        refuse={
            "preln": "a pre-LayerNorm graph (brightmart's xxlarge configs and code of 2019-10-04…07): its layer norms sit "
                     "before attention and feed-forward, and no transformers class computes that; converting it to post-LN "
                     "classes would give outputs off by ~10. Nothing was written",
        },
        missing="ln_type is not in the config: post-LN assumed (brightmart's default and the graph of every released albert_zh)",
    ),
)

FOLD_WHY = "word_embeddings [V,E] x word_embeddings_2 [E,H], folded in float64 (TF multiplies them before adding positions)"

EMBEDDINGS = Part(
    "embeddings",
    marker=f"{EMB}/word_embeddings_2",
    label="embeddings (factorised, folded)",
    rules=scoped_embeddings(EMB, word=rule(
        WORD, (f"{EMB}/word_embeddings", f"{EMB}/word_embeddings_2"), "matmul", ("V", "H"), why=FOLD_WHY,
    )),
)

POOLER_SRC = "bert/pooler/dense"
NSP_MARKER = "cls/seq_relationship/output_weights"

CLASSIFIER = Part("classifier", marker="output_weights", label="classifier head", rules=classifier())


def _hf_config(model_type: str):
    def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
        config = {k: tf_config[k] for k in ("num_attention_heads", "initializer_range", "hidden_dropout_prob", "attention_probs_dropout_prob") if k in tf_config}
        config.update(
            vocab_size=dims["V"], hidden_size=dims["H"], num_hidden_layers=dims["L"], intermediate_size=dims["I"],
            max_position_embeddings=dims["P"], type_vocab_size=dims["T"], layer_norm_eps=1e-12, pad_token_id=0,
        )
        if model_type == "albert":
            # Folded: the embeddings are already at width H.
            config.update(embedding_size=dims["H"], num_hidden_groups=1, inner_group_num=1)
        if "C" in dims:
            config["num_labels"] = dims["C"]
        config["hidden_act"] = hidden_act(tf_config, options["gelu"])
        return config

    return hf_config


# --- target: AlbertFor* ---------------------------------------------------------------------

HF_ONE = "{p}encoder.albert_layer_groups.0.albert_layers.0"

ALBERT_PARTS = (
    EMBEDDINGS,
    Part(
        "projection",
        marker=f"{EMB}/word_embeddings_2",
        label="identity projection",
        rules=identity("{p}encoder.embedding_hidden_mapping_in", "H", "H", "embeddings are folded to width H"),
    ),
    Part("encoder", marker=f"{SHARED}/attention/self/query/kernel", label="shared layer", rules=layer(SHARED, HF_ONE, hf=HF_ALBERT)),
    pooler(POOLER_SRC, "{p}pooler"),
    # TF's decoder is (W_word · W_2)ᵀ: exactly the folded word embeddings, tied.
    mlm_part(HF_ALBERT_MLM, "predictions"),
    Part(
        "nsp",
        marker=NSP_MARKER,
        label="next-sentence head",
        rules=sentence_head("sop_classifier.classifier", why="brightmart's NSP head takes ALBERT's 2-way sentence head slot"),
    ),
    CLASSIFIER,
)

ALBERT_BASE = frozenset({"embeddings", "projection", "encoder"})

# brightmart's NSP head takes ALBERT's 2-way sentence head slot, compared as sop_logits.
ALBERT_TARGETS = head_targets("Albert", "albert.", ALBERT_BASE, "nsp", "sop_logits")

# --- target: BertFor* -----------------------------------------------------------------------

BERT_PARTS = (
    EMBEDDINGS,
    Part(
        "encoder",
        marker=f"{SHARED}/attention/self/query/kernel",
        label="shared layer, copied into every layer",
        rules=layer(SHARED),
    ),
    pooler(POOLER_SRC, "{p}pooler.dense"),
    mlm_part(HF_BERT_MLM, "cls.predictions"),
    Part("nsp", marker=NSP_MARKER, label="next-sentence head", rules=sentence_head("cls.seq_relationship")),
    CLASSIFIER,
)

BERT_BASE = frozenset({"embeddings", "encoder"})

BERT_TARGETS = head_targets("Bert", "bert.", BERT_BASE, "nsp", "seq_relationship_logits")

COMMON = dict(
    signature=(f"{EMB}/word_embeddings_2", f"{SHARED}/attention/self/query/kernel"),
    dims=DIMS,
    reference="tf2hf.verify.references.brightmart:forward",
    # The first use of the shared layer names its ops layer_shared/, later ones layer_shared_N/.
    # LayerNorm order (docs/GRAPH.md): prelln_transformer_model normalises the layer's input
    # under attention/output/LayerNorm and feeds that to the query; transformer_model (post-LN)
    # feeds the query the layer's input itself (layer 0: the embeddings, reshaped by the encoder)
    # and normalises only after attention. Same variables either way: only the graph tells.
    graph=GraphProbe("bert/encoder/layer_shared/intermediate/", "bert/encoder/layer_shared/attention/self/",
                     epsilon="bert/encoder/layer_shared/attention/output/LayerNorm/batchnorm/add/y",
                     pre_norm="bert/encoder/layer_shared/attention/output/LayerNorm/", order_key="ln_type",
                     order_values=("preln", "postln")),
    default_gelu="tanh",  # brightmart's modeling.py computes the tanh formula
    config_checks=CONFIG_CHECKS,
    scopes=("bert/", "cls/"),
    group="albert",
    config_names=("albert_config*.json", "*config*.json"),
    vocab_names=("vocab.txt", "vocab_chinese.txt", "*vocab*.txt"),
)

FAMILIES = (
    Family(
        name="albert_zh",
        description="brightmart albert_zh original format (word_embeddings_2, layer_shared) -> AlbertFor*",
        model_type="albert",
        loops={},
        parts=ALBERT_PARTS,
        targets=ALBERT_TARGETS,
        hf_config=_hf_config("albert"),
        base_parts=ALBERT_BASE,
        variant="albert",
        **COMMON,
    ),
    Family(
        name="albert_zh_bert",
        description="brightmart albert_zh original format (word_embeddings_2, layer_shared) -> BertFor*",
        model_type="bert",
        loops={"i": "L"},
        parts=BERT_PARTS,
        targets=BERT_TARGETS,
        hf_config=_hf_config("bert"),
        base_parts=BERT_BASE,
        variant="bert",
        **COMMON,
    ),
)
