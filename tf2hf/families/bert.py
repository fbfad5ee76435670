"""google-research/bert (TF1): every variable of run_pretraining, run_classifier and run_squad.

Sources are the names the upstream ``modeling.py`` and ``run_*.py`` create; targets are the
state_dict keys of transformers' ``Bert*`` classes (docs/MAPPING.md §2).
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Family, GraphProbe, Part, Refusal, Rename, hidden_act
from tf2hf.families.blocks import HF_BERT_MLM, classifier, head_targets, layer, mlm_part, pooler, scoped_embeddings, sentence_head, squad

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

EMBEDDINGS = Part("embeddings", marker=f"{EMB}/word_embeddings", label="embeddings", rules=scoped_embeddings(EMB))

ENCODER = Part(
    "encoder",
    marker="bert/encoder/layer_0/attention/self/query/kernel",
    label="encoder layers",
    rules=layer(LAYER),
)

POOLER = pooler("bert/pooler/dense", "{p}pooler.dense")

# The TF graph multiplies by the word embeddings (no separate decoder matrix), and
# transformers ties the decoder to them and its bias to cls.predictions.bias.
MLM = mlm_part(HF_BERT_MLM, "cls.predictions")

# Upstream multiplies with transpose_b=True: already [out, in].
NSP = Part("nsp", marker="cls/seq_relationship/output_weights", label="next-sentence head", rules=sentence_head("cls.seq_relationship"))

CLASSIFIER = Part(
    "classifier",
    marker="output_weights",
    label="classifier head (run_classifier)",
    rules=classifier(why="transpose_b=True in run_classifier: already [out, in]"),
)

SQUAD = Part(
    "squad",
    marker="cls/squad/output_weights",
    label="SQuAD head (run_squad)",
    rules=squad(why="row 0 = start, row 1 = end, as in transformers"),
)

# --- targets (first match wins) ---------------------------------------------------------------

BASE = frozenset({"embeddings", "encoder"})

TARGETS = head_targets("Bert", "bert.", BASE, "nsp", "seq_relationship_logits", squad=True)

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
    # modeling.py names layer 0's ops as its variables; the gelu is computed inside intermediate/dense.
    graph=GraphProbe("bert/encoder/layer_0/intermediate/", "bert/encoder/layer_0/attention/self/",
                     epsilon="bert/encoder/layer_0/attention/output/LayerNorm/batchnorm/add/y"),
    default_gelu="erf",
    renames=(KERAS_LAYER_NORM,),
    refuse=(KERAS_LAYER_NORM_UNPLACED,),
    # modeling.py's scope and the pre-training heads'; run_classifier's output_weights/bias are
    # top-level but mapped. Anything else beside them is a head of the user's own.
    scopes=("bert/", "cls/"),
)
