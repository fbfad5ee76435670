"""How the references of transformers' TF classes read a weight by the names TF gives it.

A TF weight has two names: its variable name, as ``tf_model.h5`` records it (``…/query/kernel:0``),
and its object path in a Keras checkpoint (``…/query/kernel/.ATTRIBUTES/VARIABLE_VALUE``, built
from attribute names where the h5 has name scopes). Each reference lists both spellings of every
weight it reads, as pairs; :class:`Spelling` picks the one the checkpoint uses (by the reference's
anchor, under the root :mod:`.locate` found) and computes the Keras layers the graphs are built
of. Nothing here comes from the converter's renames.
"""

from __future__ import annotations

import math
import re

import numpy as np

from tf2hf.verify.references.numerics import f64, softmax
from tf2hf.verify.references.weights import Getter

CKPT_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
Pair = tuple[str, str]  # (h5 variable name, Keras checkpoint object path), without ":0"/suffix


def embedding_names(scope: str) -> dict[str, Pair]:
    """The embedding tables of ``<scope>/embeddings``: a Keras checkpoint tracks them by their
    ``add_weight`` names (``weight`` = word, ``embeddings`` = position) and the token-type table
    by its attribute."""
    emb = f"{scope}/embeddings"
    return {
        "word": (f"{emb}/word_embeddings/weight", f"{emb}/weight"),
        "position": (f"{emb}/position_embeddings/embeddings", f"{emb}/embeddings"),
        "type": (f"{emb}/token_type_embeddings/embeddings", f"{emb}/token_type_embeddings"),
        "emb_norm": (f"{emb}/LayerNorm", f"{emb}/LayerNorm"),
    }


class Spelling:
    """``w(pair, leaf)`` reads a weight by whichever of its names the checkpoint has."""

    def __init__(self, get: Getter, anchor: Pair):
        self._get = get
        try:
            get(f"{anchor[0]}:0")
            self._h5 = True
        except KeyError:
            get(f"{anchor[1]}{CKPT_SUFFIX}")  # the getter's own Missing when neither is there
            self._h5 = False

    def __call__(self, pair: Pair, leaf: str = "") -> np.ndarray:
        path = (pair[0] if self._h5 else pair[1]) + (f"/{leaf}" if leaf else "")
        return f64(self._get(f"{path}:0" if self._h5 else f"{path}{CKPT_SUFFIX}"))

    def beside(self, x: np.ndarray) -> np.ndarray:
        """The Dense after the model in the user's functional Keras model, applied to ``x``: that
        model's next layer with weights (root ``…layer_with_weights-K/`` → ``layer_with_weights-K+1``),
        an object beside the root; only a Keras checkpoint of such a model has one."""
        found = re.search(r"layer_with_weights-(\d+)/$", getattr(self._get, "root", ""))
        if self._h5 or found is None or not hasattr(self._get, "beside"):
            raise KeyError("a Dense layer beside the model (the model is no layer of a Keras model here)")
        scope = f"layer_with_weights-{int(found.group(1)) + 1}"
        return x @ f64(self._get.beside(f"{scope}/kernel{CKPT_SUFFIX}")) + f64(self._get.beside(f"{scope}/bias{CKPT_SUFFIX}"))

    def dense(self, pair: Pair, x: np.ndarray) -> np.ndarray:
        """A Keras Dense: ``x @ kernel + bias``, the kernel ``[in, out]``."""
        return x @ self(pair, "kernel") + self(pair, "bias")

    def norm(self, pair: Pair, x: np.ndarray, eps: float) -> np.ndarray:
        """Keras LayerNormalization over the last axis, epsilon inside the square root."""
        mean = x.mean(axis=-1, keepdims=True)
        var = np.square(x - mean).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * self(pair, "gamma") + self(pair, "beta")

    def attention(self, q: Pair, k: Pair, v: Pair, x: np.ndarray, bias: np.ndarray, heads: int) -> np.ndarray:
        """Multi-head attention: scores scaled by ``1/sqrt(head size)``, ``bias`` added, heads
        merged back; the output projection is the caller's."""
        batch, seq, hidden = x.shape
        size = hidden // heads

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, seq, heads, size).transpose(0, 2, 1, 3)

        query, key, value = (split(self.dense(p, x)) for p in (q, k, v))
        scores = query @ key.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
        return (softmax(scores) @ value).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)


