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

from tf2hf.engine.table import ConfigCheck, Dim, Family, Output, Part, Target, dense, hidden_act, layer_norm, rule

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
    rules=(
        rule("{p}embeddings.word_embeddings.weight", (f"{EMB}/word_embeddings", f"{EMB}/word_embeddings_2"), "matmul", ("V", "H"), why=FOLD_WHY),
        rule("{p}embeddings.position_embeddings.weight", f"{EMB}/position_embeddings", "copy", ("P", "H")),
        rule("{p}embeddings.token_type_embeddings.weight", f"{EMB}/token_type_embeddings", "copy", ("T", "H")),
        *layer_norm(f"{EMB}/LayerNorm", "{p}embeddings.LayerNorm", "H"),
    ),
)

POOLER_SRC = "bert/pooler/dense"
MLM_MARKER = "cls/predictions/output_bias"
NSP_MARKER = "cls/seq_relationship/output_weights"
NO_POOLER = {"pooler": "this transformers class has no pooler; the TF pooler is not used by this head"}


def _classifier(key: str) -> Part:
    return Part(
        "classifier",
        marker="output_weights",
        label="classifier head",
        rules=(
            rule(f"{key}.weight", "output_weights", "copy", ("C", "H"), why="transpose_b=True upstream: already [out, in]"),
            rule(f"{key}.bias", "output_bias", "copy", ("C",)),
        ),
    )


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
        rules=(
            rule("{p}encoder.embedding_hidden_mapping_in.weight", None, "eye", ("H", "H"), why="embeddings are folded to width H: identity"),
            rule("{p}encoder.embedding_hidden_mapping_in.bias", None, "zeros", ("H",), why="embeddings are folded to width H: zero"),
        ),
    ),
    Part(
        "encoder",
        marker=f"{SHARED}/attention/self/query/kernel",
        label="shared layer",
        rules=(
            *dense(f"{SHARED}/attention/self/query", f"{HF_ONE}.attention.query", "H", "H"),
            *dense(f"{SHARED}/attention/self/key", f"{HF_ONE}.attention.key", "H", "H"),
            *dense(f"{SHARED}/attention/self/value", f"{HF_ONE}.attention.value", "H", "H"),
            *dense(f"{SHARED}/attention/output/dense", f"{HF_ONE}.attention.dense", "H", "H"),
            *layer_norm(f"{SHARED}/attention/output/LayerNorm", f"{HF_ONE}.attention.LayerNorm", "H"),
            *dense(f"{SHARED}/intermediate/dense", f"{HF_ONE}.ffn", "H", "I"),
            *dense(f"{SHARED}/output/dense", f"{HF_ONE}.ffn_output", "I", "H"),
            *layer_norm(f"{SHARED}/output/LayerNorm", f"{HF_ONE}.full_layer_layer_norm", "H"),
        ),
    ),
    Part("pooler", marker=f"{POOLER_SRC}/kernel", label="pooler", rules=dense(POOLER_SRC, "{p}pooler", "H", "H")),
    Part(
        "mlm",
        marker=MLM_MARKER,
        label="masked-LM head",
        rules=(
            *dense("cls/predictions/transform/dense", "predictions.dense", "H", "H"),
            *layer_norm("cls/predictions/transform/LayerNorm", "predictions.LayerNorm", "H"),
            rule("predictions.bias", "cls/predictions/output_bias", "copy", ("V",)),
        ),
        # TF's decoder is (W_word · W_2)ᵀ: exactly the folded word embeddings, tied.
        tied={"predictions.decoder.weight": "{p}embeddings.word_embeddings.weight", "predictions.decoder.bias": "predictions.bias"},
    ),
    Part(
        "nsp",
        marker=NSP_MARKER,
        label="next-sentence head",
        rules=(
            rule("sop_classifier.classifier.weight", "cls/seq_relationship/output_weights", "copy", (2, "H"), why="brightmart's NSP head takes ALBERT's 2-way sentence head slot"),
            rule("sop_classifier.classifier.bias", "cls/seq_relationship/output_bias", "copy", (2,)),
        ),
    ),
    _classifier("classifier"),
)

ALBERT_BASE = frozenset({"embeddings", "projection", "encoder"})

