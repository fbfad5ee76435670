"""google-research/bert (TF1): every variable of run_pretraining, run_classifier and run_squad.

Sources are the names the upstream ``modeling.py`` and ``run_*.py`` create; targets are the
state_dict keys of transformers' ``Bert*`` classes (docs/MAPPING.md §2).
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Family, Output, Part, Refusal, Rename, Target, dense, hidden_act, layer_norm, rule

# --- sizes ------------------------------------------------------------------------------------

DIMS = (
    Dim("V", "vocab_size", shape_of=("bert/embeddings/word_embeddings", 0)),
    Dim("H", "hidden_size", shape_of=("bert/embeddings/word_embeddings", 1)),
    Dim("P", "max_position_embeddings", shape_of=("bert/embeddings/position_embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=("bert/embeddings/token_type_embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=("bert/encoder/layer_0/intermediate/dense/kernel", 1)),
    Dim("L", "num_hidden_layers", count_of="bert/encoder/layer_{i}/attention/self/query/kernel"),
    # run_classifier's head is [num_labels, H]; nothing in the config records num_labels.
    Dim("C", None, shape_of=("output_weights", 0), on_conflict="checkpoint"),
)

LOOPS = {"i": "L"}

# --- parts ------------------------------------------------------------------------------------

EMB = "bert/embeddings"
LAYER = "bert/encoder/layer_{i}"
HF_LAYER = "{p}encoder.layer.{i}"




EMBEDDINGS = Part(
    "embeddings",
    marker=f"{EMB}/word_embeddings",
    label="embeddings",
    rules=(
        rule("{p}embeddings.word_embeddings.weight", f"{EMB}/word_embeddings", "copy", ("V", "H")),
        rule("{p}embeddings.position_embeddings.weight", f"{EMB}/position_embeddings", "copy", ("P", "H")),
        rule("{p}embeddings.token_type_embeddings.weight", f"{EMB}/token_type_embeddings", "copy", ("T", "H")),
        *layer_norm(f"{EMB}/LayerNorm", "{p}embeddings.LayerNorm", "H"),
    ),
)

ENCODER = Part(
    "encoder",
    marker="bert/encoder/layer_0/attention/self/query/kernel",
    label="encoder layers",
    rules=(
        *dense(f"{LAYER}/attention/self/query", f"{HF_LAYER}.attention.self.query", "H", "H"),
        *dense(f"{LAYER}/attention/self/key", f"{HF_LAYER}.attention.self.key", "H", "H"),
        *dense(f"{LAYER}/attention/self/value", f"{HF_LAYER}.attention.self.value", "H", "H"),
        *dense(f"{LAYER}/attention/output/dense", f"{HF_LAYER}.attention.output.dense", "H", "H"),
        *layer_norm(f"{LAYER}/attention/output/LayerNorm", f"{HF_LAYER}.attention.output.LayerNorm", "H"),
        *dense(f"{LAYER}/intermediate/dense", f"{HF_LAYER}.intermediate.dense", "H", "I"),
        *dense(f"{LAYER}/output/dense", f"{HF_LAYER}.output.dense", "I", "H"),
        *layer_norm(f"{LAYER}/output/LayerNorm", f"{HF_LAYER}.output.LayerNorm", "H"),
    ),
)

POOLER = Part(
    "pooler",
    marker="bert/pooler/dense/kernel",
    label="pooler",
    rules=dense("bert/pooler/dense", "{p}pooler.dense", "H", "H"),
)

MLM = Part(
    "mlm",
    marker="cls/predictions/output_bias",
    label="masked-LM head",
    rules=(
        *dense("cls/predictions/transform/dense", "cls.predictions.transform.dense", "H", "H"),
        *layer_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm", "H"),
        rule("cls.predictions.bias", "cls/predictions/output_bias", "copy", ("V",)),
    ),
    # The TF graph multiplies by the word embeddings (no separate decoder matrix), and
    # transformers ties the decoder to them and its bias to cls.predictions.bias.
    tied={
        "cls.predictions.decoder.weight": "{p}embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    },
)

NSP = Part(
    "nsp",
    marker="cls/seq_relationship/output_weights",
    label="next-sentence head",
    rules=(
        # Upstream multiplies with transpose_b=True: already [out, in].
        rule("cls.seq_relationship.weight", "cls/seq_relationship/output_weights", "copy", (2, "H")),
        rule("cls.seq_relationship.bias", "cls/seq_relationship/output_bias", "copy", (2,)),
    ),
)

CLASSIFIER = Part(
    "classifier",
    marker="output_weights",
    label="classifier head (run_classifier)",
    rules=(
        rule("classifier.weight", "output_weights", "copy", ("C", "H"), why="transpose_b=True in run_classifier: already [out, in]"),
        rule("classifier.bias", "output_bias", "copy", ("C",)),
    ),
)

SQUAD = Part(
    "squad",
    marker="cls/squad/output_weights",
    label="SQuAD head (run_squad)",
    rules=(
        rule("qa_outputs.weight", "cls/squad/output_weights", "copy", (2, "H"), why="row 0 = start, row 1 = end, as in transformers"),
        rule("qa_outputs.bias", "cls/squad/output_bias", "copy", (2,)),
    ),
)

# --- targets (first match wins) ---------------------------------------------------------------

BASE = frozenset({"embeddings", "encoder"})
NO_POOLER = {"pooler": "this transformers class has no pooler; the TF pooler is not used by this head"}

TARGETS = (
    Target(
        "BertForPreTraining",
        BASE | {"pooler", "mlm", "nsp"},
        "bert.",
        outputs=(Output("mlm_logits", "prediction_logits", "positions"), Output("nsp_logits", "seq_relationship_logits")),
    ),
    Target("BertForMaskedLM", BASE | {"mlm"}, "bert.", outputs=(Output("mlm_logits", "logits", "positions"),), discards=NO_POOLER),
    Target(
        "BertForSequenceClassification",
        BASE | {"pooler", "classifier"},
        "bert.",
        outputs=(Output("classifier_logits", "logits"),),
    ),
    Target(
        "BertForQuestionAnswering",
        BASE | {"squad"},
        "bert.",
        outputs=(Output("start_logits", "start_logits"), Output("end_logits", "end_logits")),
        discards=NO_POOLER,
        config={"num_labels": 2},
    ),
    Target("BertModel", BASE | {"pooler"}, ""),
)

# --- config.json --------------------------------------------------------------------------------

# BERT config keys that transformers' BertConfig reads under the same name.
CARRIED = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
    "type_vocab_size", "initializer_range",
)

def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
    """BertConfig fields from the TF config; sizes come from the resolved dims."""
    config = {key: tf_config[key] for key in CARRIED if key in tf_config}
    config.update(
        vocab_size=dims["V"],
        hidden_size=dims["H"],
        num_hidden_layers=dims["L"],
        intermediate_size=dims["I"],
        max_position_embeddings=dims["P"],
        type_vocab_size=dims["T"],
        layer_norm_eps=1e-12,
        pad_token_id=0,
    )
    if "C" in dims:
        config["num_labels"] = dims["C"]
    config["hidden_act"] = hidden_act(tf_config, options["gelu"])
    return config


# --- Keras-style LayerNorm names (docs/MAPPING.md §9) ------------------------------------------------

# Training code ported to TF2 often builds BERT's graph with tf.keras.layers.LayerNormalization,
# whose variables are named by a global counter (layer_normalization, layer_normalization_1, …)
# inside the scope where the layer was built. The scope says which LayerNorm it is wherever the
# table has exactly one LayerNorm per scope (embeddings, each attention output, each layer
# output, the MLM transform); the counter is ignored. Two candidates for one scope are refused
# by the planner; names whose scope says nothing (top level) by the refusal below.
KERAS_LAYER_NORM = Rename(
    r"(.+)/layer_normalization(?:_\d+)?/(gamma|beta)",
    r"\1/LayerNorm/\2",
    "Keras-style LayerNorm names (layer_normalization[_N]) placed by their scope",
)
KERAS_LAYER_NORM_UNPLACED = Refusal(
    r"layer_normalization(?:_\d+)?/(?:gamma|beta)",
    "Keras-style LayerNorm variables outside any scope: only their creation order (the _N counter) would say "
    "which layer they belong to, and tf2hf does not guess. Rebuild the checkpoint with the LayerNorms inside "
    "their layers' scopes (or named LayerNorm); nothing was written",
)

FAMILY = Family(
    name="bert",
    description="google-research/bert: pre-training, MLM-only, run_classifier, run_squad, encoder-only",
    model_type="bert",
    signature=("bert/embeddings/word_embeddings", "bert/encoder/layer_0/attention/self/query/kernel"),
    dims=DIMS,
    loops=LOOPS,
    parts=(EMBEDDINGS, ENCODER, POOLER, MLM, NSP, CLASSIFIER, SQUAD),
    targets=TARGETS,
    hf_config=hf_config,
    reference="tf2hf.verify.references.bert:forward",
    default_gelu="erf",
    renames=(KERAS_LAYER_NORM,),
    refuse=(KERAS_LAYER_NORM_UNPLACED,),
)
