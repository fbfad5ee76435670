"""google-research/albert (TF1), also Google's Chinese ALBERT and brightmart's ``*_google_zh``.

Sources are the names of the upstream ``modeling.py``; targets are transformers' ``Albert*``
state_dict keys (docs/MAPPING.md §3). Groups and inner groups are loops over ``{g}`` and ``{j}``;
their counts and the embedding size come from the checkpoint, because released configs often
lack or misstate them.
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Family, Output, Part, Refusal, Target, dense, hidden_act, layer_norm, rule

EMB = "bert/embeddings"
INNER = "bert/encoder/transformer/group_{g}/inner_group_{j}"
HF_INNER = "{p}encoder.albert_layer_groups.{g}.albert_layers.{j}"
MAPPING = "bert/encoder/embedding_hidden_mapping_in"

DIMS = (
    Dim("V", "vocab_size", shape_of=(f"{EMB}/word_embeddings", 0)),
    # Configs often lack embedding_size (transformers' default, 128, is then wrong): trust shapes.
    Dim("E", "embedding_size", shape_of=(f"{EMB}/word_embeddings", 1), on_conflict="checkpoint"),
    Dim("H", "hidden_size", shape_of=("bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel", 0)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=("bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/dense/kernel", 1)),
    # Layers share weights: nothing in the checkpoint counts them, only the config says.
    Dim("L", "num_hidden_layers"),
    Dim("G", "num_hidden_groups", count_of="bert/encoder/transformer/group_{g}/inner_group_0/attention_1/self/query/kernel",
        on_conflict="checkpoint", default=1),
    Dim("J", "inner_group_num", count_of="bert/encoder/transformer/group_0/inner_group_{j}/attention_1/self/query/kernel",
        on_conflict="checkpoint", default=1),
    Dim("C", None, shape_of=("output_weights", 0), on_conflict="checkpoint"),
)




EMBEDDINGS = Part(
    "embeddings",
    marker=f"{EMB}/word_embeddings",
    label="embeddings",
    rules=(
        rule("{p}embeddings.word_embeddings.weight", f"{EMB}/word_embeddings", "copy", ("V", "E")),
        rule("{p}embeddings.position_embeddings.weight", f"{EMB}/position_embeddings", "copy", ("P", "E")),
        rule("{p}embeddings.token_type_embeddings.weight", f"{EMB}/token_type_embeddings", "copy", ("T", "E")),
        *layer_norm(f"{EMB}/LayerNorm", "{p}embeddings.LayerNorm", "E"),
    ),
)

PROJECTION = Part(
    "projection",
    marker=f"{MAPPING}/kernel",
    label="embedding projection",
    rules=dense(MAPPING, "{p}encoder.embedding_hidden_mapping_in", "E", "H"),
    # TF creates this layer only when E != H; transformers always has it: the identity with a
    # zero bias computes exactly what TF computed without it.
    when_absent=(
        rule("{p}encoder.embedding_hidden_mapping_in.weight", None, "eye", ("H", "E"), why="absent in TF (E == H): identity"),
        rule("{p}encoder.embedding_hidden_mapping_in.bias", None, "zeros", ("H",), why="absent in TF (E == H): zero"),
    ),
    absent_note="embedding_size == hidden_size: TF has no embedding_hidden_mapping_in; wrote the identity and a zero bias",
)

ENCODER = Part(
    "encoder",
    marker="bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel",
    label="shared layer groups",
    rules=(
        *dense(f"{INNER}/attention_1/self/query", f"{HF_INNER}.attention.query", "H", "H"),
        *dense(f"{INNER}/attention_1/self/key", f"{HF_INNER}.attention.key", "H", "H"),
        *dense(f"{INNER}/attention_1/self/value", f"{HF_INNER}.attention.value", "H", "H"),
        *dense(f"{INNER}/attention_1/output/dense", f"{HF_INNER}.attention.dense", "H", "H"),
        # LayerNorm after attention, LayerNorm_1 after the feed-forward block.
        *layer_norm(f"{INNER}/LayerNorm", f"{HF_INNER}.attention.LayerNorm", "H"),
        *dense(f"{INNER}/ffn_1/intermediate/dense", f"{HF_INNER}.ffn", "H", "I"),
        *dense(f"{INNER}/ffn_1/intermediate/output/dense", f"{HF_INNER}.ffn_output", "I", "H"),
        *layer_norm(f"{INNER}/LayerNorm_1", f"{HF_INNER}.full_layer_layer_norm", "H"),
    ),
)

POOLER = Part("pooler", marker="bert/pooler/dense/kernel", label="pooler", rules=dense("bert/pooler/dense", "{p}pooler", "H", "H"))

MLM = Part(
    "mlm",
    marker="cls/predictions/output_bias",
    label="masked-LM head",
    rules=(
        *dense("cls/predictions/transform/dense", "predictions.dense", "H", "E"),
        *layer_norm("cls/predictions/transform/LayerNorm", "predictions.LayerNorm", "E"),
        rule("predictions.bias", "cls/predictions/output_bias", "copy", ("V",)),
    ),
    tied={"predictions.decoder.weight": "{p}embeddings.word_embeddings.weight", "predictions.decoder.bias": "predictions.bias"},
)

SOP = Part(
    "sop",
    marker="cls/seq_relationship/output_weights",
    label="sentence-order head",
    rules=(
        rule("sop_classifier.classifier.weight", "cls/seq_relationship/output_weights", "copy", (2, "H")),
        rule("sop_classifier.classifier.bias", "cls/seq_relationship/output_bias", "copy", (2,)),
    ),
)

CLASSIFIER = Part(
    "classifier",
    marker="output_weights",
    label="classifier head (run_classifier)",
    rules=(
        rule("classifier.weight", "output_weights", "copy", ("C", "H"), why="transpose_b=True upstream: already [out, in]"),
        rule("classifier.bias", "output_bias", "copy", ("C",)),
    ),
)

SQUAD = Part(
    "squad",
    marker="cls/squad/output_weights",
    label="SQuAD v1 head",
    rules=(
        rule("qa_outputs.weight", "cls/squad/output_weights", "copy", (2, "H")),
        rule("qa_outputs.bias", "cls/squad/output_bias", "copy", (2,)),
    ),
)

BASE = frozenset({"embeddings", "projection", "encoder"})
NO_POOLER = {"pooler": "this transformers class has no pooler; the TF pooler is not used by this head"}

TARGETS = (
    Target(
        "AlbertForPreTraining", BASE | {"pooler", "mlm", "sop"}, "albert.",
        outputs=(Output("mlm_logits", "prediction_logits", "positions"), Output("sop_logits", "sop_logits")),
    ),
    Target("AlbertForMaskedLM", BASE | {"mlm"}, "albert.", outputs=(Output("mlm_logits", "logits", "positions"),), discards=NO_POOLER),
    Target("AlbertForSequenceClassification", BASE | {"pooler", "classifier"}, "albert.", outputs=(Output("classifier_logits", "logits"),)),
    Target(
        "AlbertForQuestionAnswering", BASE | {"squad"}, "albert.",
        outputs=(Output("start_logits", "start_logits"), Output("end_logits", "end_logits")),
        discards=NO_POOLER, config={"num_labels": 2},
    ),
    Target("AlbertModel", BASE | {"pooler"}, ""),
)

REFUSE = (
    Refusal(r"(start_logits|end_logits|answer_class)/.+",
            "a SQuAD v2 head of google-research/albert (start/end/answer-class layers): no transformers class has it"),
    Refusal(r"cls/race/.+|race/.+", "a RACE multiple-choice head of google-research/albert: no transformers class has it"),
    Refusal(r"bert/encoder/transformer/group_\d+/inner_group_\d+/ffn_1/intermediate/(output/)?dense/kernel",
            "3-D feed-forward kernels (brightmart's *_google_fast): no transformers class computes them", ndim=3),
)

CARRIED = (
    "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups", "num_attention_heads",
    "intermediate_size", "inner_group_num", "hidden_dropout_prob", "attention_probs_dropout_prob",
    "max_position_embeddings", "type_vocab_size", "initializer_range",
)

def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
    config = {key: tf_config[key] for key in CARRIED if key in tf_config}
    config.update(
        vocab_size=dims["V"], embedding_size=dims["E"], hidden_size=dims["H"], num_hidden_layers=dims["L"],
        num_hidden_groups=dims["G"], inner_group_num=dims["J"], intermediate_size=dims["I"],
        max_position_embeddings=dims["P"], type_vocab_size=dims["T"], layer_norm_eps=1e-12, pad_token_id=0,
    )
    if "C" in dims:
        config["num_labels"] = dims["C"]
    config["hidden_act"] = hidden_act(tf_config, options["gelu"])
    return config


FAMILY = Family(
    name="albert",
    description="google-research/albert (groups, inner groups, E != H or E == H), Google's Chinese ALBERT",
    model_type="albert",
    signature=(f"{EMB}/word_embeddings", "bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel"),
    dims=DIMS,
    loops={"g": "G", "j": "J"},
    parts=(EMBEDDINGS, PROJECTION, ENCODER, POOLER, MLM, SOP, CLASSIFIER, SQUAD),
    targets=TARGETS,
    hf_config=hf_config,
    reference="tf2hf.verify.references.albert:forward",
    default_gelu="tanh",  # ALBERT's modeling.py computes the tanh formula, whatever its configs call it
    refuse=REFUSE,
    base_parts=BASE,
    group="albert",
    variant="albert",
    config_names=("albert_config*.json", "*config*.json"),
    vocab_names=("vocab.txt", "vocab_chinese.txt", "*vocab*.txt", "30k-clean.model", "spiece.model", "*.model"),
)
