"""What the tables of transformers' TF classes share (docs/KERAS.md), written once.

``tf_model.h5`` and Keras checkpoints of ``TFBert*`` and ``TFAlbert*`` differ from each other in
the same ways (a suffix, an output index, Keras' optimizer state), put their heads in the same
Keras Dense layers, and come with transformers' own ``config.json``. Data and small functions
returning rules, parts, targets and configs, like :mod:`tf2hf.families.blocks`.
"""

from __future__ import annotations

from typing import Callable

from tf2hf.engine.nonweights import OPTIMIZER
from tf2hf.engine.table import Dim, DropRule, Family, Output, Part, Rename, Rule, Target, dense, layer_norm, rule
from tf2hf.errors import ConfigError
from tf2hf.families.blocks import NO_POOLER, LayerNames, identity

#: First: a Keras checkpoint's object-path suffix, and a Keras variable name's output index.
SPELLING = (
    Rename(r"(.+)/\.ATTRIBUTES/VARIABLE_VALUE", r"\1", "a Keras checkpoint's /.ATTRIBUTES/VARIABLE_VALUE suffix"),
    Rename(r"(.+):0", r"\1", "a Keras variable name's output index :0"),
)



def embedding_renames(scope: str) -> tuple[Rename, ...]:
    """A Keras checkpoint tracks the embedding tables of ``<scope>/embeddings`` by their
    ``add_weight`` names (``weight`` = word, ``embeddings`` = position) and the token-type table
    by its attribute; read them as the h5 names them."""
    emb = f"{scope}/embeddings"
    return (
        Rename(f"{emb}/weight", f"{emb}/word_embeddings/weight", "Keras checkpoint: the word table is tracked by its add_weight name 'weight'"),
        Rename(f"{emb}/embeddings", f"{emb}/position_embeddings/embeddings",
               "Keras checkpoint: the position table is tracked by its add_weight name 'embeddings'"),
        Rename(f"{emb}/token_type_embeddings", f"{emb}/token_type_embeddings/embeddings",
               "Keras checkpoint: the token-type table is tracked by its attribute name"),
    )


def encoder_renames(scope: str) -> tuple[Rename, ...]:
    """TFBertEncoder (also TFElectra's) in a Keras checkpoint: the list attribute ``layer[i]``
    for the name scope ``layer_._i``, and attribute names for the scopes ``self`` and ``output``."""
    layer = rf"{scope}/encoder/layer_\._\d+"
    return (
        Rename(rf"{scope}/encoder/layer/(\d+)/(.+)", rf"{scope}/encoder/layer_._\1/\2", "Keras checkpoint: encoder.layer[i] for the name scope layer_._i"),
        Rename(rf"({layer}/attention)/self_attention/(.+)", r"\1/self/\2", "Keras checkpoint: attribute self_attention for scope self"),
        Rename(rf"({layer}/attention)/dense_output/(.+)", r"\1/output/\2", "Keras checkpoint: attribute dense_output for scope output"),
        Rename(rf"({layer})/bert_output/(.+)", r"\1/output/\2", "Keras checkpoint: attribute bert_output for scope output"),
    )


OPTIMIZER_DROPS = (
    DropRule(r".+/\.OPTIMIZER_SLOT/.+", OPTIMIZER, "Keras optimizer slot (.OPTIMIZER_SLOT/optimizer/m, v, ...)"),
    DropRule(r"(?:.+/)?optimizer/.+", OPTIMIZER, "Keras optimizer state (iterations, learning rate, decay)"),
)


def dense_to(src: str, dst: str, n_out: int) -> tuple[Rule, Rule]:
    """A Keras Dense ``[H, n_out]`` (kernel ``[in, out]``: transposed) of a fixed width."""
    return (rule(f"{dst}.weight", f"{src}/kernel", "transpose", (n_out, "H")), rule(f"{dst}.bias", f"{src}/bias", "copy", (n_out,)))


def task_heads() -> tuple[Part, Part, Part]:
    """The classifier (a Keras Dense ``[H, C]``, transposed — run_classifier's ``output_weights``
    are ``[C, H]`` and copied), the span head ``qa_outputs`` of every transformers TF class, and
    the multiple-choice head: the same ``classifier`` Dense read as one score per choice, so
    exactly one output wide (a wider kernel is a shape mismatch, not a multiple-choice head)."""
    return (
        Part("classifier", marker="classifier/kernel", label="classifier (Dense)", rules=dense("classifier", "classifier", "H", "C")),
        Part("squad", marker="qa_outputs/kernel", label="span head (qa_outputs)", rules=dense_to("qa_outputs", "qa_outputs", 2)),
        Part("choice", marker="classifier/kernel", label="classifier (Dense, one score per choice)",
             rules=dense_to("classifier", "classifier", 1)),
    )


#: One Dense layer, two readings (task_heads): each class takes one and discards the other.
AS_CLASSIFIER = {"choice": "the same Dense layer, read as the classifier"}
AS_CHOICE = {"classifier": "the same Dense layer, read as the multiple-choice head"}


