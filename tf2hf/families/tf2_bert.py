"""tensorflow/models' TF2 BERT encoder, saved object-based by ``tf.train.Checkpoint``.

The 2020 ``TransformerEncoder`` (official/nlp/modeling/networks) is a functional Keras model, so
``tf.train.Checkpoint(model=encoder)`` (or ``encoder=``, as ``tf2_encoder_checkpoint_converter.py``
and later releases name it) saves its layers by position: ``layer_with_weights-N`` with
0/1/2 = word/position/type embeddings, 3 = the embedding LayerNorm, 4 … L+3 = the Transformer
layers, L+4 = the pooler (docs/MAPPING.md §6). Every name ends in ``/.ATTRIBUTES/VARIABLE_VALUE``.

The attention kernels keep one axis per head: q/k/v ``[H, heads, head_dim]`` with biases
``[heads, head_dim]``, the output projection ``[heads, head_dim, H]`` (``_attention_output_dense``,
or ``_attention_layer/_output_dense`` where the layer uses Keras' MultiHeadAttention's own).
The head count is therefore a shape, cross-checked against the config.

The encoder may sit at any depth of the object graph: the engine finds the prefix in front of
``layer_with_weights-0/embeddings`` (``model/``, ``encoder/``, or ``model/layer_with_weights-0/``
when the encoder is the first layer of a Keras model). A Keras model that puts one Dense layer
on the encoder's sequence output saves it beside the encoder, as the model's next layer with
weights (``../layer_with_weights-1`` from the encoder): its kernel ``[H, n]`` is a span head
(``--task question-answering``, n = 2: column 0 start, column 1 end) or a classifier
(``--task text-classification`` on the pooled output, ``token-classification`` per token). The
checkpoint does not say which, so ``auto`` refuses and names the tasks.

Optimizer state (``.OPTIMIZER_SLOT``, ``optimizer/…``) is dropped; other task heads saved with
the encoder have no documented layout in this format and are refused as unknown variables,
listed.
"""

from __future__ import annotations

from tf2hf.engine.nonweights import OPTIMIZER
from tf2hf.engine.table import DropRule, Dim, Family, Output, Part, Rename, Rule, Target, dense, hidden_act, rule
from tf2hf.families.blocks import NO_POOLER, TF_KERAS, embeddings, layer, pooler

LAYER = "layer_with_weights-{i+4}"
POOLER = "layer_with_weights-{L+4}"
QUERY0 = "layer_with_weights-4/_attention_layer/_query_dense/kernel"
# The Dense layer beside the encoder: the Keras model's second layer with weights.
HEAD = "../layer_with_weights-1"

