"""google-research/electra (TF1), also ymcui's Chinese ELECTRA: two towers in one checkpoint.

``run_pretraining.py`` saves the discriminator under ``electra/`` and the generator under
``generator/``; the generator reads the discriminator's embeddings ``electra/embeddings/*``
unless it was trained with ``untied_generator_embeddings`` (then it has ``generator/embeddings``).
Both towers are ``model/modeling.py``'s BertModel with BERT's layer names, no pooler, and a
``<tower>/embeddings_project`` dense layer created only when the embedding width differs from the
tower's hidden size (transformers' ElectraModel has ``embeddings_project`` under the same
condition). Users choose the tower with ``--tower`` (docs/MAPPING.md §5).

Sizes come from shapes wherever they can: released configs often lack ``embedding_size``, and
nothing records the generator's sizes (``run_pretraining.get_generator_config`` scales the hidden
size by ``generator_hidden_size``, sets intermediate = 4 × hidden and heads = max(1, hidden // 64)).
"""

from __future__ import annotations

from tf2hf.errors import ConfigError
from tf2hf.engine.nonweights import BOOKKEEPING
from tf2hf.engine.table import DropRule, Dim, Family, GraphProbe, Output, Part, Refusal, Target, dense, hidden_act
from tf2hf.families.blocks import HF_LAYER, HeadNames, layer, mlm, scoped_embeddings

# --- names ----------------------------------------------------------------------------------

DISC = "electra"
GEN = "generator"
SHARED_EMB = "electra/embeddings"
GEN_EMB = "generator/embeddings"
QUERY = "encoder/layer_0/attention/self/query/kernel"
TAGGING_TASK = "chunk"  # finetune/task_builder.py: the only tagging task of run_finetuning.py
QA_TASKS = ("squad", "squadv1", "newsqa", "naturalqs", "triviaqa", "searchqa")
OTHER_TOWER = "other tower"


def _embeddings(name: str, src: str, width: str, label: str) -> Part:
    return Part(name, marker=f"{src}/word_embeddings", label=label, rules=scoped_embeddings(src, width))


def _projection(tower: str, width: str, hidden: str) -> Part:
    return Part(
        "projection",
        marker=f"{tower}/embeddings_project/kernel",
        label="embedding projection",
        rules=dense(f"{tower}/embeddings_project", "{p}embeddings_project", width, hidden),
        # modeling.py creates it only when the embedding width differs from the hidden size, and
        # ElectraModel has it under the same condition: absent in both, or present in both.
        optional=True,
        absent_note="embedding size equals hidden size: no embeddings_project (in TF and in transformers)",
    )


def _encoder(tower: str, hidden: str, inner: str) -> Part:
    rules = layer(f"{tower}/encoder/layer_{{i}}", HF_LAYER, hidden, inner)
    return Part("encoder", marker=f"{tower}/{QUERY}", label=f"{tower} layers", rules=rules)


# --- what is never a weight of the chosen tower -----------------------------------------------

# docs/MAPPING.md §1: ELECTRA checkpoints may carry a scalar `temperature`; it is not a weight.
TEMPERATURE = DropRule("temperature", BOOKKEEPING, "ELECTRA's sampling temperature (a scalar, not a weight)")

DISC_DROPS = (
    TEMPERATURE,
    DropRule(r"(generator|generator_predictions)/.+", OTHER_TOWER,
             "the generator tower and its slots (convert it with --tower generator)"),
)
GEN_DROPS = (
    TEMPERATURE,
    # electra/embeddings/* is mapped (tied generator) or discarded (untied): never reaches here.
    DropRule(r"(electra|discriminator_predictions|task_specific)/.+", OTHER_TOWER,
             "the discriminator tower and its slots (convert it with --tower discriminator)"),
)