#: The Dense a user put on the model in their own functional Keras model, saved by
#: ``save_weights`` / ``ModelCheckpoint``: that model's next layer with weights, beside the
#: transformers model's root ``layer_with_weights-0/``. That root is at the checkpoint's top, so
#: the engine reads its neighbour as is, not as ``../…`` (tf2hf/engine/roots.py).
BESIDE = "layer_with_weights-1"


def beside_dense() -> tuple[Part, Dim]:
    """That Dense read as a classifier on the pooled output (kernel ``[H, D]``, transposed), and
    its width ``D``. Nothing in the checkpoint records what it was trained on, so only ``--task
    text-classification`` writes it (:func:`beside_target`); ``auto`` names that task."""
    part = Part("beside", marker=f"{BESIDE}/kernel", label="Dense layer beside the model (layer_with_weights-1)",
                rules=dense(BESIDE, "classifier", "H", "D"))
    return part, Dim("D", None, shape_of=(f"{BESIDE}/kernel", 1))


def beside_target(model: str, prefix: str, base: frozenset[str]) -> Target:
    """``…ForSequenceClassification`` from the Dense beside the model (asked for by task only)."""
    return Target(f"{model}ForSequenceClassification", base | {"pooler", "beside"}, prefix, outputs=(Output("classifier_logits", "logits"),),
                  task="text-classification", auto=False)


def mlm_part(src: tuple[str, str, str], dst: tuple[str, str, str], model: str, width: str, label: str, why: str = "") -> Part:
    """A TF MLM head: ``src`` = (transform dense, its LayerNorm, the vocabulary bias it adds),
    ``dst`` = transformers' (dense, LayerNorm, head), ``width`` wide. TF decodes with the input
    embeddings themselves, so transformers ties ``<head>.decoder`` to the word embeddings and its
    bias to ``<head>.bias``. (The h5 stores the tied embeddings again in the head's group; the
    reader reads them as the one variable they are.)"""
    (dense_src, norm_src, bias_src), (dense_dst, norm_dst, head) = src, dst
    return Part(
        "mlm", marker=bias_src, label=label,
        rules=(*dense(dense_src, dense_dst, "H", width), *layer_norm(norm_src, norm_dst, width), rule(f"{head}.bias", bias_src, "copy", ("V",), why=why)),
        tied={f"{head}.decoder.weight": f"{model}.embeddings.word_embeddings.weight", f"{head}.decoder.bias": f"{head}.bias"},
    )


def task_targets(model: str, prefix: str, base: frozenset[str], sentence: str, sentence_field: str) -> tuple[Target, ...]:
    """``…ForPreTraining`` (MLM + the ``sentence`` head, compared with ``sentence_field``),
    ``…ForMaskedLM``, ``…ForSequenceClassification``, ``…ForTokenClassification``,
    ``…ForQuestionAnswering``, ``…Model``, in this order. TF builds the masked-LM, token and span
    classes without a pooler, which is what tells a token from a sequence classifier."""
    return (
        Target(f"{model}ForPreTraining", base | {"pooler", "mlm", sentence}, prefix,
               outputs=(Output("mlm_logits", "prediction_logits"), Output(f"{sentence}_logits", sentence_field)), task="pretraining"),
        Target(f"{model}ForMaskedLM", base | {"mlm"}, prefix, outputs=(Output("mlm_logits", "logits"),), discards=NO_POOLER, task="fill-mask"),
        Target(f"{model}ForSequenceClassification", base | {"pooler", "classifier"}, prefix,
               outputs=(Output("classifier_logits", "logits"),), discards=AS_CLASSIFIER, task="text-classification"),
        Target(f"{model}ForTokenClassification", base | {"classifier"}, prefix, outputs=(Output("token_logits", "logits"),),
               discards={**NO_POOLER, **AS_CLASSIFIER}, task="token-classification"),
        Target(f"{model}ForQuestionAnswering", base | {"squad"}, prefix,
               outputs=(Output("start_logits", "start_logits"), Output("end_logits", "end_logits")), discards=NO_POOLER,
               task="question-answering"),
        Target(f"{model}Model", base | {"pooler"}, "", task="feature-extraction"),
        # TF{model}ForMultipleChoice stores what a one-label sequence classifier stores: only the
        # config saved with it names it. Verified on the batch taken as the choices of one example.
        Target(f"{model}ForMultipleChoice", base | {"pooler", "choice"}, prefix, discards=AS_CHOICE, task="multiple-choice", auto=False,
               architectures=(f"{model}ForMultipleChoice", f"TF{model}ForMultipleChoice"),
               outputs=(Output("choice_logits", "logits", "choices"),)),
    )


#: What save_pretrained wrote that describes the TF file, not the model.
_NOT_CARRIED = ("architectures", "transformers_version", "torch_dtype", "dtype")


