"""What a reference graph reads: TF variables by their TF names, and config values.

Weights are always fetched through a ``get`` callable by the names the TF code created, never
through converted tensors, so the graphs are an independent witness of what the source
checkpoint computes. During a conversion ``get`` is :func:`.locate.locate`'s, which finds those
names in the checkpoint by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tf2hf.verify.references.numerics import dense, f64, layer_norm

Getter = Callable[[str], np.ndarray]

#: Rows of a large table converted to float64 at a time by :func:`times_table_t`.
_TABLE_BLOCK = 4096


def param(get: Getter, name: str) -> np.ndarray:
    """Fetch one TF variable by name as float64."""
    return f64(get(name))


def param_rows(get: Getter, name: str, ids: Any) -> np.ndarray:
    """Rows ``ids`` of the table ``name`` as float64, without converting the whole table (the
    word embeddings are the largest tensor of a model: 188 MB in float64 for BERT-base)."""
    return f64(np.asarray(get(name))[np.asarray(ids)])


def times_table_t(x: np.ndarray, get: Getter, name: str) -> np.ndarray:
    """``x @ table.T`` in float64 for a large ``[V, E]`` table (decoding with the word
    embeddings), converting a block of rows at a time so the table is never copied whole."""
    table = np.asarray(get(name))
    out = np.empty(x.shape[:-1] + (table.shape[0],), dtype=np.float64)
    for start in range(0, table.shape[0], _TABLE_BLOCK):
        out[..., start : start + _TABLE_BLOCK] = x @ f64(table[start : start + _TABLE_BLOCK]).T
    return out


def has_variable(get: Getter, name: str) -> bool:
    """True when ``get`` knows ``name``; ``get`` signals an absent name with ``KeyError``."""
    try:
        get(name)
    except KeyError:
        return False
    return True


def count_indexed(get: Getter, template: str) -> int:
    """Count consecutive indices ``0, 1, ...`` for which ``template.format(index)`` exists."""
    count = 0
    while has_variable(get, template.format(count)):
        count += 1
    return count


def dense_from(get: Getter, scope: str, x: np.ndarray) -> np.ndarray:
    """Apply the dense layer whose variables are ``{scope}/kernel`` and ``{scope}/bias``."""
    return dense(x, param(get, f"{scope}/kernel"), param(get, f"{scope}/bias"))


def layer_norm_from(get: Getter, scope: str, x: np.ndarray, eps: float) -> np.ndarray:
    """Apply the layer norm whose variables are ``{scope}/gamma`` and ``{scope}/beta``, with the
    variance epsilon ``eps`` (:func:`.numerics.layer_norm_epsilon`: no default, so no graph
    silently computes with another one than the conversion settled on)."""
    return layer_norm(x, param(get, f"{scope}/gamma"), param(get, f"{scope}/beta"), eps)


def require(config: Mapping[str, Any], key: str) -> Any:
    """Read a config value the graph cannot infer from variable shapes."""
    if key not in config:
        raise KeyError(f"the model config has no '{key}', which the reference graph needs")
    return config[key]
