"""transformers' own TF BERT classes (``TFBert*`` of transformers ≤ 4.x), as users kept them.

Two files hold the same variables (docs/KERAS.md):

* ``tf_model.h5`` of ``save_pretrained``: a Keras HDF5 weights file. The reader
  (:mod:`tf2hf.tfckpt.h5`) names each dataset by the TF variable name Keras recorded, e.g.
  ``tf_bert_for_sequence_classification/bert/encoder/layer_._0/attention/self/query/kernel:0``;
  the class scope in front (``tf_bert_model``, ``tf_bert_for_…``, with ``_1`` … when a process
  built several) is the root the engine finds, and ``:0`` is the variable's output index.
* a TF-format Keras checkpoint (``save_weights``, ``ModelCheckpoint``) of a model that holds the
  transformers model, at any depth (``layer_with_weights-0/…``, ``model/my_bert/…``): names are
  object paths, ``…/.ATTRIBUTES/VARIABLE_VALUE``, built from Python attribute names where the h5
  has name scopes — ``layer/0`` for ``layer_._0``, ``self_attention`` for ``self``,
  ``dense_output`` and ``bert_output`` for ``output``, and the embedding tables by their
  ``add_weight`` names (``embeddings/weight``, ``embeddings/embeddings`` = position,
  ``embeddings/token_type_embeddings``). The renames below read those as the h5 spells them.

The table is written in the h5 spelling without class scope and ``:0``. The graph is BERT's
(post-LN, erf GELU for ``"gelu"``, LayerNorm epsilon from the config); every kernel is a Keras
Dense ``[in, out]``, so every linear layer is transposed — including the heads, unlike
run_classifier's ``transpose_b`` ones. Targets follow the heads present; the class each head
belongs to is the TF class of the same name (``TFBertForTokenClassification`` has no pooler,
which is how it differs from ``TFBertForSequenceClassification``). ``TFBertForMultipleChoice``
stores exactly what a one-label ``TFBertForSequenceClassification`` stores; only config.json's
``architectures`` tells them apart, so its target names the architectures that choose it.

A ``TFBertModel`` inside the user's own functional Keras model, saved by ``save_weights`` /
``ModelCheckpoint``, is ``layer_with_weights-0/bert/…``; a Dense the user put on its pooled
output is ``layer_with_weights-1`` beside it. Nothing records that Dense's task: ``--task
text-classification`` writes it as the classifier (``D`` labels), ``auto`` names that task.
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Part, Rename, dense
from tf2hf.families.blocks import embeddings, layer
from tf2hf.families.keras_blocks import (beside_dense, beside_target, dense_to, embedding_renames, encoder_renames, keras_family, mlm_part,
                                        task_heads, task_targets)

EMB = "bert/embeddings"
LAYER = "bert/encoder/layer_._{i}"
QUERY0 = "bert/encoder/layer_._0/attention/self/query/kernel"
WORD = f"{EMB}/word_embeddings/weight"

DIMS = (
    Dim("V", "vocab_size", shape_of=(WORD, 0)),
    Dim("H", "hidden_size", shape_of=(WORD, 1)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings/embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings/embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=("bert/encoder/layer_._0/intermediate/dense/kernel", 1)),
    Dim("L", "num_hidden_layers", count_of="bert/encoder/layer_._{i}/attention/self/query/kernel"),
    # The labels are in config.json's id2label; the kernel's width is checked against them by
    # transformers when the folder loads (and by verification).
    Dim("C", None, shape_of=("classifier/kernel", 1)),
)
# A TFBertModel inside the user's Keras model with a Dense on its pooled output (real fine-tunes
# saved by ModelCheckpoint: layer_with_weights-0/bert/…, the Dense as layer_with_weights-1).
BESIDE, BESIDE_WIDTH = beside_dense()
DIMS += (BESIDE_WIDTH,)

RENAMES = (
    *embedding_renames("bert"),
    *encoder_renames("bert"),
    Rename(r"mlm___cls/(.+)", r"mlm/\1", "h5: TFBertForMaskedLM's head scope mlm___cls is its attribute mlm"),
    Rename(r"nsp___cls/(.+)", r"nsp/\1", "h5: TFBertForPreTraining's head scope nsp___cls is its attribute nsp"),
)

EMBEDDINGS = Part(
    "embeddings", marker=WORD, label="embeddings",
    rules=embeddings(WORD, f"{EMB}/position_embeddings/embeddings", f"{EMB}/token_type_embeddings/embeddings", f"{EMB}/LayerNorm"),
)
ENCODER = Part("encoder", marker=QUERY0, label="encoder layers (layer_._i)", rules=layer(LAYER))
POOLER = Part("pooler", marker="bert/pooler/dense/kernel", label="pooler", rules=dense("bert/pooler/dense", "{p}pooler.dense", "H", "H"))

# TFBertMLMHead adds predictions/bias after decoding with the word embeddings.
MLM = mlm_part(("mlm/predictions/transform/dense", "mlm/predictions/transform/LayerNorm", "mlm/predictions/bias"),
               ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions"), "bert", "H",
               "masked-LM head (mlm)")
NSP = Part("nsp", marker="nsp/seq_relationship/kernel", label="next-sentence head (nsp)", rules=dense_to("nsp/seq_relationship", "cls.seq_relationship", 2))
CLASSIFIER, QA, CHOICE = task_heads()

BASE = frozenset({"embeddings", "encoder"})
TARGETS = task_targets("Bert", "bert.", BASE, "nsp", "seq_relationship_logits") + (beside_target("Bert", "bert.", BASE),)


FAMILY = keras_family(
    "transformers_tf_bert", "Bert", "BERT classes (TFBert*)", signature=(WORD, QUERY0), dims=DIMS, loops={"i": "L"},
    parts=(EMBEDDINGS, ENCODER, POOLER, MLM, NSP, CLASSIFIER, QA, CHOICE, BESIDE), targets=TARGETS, renames=RENAMES, base_parts=BASE,
    sizes={"vocab_size": "V", "hidden_size": "H", "num_hidden_layers": "L", "intermediate_size": "I",
           "max_position_embeddings": "P", "type_vocab_size": "T"},
)