REFUSE = (
    # Weights only (kernel, bias), so that the message lists the head, not its optimizer slots.
    Refusal(rf"task_specific/({'|'.join(QA_TASKS)})/(.+/)?(kernel|bias)",
            "a question-answering head of ELECTRA's run_finetuning.py (finetune/qa/qa_tasks.py: start logits, "
            "an end-logit network conditioned on the start, an answerable classifier); no transformers class "
            "computes it. Nothing was written"),
    Refusal(rf"task_specific/(?!{TAGGING_TASK}/)[^/]+/(.+/)?(kernel|bias)",
            "a classification or regression head of ELECTRA's run_finetuning.py (finetune/classification: one "
            "dense layer on the first token); transformers' ElectraForSequenceClassification puts a dense layer "
            "and a GELU before its output layer, so no transformers class computes this head exactly. Nothing "
            "was written"),
)

# --- discriminator ----------------------------------------------------------------------------

DISC_DIMS = (
    Dim("V", "vocab_size", shape_of=(f"{SHARED_EMB}/word_embeddings", 0)),
    # Configs often lack embedding_size, and transformers' default (128) is wrong for base/large.
    Dim("E", "embedding_size", shape_of=(f"{SHARED_EMB}/word_embeddings", 1), on_conflict="checkpoint"),
    Dim("H", "hidden_size", shape_of=(f"{DISC}/{QUERY}", 0)),
    Dim("P", "max_position_embeddings", shape_of=(f"{SHARED_EMB}/position_embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{SHARED_EMB}/token_type_embeddings", 0)),
    Dim("I", "intermediate_size", shape_of=(f"{DISC}/encoder/layer_0/intermediate/dense/kernel", 1)),
    Dim("L", "num_hidden_layers", count_of=f"{DISC}/encoder/layer_{{i}}/attention/self/query/kernel"),
    # tagging_tasks.py: one dense layer [H, num_labels] on every token.
    Dim("C", None, shape_of=(f"task_specific/{TAGGING_TASK}/dense/kernel", 1), on_conflict="checkpoint"),
)

DISC_HEAD = Part(
    "discriminator",
    marker="discriminator_predictions/dense_1/kernel",
    label="replaced-token-detection head",
    rules=(
        *dense("discriminator_predictions/dense", "discriminator_predictions.dense", "H", "H"),
        *dense("discriminator_predictions/dense_1", "discriminator_predictions.dense_prediction", "H", 1),
    ),
)

TAGGER = Part(
    "tagger",
    marker=f"task_specific/{TAGGING_TASK}/dense/kernel",
    label=f"tagging head (run_finetuning.py, task {TAGGING_TASK})",
    rules=dense(f"task_specific/{TAGGING_TASK}/dense", "classifier", "H", "C"),
)

DISC_BASE = frozenset({"embeddings", "projection", "encoder"})

DISC_TARGETS = (
    Target("ElectraForPreTraining", DISC_BASE | {"discriminator"}, "electra.", outputs=(Output("discriminator_logits", "logits"),),
           task="pretraining"),
    Target("ElectraForTokenClassification", DISC_BASE | {"tagger"}, "electra.", outputs=(Output("tagger_logits", "logits"),),
           task="token-classification"),
    Target("ElectraModel", DISC_BASE, "", task="feature-extraction"),
)

# --- generator --------------------------------------------------------------------------------

GEN_DIMS = (
    Dim("V", "vocab_size", shape_of=(f"{SHARED_EMB}/word_embeddings", 0)),
    # The width of the embeddings the generator reads: its head projects back to it
    # (run_pretraining._get_masked_lm_output: units = the embedding table's width).
    Dim("EW", None, shape_of=("generator_predictions/dense/kernel", 1)),
    # No config records the generator's sizes: they are its shapes.
    Dim("HG", None, shape_of=(f"{GEN}/{QUERY}", 0)),
    Dim("IG", None, shape_of=(f"{GEN}/encoder/layer_0/intermediate/dense/kernel", 1)),
    Dim("LG", None, count_of=f"{GEN}/encoder/layer_{{i}}/attention/self/query/kernel"),
    # The discriminator's width, only to tell a generator config from the discriminator's.
    Dim("HD", None, shape_of=(f"{DISC}/{QUERY}", 0)),
    Dim("P", "max_position_embeddings", shape_of=(f"{SHARED_EMB}/position_embeddings", 0)),
    Dim("T", "type_vocab_size", shape_of=(f"{SHARED_EMB}/token_type_embeddings", 0)),
)

