"""Rule templates shared by the family tables: BERT's blocks, written once.

Every BERT-family graph is built from the same pieces: embedding tables and their LayerNorm, a
post-LN Transformer layer, a pooler, the masked-LM and sentence heads, the classifier and SQuAD
heads. What changes between families is only where each piece lives on either side (the TF
scope and the transformers prefix) and, for a few pieces, how a kernel is stored. The templates
below take those as parameters and return plain tuples of :class:`~tf2hf.engine.table.Rule`, so
a family table still lists its parts as data; nothing here knows a family by name.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from tf2hf.engine.table import Output, Part, Rule, Target, dense, layer_norm, rule

# --- embeddings ---------------------------------------------------------------------------------

WORD = "{p}embeddings.word_embeddings.weight"


def embeddings(word: str | Rule, position: str, token_type: str, norm: str, width: str = "H") -> tuple[Rule, ...]:
    """The three embedding tables and their LayerNorm, ``width`` wide, from their TF names.

    ``word`` is the TF name of the word table, or the rule that computes it where TF multiplies
    factors instead of storing one table (brightmart's ``word_embeddings_2``)."""
    return (
        word if isinstance(word, Rule) else rule(WORD, word, "copy", ("V", width)),
        rule("{p}embeddings.position_embeddings.weight", position, "copy", ("P", width)),
        rule("{p}embeddings.token_type_embeddings.weight", token_type, "copy", ("T", width)),
        *layer_norm(norm, "{p}embeddings.LayerNorm", width),
    )


def scoped_embeddings(scope: str, width: str = "H", word: Rule | None = None) -> tuple[Rule, ...]:
    """:func:`embeddings` under TF1 ``modeling.py``'s names: ``<scope>/word_embeddings`` …
    ``<scope>/LayerNorm``."""
    return embeddings(
        word or f"{scope}/word_embeddings", f"{scope}/position_embeddings", f"{scope}/token_type_embeddings",
        f"{scope}/LayerNorm", width,
    )


# --- the Transformer layer ----------------------------------------------------------------------


class LayerNames(NamedTuple):
    """Where the eight sublayers of one post-LN Transformer layer live, relative to the layer's
    scope (TF, joined by ``/``) or prefix (transformers, joined by ``.``)."""

    query: str
    key: str
    value: str
    attention_output: str
    attention_norm: str
    intermediate: str
    output: str
    output_norm: str


# One row a sublayer, one column a layout (the order of the rules each layer expands into):
# TF1 modeling.py (BERT, ELECTRA, brightmart's layer_shared); google-research/albert's modeling.py,
# where LayerNorm follows attention and LayerNorm_1 the feed-forward block, both directly in the
# inner group's scope; tensorflow/models' TF2 TransformerEncoderBlock (Keras attribute names);
# transformers' BertLayer (also ElectraLayer); transformers' AlbertLayer.
_LAYER_TABLE = (
    ("attention/self/query", "attention_1/self/query", "_attention_layer/_query_dense", "attention.self.query", "attention.query"),
    ("attention/self/key", "attention_1/self/key", "_attention_layer/_key_dense", "attention.self.key", "attention.key"),
    ("attention/self/value", "attention_1/self/value", "_attention_layer/_value_dense", "attention.self.value", "attention.value"),
    ("attention/output/dense", "attention_1/output/dense", "_attention_output_dense", "attention.output.dense", "attention.dense"),
    ("attention/output/LayerNorm", "LayerNorm", "_attention_layer_norm", "attention.output.LayerNorm", "attention.LayerNorm"),
    ("intermediate/dense", "ffn_1/intermediate/dense", "_intermediate_dense", "intermediate.dense", "ffn"),
    ("output/dense", "ffn_1/intermediate/output/dense", "_output_dense", "output.dense", "ffn_output"),
    ("output/LayerNorm", "LayerNorm_1", "_output_layer_norm", "output.LayerNorm", "full_layer_layer_norm"),
)
TF_BERT, TF_ALBERT, TF_KERAS, HF_BERT, HF_ALBERT = (LayerNames(*column) for column in zip(*_LAYER_TABLE))

HF_LAYER = "{p}encoder.layer.{i}"

Linear = Callable[[str, str, str, str], tuple[Rule, ...]]


def layer(
    src: str,
    dst: str = HF_LAYER,
    hidden: str = "H",
    inner: str = "I",
    *,
    tf: LayerNames = TF_BERT,
    hf: LayerNames = HF_BERT,
    attention: Linear = dense,
    attention_output: Linear = dense,
) -> tuple[Rule, ...]:
    """One Transformer layer: TF scope ``src`` to transformers prefix ``dst``.

    ``attention`` makes the q/k/v rules and ``attention_output`` the attention output
    projection's, each called as ``(tf name, key prefix, n_in, n_out)``: a plain dense layer,
    unless the layout stores those kernels with one axis per head (TF2's Keras attention)."""
    return (
        *attention(f"{src}/{tf.query}", f"{dst}.{hf.query}", hidden, hidden),
        *attention(f"{src}/{tf.key}", f"{dst}.{hf.key}", hidden, hidden),
        *attention(f"{src}/{tf.value}", f"{dst}.{hf.value}", hidden, hidden),
        *attention_output(f"{src}/{tf.attention_output}", f"{dst}.{hf.attention_output}", hidden, hidden),
        *layer_norm(f"{src}/{tf.attention_norm}", f"{dst}.{hf.attention_norm}", hidden),
        *dense(f"{src}/{tf.intermediate}", f"{dst}.{hf.intermediate}", hidden, inner),
        *dense(f"{src}/{tf.output}", f"{dst}.{hf.output}", inner, hidden),
        *layer_norm(f"{src}/{tf.output_norm}", f"{dst}.{hf.output_norm}", hidden),
    )


# --- pooler and heads ---------------------------------------------------------------------------


def pooler(src: str, dst: str, label: str = "pooler") -> Part:
    """The dense layer on the first token (its tanh is in the graph, not in the weights)."""
    return Part("pooler", marker=f"{src}/kernel", label=label, rules=dense(src, dst, "H", "H"))


class HeadNames(NamedTuple):
    """A masked-LM head: its transform's dense layer and LayerNorm, and the output bias."""

    dense: str
    norm: str
    bias: str


TF_MLM = HeadNames("cls/predictions/transform/dense", "cls/predictions/transform/LayerNorm", "cls/predictions/output_bias")
HF_BERT_MLM = HeadNames("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias")
HF_ALBERT_MLM = HeadNames("predictions.dense", "predictions.LayerNorm", "predictions.bias")


def mlm(tf: HeadNames, hf: HeadNames, hidden: str = "H", width: str = "H") -> tuple[Rule, ...]:
    """The transform (dense ``hidden`` → ``width``, then LayerNorm) and the vocabulary bias; the
    decoder matrix is the word embeddings, which the family declares as tied."""
    return (
        *dense(tf.dense, hf.dense, hidden, width),
        *layer_norm(tf.norm, hf.norm, width),
        rule(hf.bias, tf.bias, "copy", ("V",)),
    )


def decoder_tied(head: str) -> dict[str, str]:
    """transformers ties ``<head>.decoder`` to the word embeddings and its bias to ``<head>.bias``,
    as the TF graph multiplies by the embedding table itself (no separate decoder matrix)."""
    return {f"{head}.decoder.weight": WORD, f"{head}.decoder.bias": f"{head}.bias"}


def mlm_part(hf: HeadNames, head: str, width: str = "H") -> Part:
    """The masked-LM head of a TF1 ``run_pretraining`` checkpoint, at transformers' ``head``."""
    return Part("mlm", marker=TF_MLM.bias, label="masked-LM head", rules=mlm(TF_MLM, hf, "H", width), tied=decoder_tied(head))


# Heads whose TF kernel is multiplied with transpose_b=True: already [out, in], so copied.


def sentence_head(dst: str, why: str = "") -> tuple[Rule, ...]:
    """``cls/seq_relationship``: BERT's next-sentence or ALBERT's sentence-order head, 2 ways."""
    return (
        rule(f"{dst}.weight", "cls/seq_relationship/output_weights", "copy", (2, "H"), why=why),
        rule(f"{dst}.bias", "cls/seq_relationship/output_bias", "copy", (2,)),
    )


def classifier(dst: str = "classifier", why: str = "transpose_b=True upstream: already [out, in]") -> tuple[Rule, ...]:
    """``run_classifier``'s ``output_weights`` [num_labels, H] and ``output_bias``."""
    return (
        rule(f"{dst}.weight", "output_weights", "copy", ("C", "H"), why=why),
        rule(f"{dst}.bias", "output_bias", "copy", ("C",)),
    )


def squad(why: str = "") -> tuple[Rule, ...]:
    """``run_squad``'s ``cls/squad`` [2, H]: row 0 = start, row 1 = end, as in ``qa_outputs``."""
    return (
        rule("qa_outputs.weight", "cls/squad/output_weights", "copy", (2, "H"), why=why),
        rule("qa_outputs.bias", "cls/squad/output_bias", "copy", (2,)),
    )


def identity(dst: str, n_out: str, n_in: str, why: str) -> tuple[Rule, Rule]:
    """A linear layer TF does not have where transformers always does: the identity and a zero
    bias compute exactly what TF computed without it. ``why`` ends each rule's reason."""
    return (
        rule(f"{dst}.weight", None, "eye", (n_out, n_in), why=f"{why}: identity"),
        rule(f"{dst}.bias", None, "zeros", (n_out,), why=f"{why}: zero"),
    )


#: A head class without a pooler, given a checkpoint that has one.
NO_POOLER = {"pooler": "this transformers class has no pooler; the TF pooler is not used by this head"}


# --- the classes of a run_pretraining / run_classifier / run_squad checkpoint ---------------------

MLM_LOGITS = "mlm_logits"


def head_targets(model: str, prefix: str, base: frozenset[str], sentence: str, sentence_field: str, squad: bool = False) -> tuple[Target, ...]:
    """``<model>ForPreTraining``, ``…ForMaskedLM``, ``…ForSequenceClassification``, with ``squad``
    ``…ForQuestionAnswering``, and ``<model>Model``, in this order (first match wins).

    ``sentence`` names the sentence head's part (``nsp``, ``sop``) and the reference output
    ``<sentence>_logits``; ``sentence_field`` is the transformers output it is compared with."""
    targets = [
        Target(
            f"{model}ForPreTraining", base | {"pooler", "mlm", sentence}, prefix,
            outputs=(Output(MLM_LOGITS, "prediction_logits", "positions"), Output(f"{sentence}_logits", sentence_field)),
            task="pretraining",
        ),
        Target(f"{model}ForMaskedLM", base | {"mlm"}, prefix, outputs=(Output(MLM_LOGITS, "logits", "positions"),), discards=NO_POOLER,
               task="fill-mask"),
        Target(f"{model}ForSequenceClassification", base | {"pooler", "classifier"}, prefix, outputs=(Output("classifier_logits", "logits"),),
               task="text-classification"),
        # run_classifier's output_weights applied to every token (tagging scripts such as
        # run_lac.py) are the same variables: only --task token-classification says so.
        Target(f"{model}ForTokenClassification", base | {"classifier"}, prefix, outputs=(Output("token_logits", "logits"),),
               discards=NO_POOLER, task="token-classification", auto=False),
    ]
    if squad:
        targets.append(Target(
            f"{model}ForQuestionAnswering", base | {"squad"}, prefix,
            outputs=(Output("start_logits", "start_logits"), Output("end_logits", "end_logits")),
            discards=NO_POOLER, config={"num_labels": 2}, task="question-answering",
        ))
    targets.append(Target(f"{model}Model", base | {"pooler"}, "", task="feature-extraction"))
    return tuple(targets)