# One TFBertLayer's sublayers: name, h5 scope, Keras checkpoint attribute path.
_LAYER = {name: (h5, ckpt) for name, h5, ckpt in (
    ("query", "attention/self/query", "attention/self_attention/query"),
    ("key", "attention/self/key", "attention/self_attention/key"),
    ("value", "attention/self/value", "attention/self_attention/value"),
    ("attention_output", "attention/output/dense", "attention/dense_output/dense"),
    ("attention_norm", "attention/output/LayerNorm", "attention/dense_output/LayerNorm"),
    ("intermediate", "intermediate/dense", "intermediate/dense"),
    ("output", "output/dense", "bert_output/dense"),
    ("output_norm", "output/LayerNorm", "bert_output/LayerNorm"),
)}


def _sub(scope: str, index: int, sub: str) -> Pair:
    h5, ckpt = _LAYER[sub]
    return f"{scope}/encoder/layer_._{index}/{h5}", f"{scope}/encoder/layer/{index}/{ckpt}"


def bert_layer(w: Spelling, scope: str, i: int, x: np.ndarray, bias: np.ndarray, heads: int, act, eps: float) -> np.ndarray:
    """One post-LN TFBertLayer (also TFElectraLayer) of ``<scope>/encoder``."""
    context = w.attention(_sub(scope, i, "query"), _sub(scope, i, "key"), _sub(scope, i, "value"), x, bias, heads)
    x = w.norm(_sub(scope, i, "attention_norm"), w.dense(_sub(scope, i, "attention_output"), context) + x, eps)
    inner = act(w.dense(_sub(scope, i, "intermediate"), x))
    return w.norm(_sub(scope, i, "output_norm"), w.dense(_sub(scope, i, "output"), inner) + x, eps)


def flat(array) -> np.ndarray:
    """``[batch, choices, seq]`` (the multiple-choice classes' inputs) as ``[batch * choices,
    seq]``, the order in which TF reshapes them; ``[batch, seq]`` as it is."""
    array = np.asarray(array)
    return array.reshape(-1, array.shape[-1])


def start(get: Getter, anchor: Pair, config: dict, inputs: dict, names: dict[str, Pair]) -> tuple[Spelling, np.ndarray, np.ndarray, float]:
    """The weights' spelling, the embeddings (word + position + token type, then LayerNorm with
    the config's ``layer_norm_eps``), the attention bias of the input mask, and the epsilon.
    Inputs with a choices axis are run as ``[batch * choices, seq]``."""
    w = Spelling(get, anchor)
    eps = float(config.get("layer_norm_eps", 1e-12))
    ids = flat(inputs["input_ids"])
    x = w(names["word"])[ids] + w(names["position"])[None, : ids.shape[1]] + w(names["type"])[flat(inputs["token_type_ids"])]
    return w, w.norm(names["emb_norm"], x, eps), mask_bias(flat(inputs["input_mask"])), eps


def mask_bias(input_mask: np.ndarray) -> np.ndarray:
    """transformers' TF classes: ``(1 - mask) * -10000`` added to every query's scores."""
    return ((1.0 - np.asarray(input_mask, dtype=np.float64)) * -10000.0)[:, None, None, :]


def base_outputs(w: Spelling, x: np.ndarray, heads: frozenset[str], names: dict[str, Pair], act, eps: float) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """``sequence_output``, the pooler ``tanh(dense(first token))`` and the MLM head (dense,
    activation, LayerNorm, the word embeddings transposed plus the bias TF adds), as asked;
    and the pooled output for the heads on it. ``names``: ``pooler``, ``mlm_dense``,
    ``mlm_norm``, ``mlm_bias``, ``word``."""
    out = {"sequence_output": x}
    pooled = np.tanh(w.dense(names["pooler"], x[:, 0])) if "pooler" in heads else None
    if pooled is not None:
        out["pooled_output"] = pooled
    if "mlm" in heads:
        hidden = w.norm(names["mlm_norm"], act(w.dense(names["mlm_dense"], x)), eps)
        out["mlm_logits"] = hidden @ w(names["word"]).T + w(names["mlm_bias"])
    return out, pooled


def task_outputs(w: Spelling, x: np.ndarray, pooled: np.ndarray | None, heads: frozenset[str], classifier: Pair, qa: Pair,
                 lead: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """The classifier (on the pooled output, and on every token), the span head, and the
    multiple-choice head: the one-wide ``classifier`` on the pooled output of every choice,
    reshaped to ``lead`` (the inputs' ``[batch, choices]``) as TF reshapes its logits."""
    out: dict[str, np.ndarray] = {}
    if "choice" in heads and pooled is not None:
        out["choice_logits"] = w.dense(classifier, pooled).reshape(lead or (-1,))
    if "classifier" in heads:
        out["token_logits"] = w.dense(classifier, x)
        if pooled is not None:
            out["classifier_logits"] = w.dense(classifier, pooled)
    if "squad" in heads:
        spans = w.dense(qa, x)
        out["start_logits"], out["end_logits"] = spans[..., 0], spans[..., 1]
    return out