GEN_HEAD = Part(
    "mlm",
    marker="generator_predictions/output_bias",
    label="generator masked-LM head",
    rules=mlm(
        HeadNames("generator_predictions/dense", "generator_predictions/LayerNorm", "generator_predictions/output_bias"),
        HeadNames("generator_predictions.dense", "generator_predictions.LayerNorm", "generator_lm_head.bias"),
        "HG", "EW",
    ),
    # The TF head multiplies by the embedding table itself; transformers ties the decoder to it.
    tied={"generator_lm_head.weight": "electra.embeddings.word_embeddings.weight"},
)

GEN_BASE = frozenset({"own_embeddings", "shared_embeddings", "projection", "encoder"})
OWN = frozenset({"own_embeddings", "projection", "encoder", "mlm"})
SHARED = frozenset({"shared_embeddings", "projection", "encoder", "mlm"})

GEN_TARGETS = (
    Target(
        "ElectraForMaskedLM", OWN, "electra.", outputs=(Output("mlm_logits", "logits", "positions"),),
        discards={"shared_embeddings": "this generator has its own embeddings (untied_generator_embeddings)"},
        task="fill-mask",
    ),
    Target("ElectraForMaskedLM", SHARED, "electra.", outputs=(Output("mlm_logits", "logits", "positions"),), task="fill-mask"),
)

# --- config.json --------------------------------------------------------------------------------

CARRIED = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")


