"""transformers' own TF ALBERT classes (``TFAlbert*`` of transformers ≤ 4.x), as users kept them.

The same two files as :mod:`tf2hf.families.transformers_tf_bert` (docs/KERAS.md): ``tf_model.h5``
(variable names: ``tf_albert_for_masked_lm/albert/encoder/albert_layer_groups_._0/albert_layers_._0/…:0``)
and TF-format Keras checkpoints (object paths: ``albert_layer_groups/0/albert_layers/0``, the
embedding tables by their ``add_weight`` names), read as the h5 spells them by the renames below.

The traps, found by running TF (fixtures/make_keras.py, ``albert_mlm_bias_used`` in the
fixture's meta.json):

* ``TFAlbertMLMHead`` creates two vocabulary biases, ``predictions/bias`` and
  ``predictions/decoder/bias``; its ``call`` adds only ``decoder/bias`` (zeroing
  ``predictions/bias`` leaves TF's logits unchanged, zeroing ``decoder/bias`` does not). So
  ``decoder/bias`` is written as transformers' ``predictions.bias`` (to which
  ``predictions.decoder.bias`` is tied), and ``predictions/bias`` is dropped as unused.
* A Keras checkpoint escapes the ``/`` inside the weight name ``decoder/bias`` as ``.S``:
  ``predictions/decoder.Sbias``.
* ``embedding_hidden_mapping_in`` exists in both frameworks whatever E and H are.
* ``TFAlbertForMultipleChoice`` stores what a one-label sequence classifier stores; config.json's
  ``architectures`` chooses it (:func:`~tf2hf.families.keras_blocks.task_targets`).
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, DropRule, Part, Rename, dense
from tf2hf.families.blocks import HF_ALBERT, embeddings, layer
from tf2hf.families.keras_blocks import beside_dense, beside_target, dense_to, embedding_renames, keras_family, mlm_part, task_heads, task_targets

EMB = "albert/embeddings"
WORD = f"{EMB}/word_embeddings/weight"
INNER = "albert/encoder/albert_layer_groups_._{g}/albert_layers_._{j}"
INNER0 = "albert/encoder/albert_layer_groups_._0/albert_layers_._0"
QUERY0 = f"{INNER0}/attention/query/kernel"
HF_INNER = "{p}encoder.albert_layer_groups.{g}.albert_layers.{j}"

#: transformers' TF AlbertLayer, relative to the inner layer: the same sublayer names as the
#: PyTorch AlbertLayer's, joined by ``/``.
TF_ALBERT_LAYER = type(HF_ALBERT)(*(name.replace(".", "/") for name in HF_ALBERT))

DIMS = (
    Dim("V", "vocab_size", shape_of=(WORD, 0)),
    Dim("E", "embedding_size", shape_of=(WORD, 1)),
    Dim("H", "hidden_size", shape_of=("albert/encoder/embedding_hidden_mapping_in/kernel", 1)),
    Dim("P", "max_position_embeddings", shape_of=(f"{EMB}/position_embeddings/embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{EMB}/token_type_embeddings/embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=(f"{INNER0}/ffn/kernel", 1)),
    Dim("G", "num_hidden_groups", count_of="albert/encoder/albert_layer_groups_._{g}/albert_layers_._0/attention/query/kernel"),
    Dim("J", "inner_group_num", count_of="albert/encoder/albert_layer_groups_._0/albert_layers_._{j}/attention/query/kernel"),
    Dim("C", None, shape_of=("classifier/kernel", 1)),
)
# A TFAlbertModel inside the user's Keras model with a Dense on its pooled output (as BERT's table).
BESIDE, BESIDE_WIDTH = beside_dense()
DIMS += (BESIDE_WIDTH,)

_INNER = r"albert/encoder/albert_layer_groups_\._\d+/albert_layers_\._\d+"
RENAMES = (
    *embedding_renames("albert"),
    Rename(r"albert/encoder/albert_layer_groups/(\d+)/albert_layers/(\d+)/(.+)", r"albert/encoder/albert_layer_groups_._\1/albert_layers_._\2/\3",
           "Keras checkpoint: list attributes albert_layer_groups[g].albert_layers[j] for the name scopes …_._g, …_._j"),
    Rename(r"predictions/decoder\.Sbias", r"predictions/decoder/bias", "Keras checkpoint: '/' inside a weight name is escaped as '.S'"),
)

DROPS = (
    DropRule(r"predictions/bias", "unused weight",
             "TFAlbertMLMHead creates predictions/bias but adds predictions/decoder/bias to the logits (found by running TF)"),
)

EMBEDDINGS = Part(
    "embeddings", marker=WORD, label="embeddings (E wide)",
    rules=embeddings(WORD, f"{EMB}/position_embeddings/embeddings", f"{EMB}/token_type_embeddings/embeddings", f"{EMB}/LayerNorm", "E"),
)
ENCODER = Part(
    "encoder", marker=QUERY0, label="projection and shared layer groups",
    rules=(
        *dense("albert/encoder/embedding_hidden_mapping_in", "{p}encoder.embedding_hidden_mapping_in", "E", "H"),
        *layer(INNER, HF_INNER, tf=TF_ALBERT_LAYER, hf=HF_ALBERT),
    ),
)
POOLER = Part("pooler", marker="albert/pooler/kernel", label="pooler", rules=dense("albert/pooler", "{p}pooler", "H", "H"))
MLM = mlm_part(("predictions/dense", "predictions/LayerNorm", "predictions/decoder/bias"),
               ("predictions.dense", "predictions.LayerNorm", "predictions"), "albert", "E",
               "masked-LM head (predictions)", why="the bias TFAlbertMLMHead adds (predictions/bias is created but unused)")
SOP = Part("sop", marker="sop_classifier/classifier/kernel", label="sentence-order head", rules=dense_to("sop_classifier/classifier", "sop_classifier.classifier", 2))
CLASSIFIER, QA, CHOICE = task_heads()

BASE = frozenset({"embeddings", "encoder"})
TARGETS = task_targets("Albert", "albert.", BASE, "sop", "sop_logits") + (beside_target("Albert", "albert.", BASE),)


# transformers' ALBERT configs say "gelu_new" (tanh); a config saying "gelu" means erf.
FAMILY = keras_family(
    "transformers_tf_albert", "Albert", "ALBERT classes (TFAlbert*)", signature=(WORD, QUERY0), dims=DIMS, loops={"g": "G", "j": "J"},
    parts=(EMBEDDINGS, ENCODER, POOLER, MLM, SOP, CLASSIFIER, QA, CHOICE, BESIDE), targets=TARGETS, renames=RENAMES, drops=DROPS, base_parts=BASE,
    sizes={"vocab_size": "V", "embedding_size": "E", "hidden_size": "H", "intermediate_size": "I", "max_position_embeddings": "P",
           "type_vocab_size": "T", "num_hidden_groups": "G", "inner_group_num": "J"},
    vocab_names=("spiece.model", "vocab.txt"),
)
