"""transformers' own TF ELECTRA discriminator (``TFElectraForPreTraining``, ``TFElectraModel``).

The same two files as :mod:`tf2hf.families.transformers_tf_bert` (docs/KERAS.md), under the scope
``electra``: E-wide embeddings, ``embeddings_project`` to H (TF and transformers both create it
exactly when E != H), BERT's layers (``electra/encoder/layer_._i``), no pooler. The
discriminator head ``discriminator_predictions`` is ``dense`` (H → H), the activation, then
``dense_prediction`` (H → 1), both Keras Dense layers (transposed).

Not yet: the other TFElectra classes (the generator's ``generator_predictions`` /
``generator_lm_head``, ``classifier/dense`` + ``classifier/out_proj``, ``qa_outputs``): their
variables are unknown here, listed and refused.
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Output, Part, Target, dense
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

BASE = frozenset({"embeddings", "embeddings_project", "encoder"})
TARGETS = (
    Target("ElectraForPreTraining", BASE | {"discriminator"}, "electra.", outputs=(Output("discriminator_logits", "logits"),), task="pretraining"),
    Target("ElectraModel", BASE, "", task="feature-extraction"),
)

FAMILY = keras_family(
    "transformers_tf_electra", "Electra", "ELECTRA discriminator (TFElectraForPreTraining, TFElectraModel)",
    signature=(WORD, QUERY0), dims=DIMS, loops={"i": "L"}, parts=(EMBEDDINGS, PROJECT, ENCODER, DISCRIMINATOR), targets=TARGETS,
    renames=embedding_renames("electra") + encoder_renames("electra"), base_parts=BASE,
    sizes={"vocab_size": "V", "embedding_size": "E", "hidden_size": "H", "num_hidden_layers": "L", "intermediate_size": "I",
           "max_position_embeddings": "P", "type_vocab_size": "T"},
)