def upstream_heads(hidden: int) -> int:
    """util/training_utils.get_bert_config and run_pretraining.get_generator_config."""
    return max(1, hidden // 64)


def _disc_heads(tf_config: dict, dims: dict) -> int:
    heads = tf_config.get("num_attention_heads")
    return heads if heads is not None else upstream_heads(dims["H"])


def _generator_config(tf_config: dict, dims: dict) -> bool:
    """Whether the config describes the generator (ymcui ships one config per tower) rather than
    the discriminator: its hidden_size is the generator's and not the discriminator's."""
    return tf_config.get("hidden_size") == dims["HG"] != dims.get("HD")


def _gen_heads(tf_config: dict, dims: dict) -> int:
    # Upstream code always derives the generator's heads from its hidden size; only a config
    # that is the generator's own may say otherwise.
    if _generator_config(tf_config, dims) and isinstance(tf_config.get("num_attention_heads"), int):
        return tf_config["num_attention_heads"]
    return upstream_heads(dims["HG"])


def _tower_config(tf_config: dict, dims: dict, options: dict, sizes: tuple[str, str, str, str], heads: int) -> dict:
    """ElectraConfig of one tower; ``sizes`` names its (embedding, hidden, layers, intermediate) dims."""
    embedding, hidden, layers, inner = sizes
    config = {key: tf_config[key] for key in CARRIED if key in tf_config}
    config.update(
        vocab_size=dims["V"], embedding_size=dims[embedding], hidden_size=dims[hidden], num_hidden_layers=dims[layers],
        num_attention_heads=heads, intermediate_size=dims[inner],
        max_position_embeddings=dims["P"], type_vocab_size=dims["T"], layer_norm_eps=1e-12, pad_token_id=0,
        hidden_act=hidden_act(tf_config, options["gelu"]),
    )
    return config


def disc_config(tf_config: dict, dims: dict, options: dict) -> dict:
    config = _tower_config(tf_config, dims, options, ("E", "H", "L", "I"), _disc_heads(tf_config, dims))
    if "C" in dims:
        config["num_labels"] = dims["C"]
    return config


def gen_config(tf_config: dict, dims: dict, options: dict) -> dict:
    config = _tower_config(tf_config, dims, options, ("EW", "HG", "LG", "IG"), _gen_heads(tf_config, dims))
    if config["hidden_act"] != "gelu":
        # The TF head applies hidden_act; ElectraGeneratorPredictions always applies the erf GELU.
        raise ConfigError(
            f"{options['config_label']}: the generator's activation would be {config['hidden_act']!r}, but transformers' "
            "ElectraForMaskedLM always applies the erf GELU in its head, so it cannot reproduce this generator; "
            "convert the discriminator, or use the erf GELU (--gelu erf) if that is what the model was trained with"
        )
    return config


def disc_notes(tf_config: dict, dims: dict) -> list[str]:
    notes = []
    if "num_attention_heads" not in tf_config:
        notes.append(f"num_attention_heads is not in the config: {upstream_heads(dims['H'])} = max(1, {dims['H']} // 64), "
                     "as util/training_utils.get_bert_config derives it")
    if "temperature" in tf_config:
        notes.append("the config's temperature (generator sampling) is not a model setting: left out of config.json")
    return notes


def gen_notes(tf_config: dict, dims: dict) -> list[str]:
    heads = _gen_heads(tf_config, dims)
    if _generator_config(tf_config, dims) and isinstance(tf_config.get("num_attention_heads"), int):
        how = "from the config, whose hidden_size is the generator's"
    else:
        how = f"max(1, {dims['HG']} // 64), as run_pretraining.get_generator_config derives it"
    notes = [
        f"generator sizes from its shapes: hidden {dims['HG']}, intermediate {dims['IG']}, {dims['LG']} layers, "
        f"embeddings {dims['EW']} wide; {heads} attention head(s) = {how}"
    ]
    if "temperature" in tf_config:
        notes.append("the config's temperature (generator sampling) is not a model setting: left out of config.json")
    return notes


COMMON = dict(
    model_type="electra",
    default_gelu="erf",  # model/modeling.py gelu(): 0.5 * x * (1 + erf(x / sqrt(2)))
    refuse=REFUSE,
    # Both towers and run_pretraining's / run_finetuning's heads: a variable elsewhere is a
    # head of the user's own.
    scopes=(f"{DISC}/", f"{GEN}/", "discriminator_predictions/", "generator_predictions/", "task_specific/"),
    group="electra",
    needs_variant=True,
    variant_option="--tower",
    config_names=("electra_config*.json", "*config*.json"),
)

FAMILIES = (
    Family(
        name="electra",
        description="google-research/electra discriminator (electra/*): replaced-token detection, run_finetuning tagging head, or encoder",
        signature=(f"{SHARED_EMB}/word_embeddings", f"{DISC}/{QUERY}"),
        dims=DISC_DIMS,
        loops={"i": "L"},
        parts=(_embeddings("embeddings", SHARED_EMB, "E", "embeddings"), _projection(DISC, "E", "H"),
               _encoder(DISC, "H", "I"), DISC_HEAD, TAGGER),
        targets=DISC_TARGETS,
        hf_config=disc_config,
        reference="tf2hf.verify.references.electra:forward_discriminator",
        graph=GraphProbe("electra/encoder/layer_0/intermediate/", "electra/encoder/layer_0/attention/self/",
                         epsilon="electra/encoder/layer_0/attention/output/LayerNorm/batchnorm/add/y"),
        extra_drops=DISC_DROPS,
        base_parts=DISC_BASE,
        variant="discriminator",
        notes=disc_notes,
        **COMMON,
    ),
    Family(
        name="electra_generator",
        description="google-research/electra generator (generator/*, embeddings shared from electra/* unless untied): masked LM",
        signature=(f"{GEN}/{QUERY}",),
        dims=GEN_DIMS,
        loops={"i": "LG"},
        parts=(_embeddings("own_embeddings", GEN_EMB, "EW", "generator's own embeddings"),
               _embeddings("shared_embeddings", SHARED_EMB, "EW", "electra/embeddings (the discriminator's)"),
               _projection(GEN, "EW", "HG"), _encoder(GEN, "HG", "IG"), GEN_HEAD),
        targets=GEN_TARGETS,
        hf_config=gen_config,
        reference="tf2hf.verify.references.electra:forward_generator",
        # The config beside the checkpoint is the discriminator's: its heads say nothing of these.
        graph=GraphProbe("generator/encoder/layer_0/intermediate/", "generator/encoder/layer_0/attention/self/", heads_key=None,
                         epsilon="generator/encoder/layer_0/attention/output/LayerNorm/batchnorm/add/y"),
        extra_drops=GEN_DROPS,
        base_parts=GEN_BASE,
        variant="generator",
        notes=gen_notes,
        **COMMON,
    ),
)
