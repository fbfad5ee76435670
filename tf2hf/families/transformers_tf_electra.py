"""transformers' own TF ELECTRA classes (``TFElectra*`` of transformers ≤ 4.x), as users kept them.

The same two files as :mod:`tf2hf.families.transformers_tf_bert` (docs/KERAS.md), under the scope
``electra``: E-wide embeddings, ``embeddings_project`` to H (TF and transformers both create it
exactly when E != H), BERT's layers (``electra/encoder/layer_._i``), no pooler. Every head is made
of Keras Dense layers (transposed), each class's under its own names, so the heads present tell
the class:

* ``discriminator_predictions``: ``dense`` (H → H), the activation, ``dense_prediction`` (H → 1);
* the generator (``TFElectraForMaskedLM``): ``generator_predictions`` (``dense`` H → E, erf GELU
  whatever ``hidden_act`` says, ``LayerNorm``), then ``generator_lm_head``: the word embeddings
  transposed plus its ``bias`` (transformers ties ``generator_lm_head.weight`` to them);
* ``classifier/dense`` + ``classifier/out_proj`` (sequence classification: first token, dense,
  erf GELU, out_proj); a bare ``classifier`` Dense (token classification, every token);
  ``qa_outputs``;
* ``sequence_summary/summary`` + a one-wide ``classifier`` (multiple choice: the config's
  ``summary_*`` settings, transformers' defaults: first token, projection, GELU).
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Output, Part, Target, dense, layer_norm, rule
from tf2hf.families.blocks import embeddings, layer
from tf2hf.families.keras_blocks import dense_to, embedding_renames, encoder_renames, keras_family

EMB = "electra/embeddings"
WORD = f"{EMB}/word_embeddings/weight"
QUERY0 = "electra/encoder/layer_._0/attention/self/query/kernel"

DIMS = (
    Dim("V", "vocab_size", shape_of=(WORD, 0)),
    Dim("E", "embedding_size", shape_of=(WORD, 1)),
    Dim("H", "hidden_size", shape_of=("electra/encoder/layer_._0/attention/self/query/kernel", 1)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings/embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings/embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=("electra/encoder/layer_._0/intermediate/dense/kernel", 1)),
    Dim("L", "num_hidden_layers", count_of="electra/encoder/layer_._{i}/attention/self/query/kernel"),
    # Labels: the sequence classifier's out_proj, else the token classifier's Dense (the engine
    # writes id2label from C, else D: keras_blocks.transformers_config).
    Dim("C", None, shape_of=("classifier/out_proj/kernel", 1)),
    Dim("D", None, shape_of=("classifier/kernel", 1)),
)

EMBEDDINGS = Part(
    "embeddings", marker=WORD, label="embeddings (E wide)",
    rules=embeddings(WORD, f"{EMB}/position_embeddings/embeddings", f"{EMB}/token_type_embeddings/embeddings", f"{EMB}/LayerNorm", "E"),
)
PROJECT = Part("embeddings_project", marker="electra/embeddings_project/kernel", label="embeddings_project (E != H)",
               rules=dense("electra/embeddings_project", "{p}embeddings_project", "E", "H"), optional=True)
ENCODER = Part("encoder", marker=QUERY0, label="encoder layers (layer_._i)", rules=layer("electra/encoder/layer_._{i}"))
DISCRIMINATOR = Part(
    "discriminator", marker="discriminator_predictions/dense_prediction/kernel", label="discriminator head",
    rules=(*dense("discriminator_predictions/dense", "discriminator_predictions.dense", "H", "H"),
           *dense_to("discriminator_predictions/dense_prediction", "discriminator_predictions.dense_prediction", 1)),
)

GENERATOR = Part(
    "mlm", marker="generator_lm_head/bias", label="generator head (generator_predictions, generator_lm_head)",
    rules=(*dense("generator_predictions/dense", "generator_predictions.dense", "H", "E"),
           *layer_norm("generator_predictions/LayerNorm", "generator_predictions.LayerNorm", "E"),
           rule("generator_lm_head.bias", "generator_lm_head/bias", "copy", ("V",))),
    # TFElectraMaskedLMHead decodes with the input embeddings themselves.
    tied={"generator_lm_head.weight": "electra.embeddings.word_embeddings.weight"},
)
CLASSIFIER = Part(
    "classifier", marker="classifier/out_proj/kernel", label="classification head (classifier/dense, out_proj)",
    rules=(*dense("classifier/dense", "classifier.dense", "H", "H"), *dense("classifier/out_proj", "classifier.out_proj", "H", "C")),
)
TOKEN = Part("token", marker="classifier/kernel", label="classifier (Dense)", rules=dense("classifier", "classifier", "H", "D"))
QA = Part("squad", marker="qa_outputs/kernel", label="span head (qa_outputs)", rules=dense_to("qa_outputs", "qa_outputs", 2))
# The summary is H wide: ElectraConfig has no summary_proj_to_labels, so neither framework
# projects to the labels; the classifier after it gives one score per choice.
CHOICE = Part(
    "choice", marker="sequence_summary/summary/kernel", label="multiple-choice head (sequence_summary, classifier)",
    rules=(*dense("sequence_summary/summary", "sequence_summary.summary", "H", "H"), *dense_to("classifier", "classifier", 1)),
)

BASE = frozenset({"embeddings", "embeddings_project", "encoder"})
TARGETS = (
    Target("ElectraForPreTraining", BASE | {"discriminator"}, "electra.", outputs=(Output("discriminator_logits", "logits"),), task="pretraining"),
    Target("ElectraForMaskedLM", BASE | {"mlm"}, "electra.", outputs=(Output("mlm_logits", "logits"),), task="fill-mask"),
    Target("ElectraForSequenceClassification", BASE | {"classifier"}, "electra.", outputs=(Output("classifier_logits", "logits"),),
           task="text-classification"),
    Target("ElectraForTokenClassification", BASE | {"token"}, "electra.", outputs=(Output("token_logits", "logits"),),
           task="token-classification"),
    Target("ElectraForQuestionAnswering", BASE | {"squad"}, "electra.",
           outputs=(Output("start_logits", "start_logits"), Output("end_logits", "end_logits")), task="question-answering"),
    # Verified on the batch taken as the choices of one example ([1, choices, seq]).
    Target("ElectraForMultipleChoice", BASE | {"choice"}, "electra.", task="multiple-choice",
           outputs=(Output("choice_logits", "logits", "choices"),),
           discards={"token": "the multiple-choice head's classifier, read with its sequence_summary"}),
    Target("ElectraModel", BASE, "", task="feature-extraction"),
)

FAMILY = keras_family(
    "transformers_tf_electra", "Electra", "ELECTRA classes (TFElectra*)",
    signature=(WORD, QUERY0), dims=DIMS, loops={"i": "L"}, parts=(EMBEDDINGS, PROJECT, ENCODER, DISCRIMINATOR, GENERATOR, CLASSIFIER, TOKEN, QA, CHOICE),
    targets=TARGETS,
    renames=embedding_renames("electra") + encoder_renames("electra"), base_parts=BASE,
    sizes={"vocab_size": "V", "embedding_size": "E", "hidden_size": "H", "num_hidden_layers": "L", "intermediate_size": "I",
           "max_position_embeddings": "P", "type_vocab_size": "T"},
)