DIMS = (
    Dim("V", "vocab_size", shape_of=("layer_with_weights-0/embeddings", 0)),
    Dim("H", "hidden_size", shape_of=("layer_with_weights-0/embeddings", 1)),
    Dim("P", "max_position_embeddings", shape_of=("layer_with_weights-1/embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=("layer_with_weights-2/embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=("layer_with_weights-4/_intermediate_dense/kernel", 1)),
    Dim("N", "num_attention_heads", shape_of=(QUERY0, 1)),
    Dim("L", "num_hidden_layers", count_of="layer_with_weights-{i+4}/_attention_layer/_query_dense/kernel"),
    # Nothing in a BERT config records a head's width.
    Dim("C", None, shape_of=(f"{HEAD}/kernel", 1), on_conflict="checkpoint"),
)

RENAMES = (
    Rename(r"(.+)/\.ATTRIBUTES/VARIABLE_VALUE", r"\1", "tf.train.Checkpoint's /.ATTRIBUTES/VARIABLE_VALUE suffix"),
    Rename(r"(layer_with_weights-\d+)/_attention_layer/_output_dense/(kernel|bias)", r"\1/_attention_output_dense/\2",
           "attention output projection saved as the MultiHeadAttention's own _attention_layer/_output_dense"),
)

DROPS = (
    DropRule(r".+/\.OPTIMIZER_SLOT/.+", OPTIMIZER, "TF2 optimizer slot (.OPTIMIZER_SLOT/optimizer/m, v, ...)"),
    DropRule(r"optimizer/.+", OPTIMIZER, "TF2 optimizer state (iterations, learning rate, beta powers)"),
)


# The attention kernels keep one axis per head; the other sublayers are BERT's dense layers.


def _heads_dense(src: str, dst: str, n_in: str, n_out: str) -> tuple[Rule, Rule]:
    return (
        rule(f"{dst}.weight", f"{src}/kernel", "merge_out_transpose", (n_out, n_in), why="[H, heads, head_dim]: heads merged, then [out, in]"),
        rule(f"{dst}.bias", f"{src}/bias", "flatten", (n_out,), why="[heads, head_dim] merged"),
    )


def _heads_output(src: str, dst: str, n_in: str, n_out: str) -> tuple[Rule, Rule]:
    return (
        rule(f"{dst}.weight", f"{src}/kernel", "merge_in_transpose", (n_out, n_in), why="[heads, head_dim, H]: heads merged, then [out, in]"),
        rule(f"{dst}.bias", f"{src}/bias", "copy", (n_out,)),
    )


EMBEDDINGS = Part(
    "embeddings",
    marker="layer_with_weights-0/embeddings",
    label="embeddings (layer_with_weights-0…3)",
    rules=embeddings(
        "layer_with_weights-0/embeddings", "layer_with_weights-1/embeddings", "layer_with_weights-2/embeddings", "layer_with_weights-3",
    ),
)

ENCODER = Part(
    "encoder",
    marker=QUERY0,
    label="Transformer layers (layer_with_weights-4…L+3)",
    rules=layer(LAYER, tf=TF_KERAS, attention=_heads_dense, attention_output=_heads_output),
)

POOLER_PART = pooler(POOLER, "{p}pooler.dense", label="pooler (layer_with_weights-L+4)")

HEAD_LABEL = "Dense layer beside the encoder (layer_with_weights-1)"

# One Dense layer, two readings; both parts are present when it is, and each class takes one.
SPAN = Part(
    "squad",
    marker=f"{HEAD}/kernel",
    label=HEAD_LABEL,
    rules=(
        rule("qa_outputs.weight", f"{HEAD}/kernel", "transpose", (2, "H"),
             why="a Keras Dense kernel [H, 2] (column 0 = start, 1 = end), transposed to [out, in]"),
        rule("qa_outputs.bias", f"{HEAD}/bias", "copy", (2,)),
    ),
)
CLASSIFIER = Part("classifier", marker=f"{HEAD}/kernel", label=HEAD_LABEL, rules=dense(HEAD, "classifier", "H", "C"))

BASE = frozenset({"embeddings", "encoder"})
AS_QA = {"classifier": "the same Dense layer, written as qa_outputs"}
AS_CLASSIFIER = {"squad": "the same Dense layer, written as the classifier"}

# Only BertModel is chosen by `auto`: a bare Dense layer does not say its task (targets.py).
TARGETS = (
    Target("BertModel", BASE | {"pooler"}, "", task="feature-extraction"),
    Target("BertForQuestionAnswering", BASE | {"squad"}, "bert.",
           outputs=(Output("start_logits", "start_logits"), Output("end_logits", "end_logits")),
           discards={**NO_POOLER, **AS_QA}, config={"num_labels": 2}, task="question-answering", auto=False),
    Target("BertForSequenceClassification", BASE | {"pooler", "classifier"}, "bert.", outputs=(Output("classifier_logits", "logits"),),
           discards=AS_CLASSIFIER, task="text-classification", auto=False),
    Target("BertForTokenClassification", BASE | {"classifier"}, "bert.", outputs=(Output("token_logits", "logits"),),
           discards={**NO_POOLER, **AS_CLASSIFIER}, task="token-classification", auto=False),
)

CARRIED = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")


def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
    config = {key: tf_config[key] for key in CARRIED if key in tf_config}
    config.update(
        vocab_size=dims["V"], hidden_size=dims["H"], num_hidden_layers=dims["L"], num_attention_heads=dims["N"],
        intermediate_size=dims["I"], max_position_embeddings=dims["P"], type_vocab_size=dims["T"],
        layer_norm_eps=1e-12, pad_token_id=0, hidden_act=hidden_act(tf_config, options["gelu"]),
    )
    if "C" in dims:
        config["num_labels"] = dims["C"]
    return config


FAMILY = Family(
    name="tf2_bert",
    description="tensorflow/models TF2 BERT encoder saved by tf.train.Checkpoint (layer_with_weights-N, 3-D attention kernels)",
    model_type="bert",
    signature=("layer_with_weights-0/embeddings", QUERY0),
    dims=DIMS,
    loops={"i": "L"},
    parts=(EMBEDDINGS, ENCODER, POOLER_PART, SPAN, CLASSIFIER),
    targets=TARGETS,
    hf_config=hf_config,
    reference="tf2hf.verify.references.tf2_bert:forward",
    # official/modeling/activations/gelu.py: tf.keras.activations.gelu(x, approximate=True).
    default_gelu="tanh",
    renames=RENAMES,
    extra_drops=DROPS,
)