ALBERT_TARGETS = (
    Target(
        "AlbertForPreTraining", ALBERT_BASE | {"pooler", "mlm", "nsp"}, "albert.",
        outputs=(Output("mlm_logits", "prediction_logits", "positions"), Output("nsp_logits", "sop_logits")),
    ),
    Target("AlbertForMaskedLM", ALBERT_BASE | {"mlm"}, "albert.", outputs=(Output("mlm_logits", "logits", "positions"),), discards=NO_POOLER),
    Target("AlbertForSequenceClassification", ALBERT_BASE | {"pooler", "classifier"}, "albert.", outputs=(Output("classifier_logits", "logits"),)),
    Target("AlbertModel", ALBERT_BASE | {"pooler"}, ""),
)

# --- target: BertFor* -----------------------------------------------------------------------

HF_LAYER = "{p}encoder.layer.{i}"

BERT_PARTS = (
    EMBEDDINGS,
    Part(
        "encoder",
        marker=f"{SHARED}/attention/self/query/kernel",
        label="shared layer, copied into every layer",
        rules=(
            *dense(f"{SHARED}/attention/self/query", f"{HF_LAYER}.attention.self.query", "H", "H"),
            *dense(f"{SHARED}/attention/self/key", f"{HF_LAYER}.attention.self.key", "H", "H"),
            *dense(f"{SHARED}/attention/self/value", f"{HF_LAYER}.attention.self.value", "H", "H"),
            *dense(f"{SHARED}/attention/output/dense", f"{HF_LAYER}.attention.output.dense", "H", "H"),
            *layer_norm(f"{SHARED}/attention/output/LayerNorm", f"{HF_LAYER}.attention.output.LayerNorm", "H"),
            *dense(f"{SHARED}/intermediate/dense", f"{HF_LAYER}.intermediate.dense", "H", "I"),
            *dense(f"{SHARED}/output/dense", f"{HF_LAYER}.output.dense", "I", "H"),
            *layer_norm(f"{SHARED}/output/LayerNorm", f"{HF_LAYER}.output.LayerNorm", "H"),
        ),
    ),
    Part("pooler", marker=f"{POOLER_SRC}/kernel", label="pooler", rules=dense(POOLER_SRC, "{p}pooler.dense", "H", "H")),
    Part(
        "mlm",
        marker=MLM_MARKER,
        label="masked-LM head",
        rules=(
            *dense("cls/predictions/transform/dense", "cls.predictions.transform.dense", "H", "H"),
            *layer_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm", "H"),
            rule("cls.predictions.bias", "cls/predictions/output_bias", "copy", ("V",)),
        ),
        tied={"cls.predictions.decoder.weight": "{p}embeddings.word_embeddings.weight", "cls.predictions.decoder.bias": "cls.predictions.bias"},
    ),
    Part(
        "nsp",
        marker=NSP_MARKER,
        label="next-sentence head",
        rules=(
            rule("cls.seq_relationship.weight", "cls/seq_relationship/output_weights", "copy", (2, "H")),
            rule("cls.seq_relationship.bias", "cls/seq_relationship/output_bias", "copy", (2,)),
        ),
    ),
    _classifier("classifier"),
)

BERT_BASE = frozenset({"embeddings", "encoder"})

BERT_TARGETS = (
    Target(
        "BertForPreTraining", BERT_BASE | {"pooler", "mlm", "nsp"}, "bert.",
        outputs=(Output("mlm_logits", "prediction_logits", "positions"), Output("nsp_logits", "seq_relationship_logits")),
    ),
    Target("BertForMaskedLM", BERT_BASE | {"mlm"}, "bert.", outputs=(Output("mlm_logits", "logits", "positions"),), discards=NO_POOLER),
    Target("BertForSequenceClassification", BERT_BASE | {"pooler", "classifier"}, "bert.", outputs=(Output("classifier_logits", "logits"),)),
    Target("BertModel", BERT_BASE | {"pooler"}, ""),
)

COMMON = dict(
    signature=(f"{EMB}/word_embeddings_2", f"{SHARED}/attention/self/query/kernel"),
    dims=DIMS,
    reference="tf2hf.verify.references.brightmart:forward",
    default_gelu="tanh",  # brightmart's modeling.py computes the tanh formula
    config_checks=CONFIG_CHECKS,
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
