"""The arithmetic of the reference graphs: erf, the activations, softmax, layer norm, dense.

Everything works in float64 and mirrors what the TF1 code of google-research/bert,
google-research/albert and brightmart/albert_zh computes (dropout is off at inference, so it
does not appear). Nothing here reads a variable: see :mod:`.weights` for that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: ``tf.contrib.layers.layer_norm`` (used by all three upstream codebases) hard-codes this
#: variance epsilon. A graph built otherwise shows its own (docs/GRAPH.md); the conversion then
#: writes it as ``layer_norm_eps``, which :func:`layer_norm_epsilon` reads.
LAYER_NORM_EPSILON = 1e-12

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def f64(array: Any) -> np.ndarray:
    """Return ``array`` as a float64 ndarray (the reference never computes in float32)."""
    return np.asarray(array, dtype=np.float64)


# erf by W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for
# the error function", Math. Comp. 23, 1969), whose float64 coefficients give erf to within a
# couple of units in the last place on every range: vectorised, where ``math.erf`` would be
# called once per element.
_ERF_SMALL_P = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_SMALL_Q = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERFC_MID_P = (
    5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
    8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
    2.15311535474403846e-8,
)
_ERFC_MID_Q = (
    1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
    3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03,
)
_ERFC_LARGE_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_LARGE_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """``exp(-y*y)``, with ``y*y`` split into an exact part and a small rest so that its
    rounding error is not magnified by the exponential."""
    head = np.trunc(y * 16.0) / 16.0
    return np.exp(-head * head) * np.exp(-(y - head) * (y + head))


def erf(x: Any) -> np.ndarray:
    """The error function in float64, element-wise (agrees with ``math.erf`` to ~2e-16)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.abs(x).reshape(-1)
    out = np.full_like(y, np.nan)  # NaN stays NaN: it falls in none of the ranges below
    small = y <= 0.46875
    mid = (y > 0.46875) & (y <= 4.0)
    large = y > 4.0

    # |x| <= 0.46875: erf(x) = x P(x^2) / Q(x^2)
    ys = y[small]
    z = ys * ys
    num, den = _ERF_SMALL_P[4] * z, z
    for p, q in zip(_ERF_SMALL_P[:3], _ERF_SMALL_Q[:3]):
        num, den = (num + p) * z, (den + q) * z
    out[small] = ys * (num + _ERF_SMALL_P[3]) / (den + _ERF_SMALL_Q[3])

    # 0.46875 < |x| <= 4: erfc(x) = exp(-x^2) P(x) / Q(x)
    ym = y[mid]
    num, den = _ERFC_MID_P[8] * ym, ym
    for p, q in zip(_ERFC_MID_P[:7], _ERFC_MID_Q[:7]):
        num, den = (num + p) * ym, (den + q) * ym
    out[mid] = 1.0 - _exp_minus_square(ym) * (num + _ERFC_MID_P[7]) / (den + _ERFC_MID_Q[7])

    # |x| > 4: erfc(x) = exp(-x^2) / x (1/sqrt(pi) + P(1/x^2) / (x^2 Q(1/x^2)))
    yl = y[large]
    with np.errstate(invalid="ignore", over="ignore"):  # huge or infinite x: masked below
        z = 1.0 / (yl * yl)
        num, den = _ERFC_LARGE_P[5] * z, z
        for p, q in zip(_ERFC_LARGE_P[:4], _ERFC_LARGE_Q[:4]):
            num, den = (num + p) * z, (den + q) * z
        tail = (_INV_SQRT_PI - z * (num + _ERFC_LARGE_P[4]) / (den + _ERFC_LARGE_Q[4])) / yl
        erfc = _exp_minus_square(yl) * tail
    # Beyond 6, erfc < 3e-17: erf is 1 in float64.
    out[large] = np.where(yl < 6.0, 1.0 - erfc, 1.0)
    return np.copysign(out.reshape(x.shape), x)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """Exact GELU, ``x * Phi(x)``: the 2018 BERT releases and transformers' ``"gelu"``."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """Tanh approximation of GELU, as the upstream TF ``gelu`` functions compute it.

    This is transformers' ``"gelu_new"``; it differs from :func:`gelu_erf` by up to ~1e-3.
    """
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def relu(x: np.ndarray) -> np.ndarray:
    """Rectifier; one published Chinese ALBERT config names it as ``hidden_act``."""
    return np.maximum(x, 0.0)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "erf": gelu_erf,
    "tanh": gelu_tanh,
    "relu": relu,
}


def activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Map the ``gelu`` argument of ``forward`` (``erf``, ``tanh`` or ``relu``) to a function."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation '{name}'; expected one of {sorted(_ACTIVATIONS)}"
        ) from None


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax (what upstream reports as ``*_log_probs``)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """TF dense layer: ``x @ kernel + bias`` with the kernel stored ``[in, out]``."""
    out = x @ kernel
    return out if bias is None else out + bias


def layer_norm_epsilon(config: Mapping[str, Any]) -> float:
    """The variance epsilon the graph computed with: the config's ``layer_norm_eps`` — during a
    conversion, the one written to config.json, which is the training graph's when it shows one
    (the reference is given the written config over the TF one) — else upstream's constant."""
    return float(config.get("layer_norm_eps", LAYER_NORM_EPSILON))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = LAYER_NORM_EPSILON) -> np.ndarray:
    """Layer norm over the last axis as ``tf.contrib.layers.layer_norm`` computes it.

    The variance is the biased (population) one; ``eps`` (contrib's 1e-12 unless the graph
    used another) is added to the variance inside the square root.
    """
    mean = np.mean(x, axis=-1, keepdims=True)
    variance = np.mean(np.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * gamma + beta
