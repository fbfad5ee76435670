"""Checking config.json before it is written: every key's type and range.

Most values of the output config are copied from the TF config. A wrong one (a string dropout, a
list for ``hidden_act``, ``true`` for a head count, 1e400) would give a folder transformers
cannot load, or fail deep inside verification. Each key the output carries is checked here, with
the whole config, before anything is written; the first wrong one is refused in one line naming
the key and its value.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from tf2hf.errors import ConfigError

# Keys that count things: ints, never bools (``true`` is an int to Python, not to a config).
SIZES = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "max_position_embeddings", "type_vocab_size", "embedding_size", "num_hidden_groups", "inner_group_num", "num_labels",
)
TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id")
PROBABILITIES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob", "classifier_dropout", "summary_last_dropout")
POSITIVE = ("initializer_range", "layer_norm_eps")

# transformers' ACT2FN names (transformers.activations, version 5); kept here so that planning
# never imports torch. tests/test_hostile_output.py checks it against the installed transformers.
ACTIVATIONS = frozenset({
    "gelu", "gelu_10", "gelu_accurate", "gelu_fast", "gelu_new", "gelu_python", "gelu_python_tanh", "gelu_pytorch_tanh",
    "hardswish", "laplace", "leaky_relu", "linear", "mish", "prelu", "quick_gelu", "relu", "relu2", "relu6", "sigmoid",
    "silu", "sqrtsoftplus", "swish", "tanh", "xielu",
})
POSITION_EMBEDDINGS = ("absolute", "relative_key", "relative_key_query")

# Beyond these, a value is not a model setting but a broken (or hostile) file.
MAX_DEPTH = 8
MAX_STRING = 1000
MAX_INT = 2**63 - 1
SHOWN = 40


def shorten(value: Any) -> str:
    """``value`` as a message shows it: its repr, cut to a few dozen characters. A huge int is
    described by its length (printing a 5000-digit int is itself an error in Python)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {int(value.bit_length() * math.log10(2)) + 1}-digit number"
    if isinstance(value, (dict, list)):
        text = f"a {type(value).__name__} ({_clip(repr(_outline(value)))})"
        return text
    return _clip(repr(value))


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _outline(value: Any, depth: int = 0) -> Any:
    """A copy cut off after a few levels, so its repr is cheap whatever the nesting."""
    if depth > 2:
        return ...
    if isinstance(value, dict):
        return {k: _outline(v, depth + 1) for k, v in list(value.items())[:3]}
    if isinstance(value, list):
        return [_outline(v, depth + 1) for v in value[:3]]
    return value if not isinstance(value, str) else value[:SHOWN]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value) and abs(value) <= MAX_INT


def _positive_int(value: Any) -> bool:
    return _is_int(value) and 0 < value <= MAX_INT


def _token_id(value: Any) -> bool:
    return value is None or (_is_int(value) and 0 <= value <= MAX_INT)


def _probability(value: Any) -> bool:
    return _is_number(value) and 0 <= value <= 1


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _activation(value: Any) -> bool:
    return isinstance(value, str) and value in ACTIVATIONS


def _position_embedding(value: Any) -> bool:
    return value in POSITION_EMBEDDINGS


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{key: (_positive_int, "a positive integer") for key in SIZES},
    **{key: (_token_id, "a token id (an integer of 0 or more)") for key in TOKEN_IDS},
    **{key: (_probability, "a number between 0 and 1") for key in PROBABILITIES},
    **{key: (_positive, "a finite number above 0") for key in POSITIVE},
    "hidden_act": (_activation, "an activation transformers knows, in lower case (gelu, gelu_new, relu, silu, tanh, …)"),
    "position_embedding_type": (_position_embedding, f"one of {', '.join(POSITION_EMBEDDINGS)}"),
}


def check_output_config(config: dict, label: str) -> None:
    """Refuse (:class:`ConfigError`, naming the key and value) a value config.json must not hold."""
    for key in sorted(config):
        value = config[key]
        if key == "classifier_dropout" and value is None:
            continue  # transformers' "use hidden_dropout_prob"
        rule = RULES.get(key)
        if rule is not None and not rule[0](value):
            raise ConfigError(f"{label}: {key} is {shorten(value)}, expected {rule[1]}; fix the config")
        problem = _not_plain(value)
        if problem:
            raise ConfigError(f"{label}: {key} is {shorten(value)}, {problem}; fix the config")


def _not_plain(value: Any, depth: int = 0) -> str | None:
    """Why a value of any key is no plain JSON setting (too deep, a non-finite or huge number,
    an endless string), or None."""
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    if _is_int(value) and abs(value) > MAX_INT:
        return "too large a number"
    if isinstance(value, str) and len(value) > MAX_STRING:
        return f"a string longer than {MAX_STRING} characters"
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        problem = _not_plain(child, depth + 1)
        if problem:
            return problem
    return None
