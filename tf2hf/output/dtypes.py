"""Output dtypes: casting float arrays to what the output file stores, with numpy alone.

numpy has no bfloat16, so bfloat16 output is produced as its raw 16-bit patterns (round to
nearest even, as torch does), and written under the safetensors dtype ``BF16``.
"""

from __future__ import annotations

import numpy as np

OUTPUT_DTYPES = ("float32", "float16", "bfloat16")

SAFETENSORS_NAME = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


def bfloat16_bits(array: np.ndarray) -> np.ndarray:
    """float → bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(array)
    if nan.any():
        rounded[nan] = np.uint16(0x7FC0)
    return rounded


def cast(array: np.ndarray, dtype: str) -> np.ndarray:
    """A C-contiguous array whose bytes are ``array`` stored as ``dtype``."""
    if dtype == "float32":
        return np.ascontiguousarray(array, dtype=np.float32)
    if dtype == "float16":
        # Values beyond float16's range are refused by the caller (count_bad), after the whole
        # tensor is counted; until then numpy's overflow warning would only be noise.
        with np.errstate(over="ignore"):
            return np.ascontiguousarray(array, dtype=np.float16)
    if dtype == "bfloat16":
        return bfloat16_bits(array)
    raise ValueError(f"unsupported output dtype {dtype!r}; choose one of {', '.join(OUTPUT_DTYPES)}")


# The largest finite value each output dtype holds; a weight beyond it would be stored as inf.
LARGEST = {"float32": float(np.finfo(np.float32).max), "float16": 65504.0, "bfloat16": 3.3895313892515355e38}


def count_bad(array: np.ndarray, dtype: str) -> tuple[int, int, int]:
    """(NaN, ±Inf, finite values beyond :data:`LARGEST` of ``dtype``) in ``array``.

    Called on every piece of every tensor written, so the common case is one pass: the dot
    product of the values with themselves (BLAS, no temporary array) is NaN or Inf when any
    value is, and bounds every |value| by its square root otherwise. Only when that sum is
    non-finite or near the limit are the values counted, exactly.
    """
    flat = array.reshape(-1)
    if flat.dtype.kind != "f":
        flat = flat.astype(np.float64)  # integer weights: an integer dot product would wrap around
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is an answer here
        squares = float(np.dot(flat, flat))
    # The float32 sum may be off by rounding; the margin leaves the near cases to the count.
    if squares == squares and squares <= 0.5 * LARGEST[dtype] ** 2:
        return 0, 0, 0
    nan = int(np.count_nonzero(np.isnan(flat)))
    inf = int(np.count_nonzero(np.isinf(flat)))
    limit = LARGEST[dtype]
    over = int(np.count_nonzero(np.abs(flat) > limit)) - inf  # float64 weights can overflow float32 too
    return nan, inf, over
