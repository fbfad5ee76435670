"""google-research/albert (TF1), also Google's Chinese ALBERT and brightmart's ``*_google_zh``.

Sources are the names of the upstream ``modeling.py``; targets are transformers' ``Albert*``
state_dict keys (docs/MAPPING.md §3). Groups and inner groups are loops over ``{g}`` and ``{j}``;
their counts and the embedding size come from the checkpoint, because released configs often
lack or misstate them.
"""

from __future__ import annotations

from tf2hf.engine.table import Dim, Family, GraphProbe, Part, Refusal, dense, hidden_act
from tf2hf.families.blocks import (
    HF_ALBERT, HF_ALBERT_MLM, TF_ALBERT, classifier, head_targets, identity, layer, mlm_part, pooler, scoped_embeddings,
    sentence_head, squad,
)

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

EMBEDDINGS = Part("embeddings", marker=f"{EMB}/word_embeddings", label="embeddings", rules=scoped_embeddings(EMB, "E"))

PROJECTION = Part(
    "projection",
    marker=f"{MAPPING}/kernel",
    label="embedding projection",
    rules=dense(MAPPING, "{p}encoder.embedding_hidden_mapping_in", "E", "H"),
    # TF creates this layer only when E != H; transformers always has it: the identity with a
    # zero bias computes exactly what TF computed without it.
    when_absent=identity("{p}encoder.embedding_hidden_mapping_in", "H", "E", "absent in TF (E == H)"),
    absent_note="embedding_size == hidden_size: TF has no embedding_hidden_mapping_in; wrote the identity and a zero bias",
)

ENCODER = Part(
    "encoder",
    marker="bert/encoder/transformer/group_0/inner_group_0/attention_1/self/query/kernel",
    label="shared layer groups",
    rules=layer(INNER, HF_INNER, tf=TF_ALBERT, hf=HF_ALBERT),
)

POOLER = pooler("bert/pooler/dense", "{p}pooler")

MLM = mlm_part(HF_ALBERT_MLM, "predictions", width="E")

SOP = Part("sop", marker="cls/seq_relationship/output_weights", label="sentence-order head", rules=sentence_head("sop_classifier.classifier"))

CLASSIFIER = Part("classifier", marker="output_weights", label="classifier head (run_classifier)", rules=classifier())

SQUAD = Part("squad", marker="cls/squad/output_weights", label="SQuAD v1 head", rules=squad())

BASE = frozenset({"embeddings", "projection", "encoder"})

TARGETS = head_targets("Albert", "albert.", BASE, "sop", "sop_logits", squad=True)

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
    # Variables live in group_0/inner_group_0, but each use of the group opens a layer_N name
    # scope: layer 0's ops are under group_0/layer_0/inner_group_0. The heads are in the
    # query kernel's reshape to [H, heads, head_size] (dense_layer_3d).
    graph=GraphProbe("bert/encoder/transformer/group_0/layer_0/inner_group_0/ffn_1/intermediate/",
                     "bert/encoder/transformer/group_0/layer_0/inner_group_0/attention_1/self/",
                     epsilon="bert/encoder/transformer/group_0/layer_0/inner_group_0/LayerNorm/batchnorm/add/y"),
    default_gelu="tanh",  # ALBERT's modeling.py computes the tanh formula, whatever its configs call it
    refuse=REFUSE,
    base_parts=BASE,
    scopes=("bert/", "cls/"),
    # AlbertModel(..., scope="albert") (its scope argument defaults to "bert") puts the encoder
    # under albert/; the heads of classifier_utils and squad_utils stay where they were.
    root_aliases={"albert/": "bert/"},
    group="albert",
    variant="albert",
    config_names=("albert_config*.json", "*config*.json"),
    vocab_names=("vocab.txt", "vocab_chinese.txt", "*vocab*.txt", "30k-clean.model", "spiece.model", "*.model"),
)
