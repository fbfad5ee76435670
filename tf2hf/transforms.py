"""Named tensor transforms that family tables refer to by name.

Each transform knows the shape it produces from its sources' shapes (so the planner checks every
shape before reading any data) and how to compute it. Results are always fresh C-contiguous
arrays: safetensors refuses views and shared memory.

TF stores a dense kernel as ``[in, out]`` because it computes ``x @ W``; ``torch.nn.Linear``
stores ``[out, in]``: hence ``transpose``. Head weights that upstream code multiplies with
``transpose_b=True`` (``output_weights``) are already ``[out, in]`` and use ``copy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Transform:
    name: str
    arity: int | None
    shape: Callable[[Sequence[Shape], Shape], Shape | None]
    apply: Callable[[Sequence[np.ndarray], Shape], np.ndarray]
    summary: str


def _copy_shape(src: Sequence[Shape], target: Shape) -> Shape:
    return src[0]


def _transpose_shape(src: Sequence[Shape], target: Shape) -> Shape | None:
    return tuple(reversed(src[0])) if len(src[0]) == 2 else None


def _matmul_shape(src: Sequence[Shape], target: Shape) -> Shape | None:
    a, b = src
    if len(a) != 2 or len(b) != 2 or a[1] != b[0]:
        return None
    return (a[0], b[1])


def _target_shape(src: Sequence[Shape], target: Shape) -> Shape:
    return target


def _eye_shape(src: Sequence[Shape], target: Shape) -> Shape | None:
    return target if len(target) == 2 and target[0] == target[1] else None


def _copy(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    return np.ascontiguousarray(arrays[0])


def _transpose(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    return np.ascontiguousarray(arrays[0].T)


def _matmul(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    # Folding two factors into one matrix: computed in float64 so the product is exact to the
    # last bit of float32 that the result is stored in.
    a, b = arrays
    return np.ascontiguousarray(a.astype(np.float64) @ b.astype(np.float64))


def _eye(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    return np.eye(target[0], dtype=np.float32)


def _zeros(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    return np.zeros(target, dtype=np.float32)


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("copy", 1, _copy_shape, _copy, "as stored"),
        Transform("transpose", 1, _transpose_shape, _transpose, "[in, out] -> [out, in]"),
        Transform("matmul", 2, _matmul_shape, _matmul, "product of two factors, in float64"),
        Transform("eye", 0, _eye_shape, _eye, "identity matrix (layer absent in TF)"),
        Transform("zeros", 0, _target_shape, _zeros, "zeros (layer absent in TF)"),
    )
}


def get(name: str) -> Transform:
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise KeyError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}") from None