def transformers_config(tf_config: dict, dims: dict, options: dict, sizes: dict) -> dict:
    """transformers' own config.json, kept whole (labels and every setting), with ``sizes`` (as
    the weights have them); ``architectures`` is set by the engine. Labels: ``id2label`` must
    have as many entries as the classifier has outputs; absent, transformers' default names."""
    config = {key: value for key, value in tf_config.items() if key not in _NOT_CARRIED}
    config.update(sizes)
    labels = dims.get("C", dims.get("D"))  # the class's own classifier, else a second one (beside the model, ELECTRA's token head)
    if labels is not None:
        named = config.get("id2label") or {}
        if named and len(named) != labels:
            raise ConfigError(
                f"{options['config_label']}: id2label names {len(named)} labels but the classifier has {labels} outputs; "
                "pass the config.json saved with these weights"
            )
        if not named:
            config["id2label"] = {str(i): f"LABEL_{i}" for i in range(labels)}
            config["label2id"] = {f"LABEL_{i}": i for i in range(labels)}
    return config


def found_notes(model: str, tf_config: dict, chosen_by_config: frozenset[str] = frozenset()) -> list[str]:
    """Say what was found, and that the class comes from config.json where a target is chosen
    by its ``architectures`` (``chosen_by_config``: the names the targets declare)."""
    named = [n for n in (tf_config.get("architectures") or ()) if n in chosen_by_config]
    said = [f"config.json names {named[0]}: the class is taken from it (these weights do not tell it from another class's)"] if named else []
    return said + [f"found a transformers TF model (the weights of a TF{model}* class, as save_pretrained's tf_model.h5 or a Keras checkpoint holds them)"]


def config_functions(model: str, sizes: dict[str, str], chosen_by_config: frozenset[str] = frozenset()
                     ) -> tuple[Callable[[dict, dict, dict], dict], Callable[[dict, dict], list[str]]]:
    """A family's ``hf_config`` (transformers' config.json kept whole, ``sizes`` = config key →
    dim symbol set from the weights) and ``notes`` (:func:`found_notes`)."""

    def hf_config(tf_config: dict, dims: dict, options: dict) -> dict:
        return transformers_config(tf_config, dims, options, {key: dims[symbol] for key, symbol in sizes.items()})

    def notes(tf_config: dict, dims: dict) -> list[str]:
        return found_notes(model, tf_config, chosen_by_config)

    return hf_config, notes


def keras_family(name: str, model: str, what: str, *, signature: tuple[str, ...], dims: tuple[Dim, ...], loops: dict[str, str],
                 parts: tuple[Part, ...], targets: tuple[Target, ...], renames: tuple[Rename, ...], sizes: dict[str, str],
                 base_parts: frozenset[str], drops: tuple[DropRule, ...] = (), vocab_names: tuple[str, ...] = ("vocab.txt",)) -> Family:
    """The :class:`Family` of one transformers TF model type: its reference is
    ``tf2hf.verify.references.<name>:forward``; config.json is transformers' own
    (:func:`config_functions`); transformers' TF ``"gelu"`` is the erf form (get_tf_activation)."""
    hf_config, notes = config_functions(model, sizes, frozenset(name for target in targets for name in target.architectures))
    return Family(
        name=name, description=f"transformers' TF {what}: save_pretrained's tf_model.h5, or a Keras checkpoint holding one",
        model_type=model.lower(), signature=signature, dims=dims, loops=loops, parts=parts, targets=targets,
        hf_config=hf_config, reference=f"tf2hf.verify.references.{name}:forward", default_gelu="erf",
        renames=SPELLING + renames, extra_drops=OPTIMIZER_DROPS + drops, base_parts=base_parts,
        config_names=("config.json", "*config*.json"), vocab_names=vocab_names, notes=notes,
        activation_named=True,  # transformers' config.json names the formula (get_tf_activation)
    )


#: bert-for-tf2's TransformerEncoderLayer, relative to one layer (``encoder_layers/N`` or ALBERT's
#: ``shared_layer``): its sublayers by their attribute names.
B4T2_ATTENTION = "self_attention_layer/attention_layer"
TF_B4T2 = LayerNames(
    query=f"{B4T2_ATTENTION}/query_layer", key=f"{B4T2_ATTENTION}/key_layer", value=f"{B4T2_ATTENTION}/value_layer",
    attention_output="self_attention_layer/attention_projector/dense",
    attention_norm="self_attention_layer/attention_projector/layer_norm",
    intermediate="intermediate_layer", output="output_projector/dense", output_norm="output_projector/layer_norm",
)


def b4t2_pooler(dst: str, marker: str) -> Part:
    """bert-for-tf2 builds no pooler, but BertModel and AlbertModel always have one: write the
    identity with a zero bias (never random), and say what ``pooler_output`` then is."""
    return Part(
        "pooler", marker=marker, label="pooler (none in bert-for-tf2)", rules=(),
        when_absent=identity(dst, "H", "H", "bert-for-tf2 has no pooler; pooler_output = tanh(first token)"),
        absent_note="bert-for-tf2 has no pooler: the written pooler is the identity with a zero bias, so pooler_output is tanh of the "
                    "first token's hidden state, from no trained weights — use last_hidden_state",
    )
