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
        return np.ascontiguousarray(array, dtype=np.float16)
    if dtype == "bfloat16":
        return bfloat16_bits(array)
    raise ValueError(f"unsupported output dtype {dtype!r}; choose one of {', '.join(OUTPUT_DTYPES)}")
