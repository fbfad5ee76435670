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
from typing import Callable, Iterator, Sequence

import numpy as np

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Transform:
    name: str
    arity: int | None
    shape: Callable[[Sequence[Shape], Shape], Shape | None]
    apply: Callable[[Sequence[np.ndarray], Shape], np.ndarray]
    summary: str
    #: Optional streaming form of ``apply``: yields C-contiguous pieces whose bytes, in order,
    #: are the result's; pieces may reuse one buffer, so each must be used before the next is
    #: asked for. Transforms without it are streamed as one piece (see :func:`stream`).
    chunks: Callable[[Sequence[np.ndarray], Shape], Iterator[np.ndarray]] | None = None


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


# numpy copies a transposed view element by element in the destination's order, so it reads
# the source a whole row apart at every step and reuses almost nothing it brought into cache
# (~0.9 GB/s on a BERT kernel). Working through tiles keeps the lines being read in L1. Measured
# on the 74 kernels of BERT-base, read from the checkpoint's mapping and streamed as in a
# conversion (4 KiB pages, so the tile's rows are pages apart on both sides): 64 source rows x
# 128 source columns (32 KiB) 0.16-0.27 s; 32 x 256 0.21-0.30 s; 8 x 512 (used before) 0.31-0.38 s.
_TILE_ROWS = 64
_TILE_COLS = 128
#: Below this many elements the tile loop costs more than it saves.
_SMALL_TRANSPOSE = 1 << 16
#: Size of one streamed piece of a transposed tensor: memory stays bounded whatever its size.
_PIECE_BYTES = 4 << 20


def transpose_into(src: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write ``src.T`` into ``out`` (shape ``src.shape[::-1]``), tile by tile; return ``out``."""
    rows, cols = src.shape
    if src.size < _SMALL_TRANSPOSE:
        np.copyto(out, src.T)
        return out
    for c in range(0, cols, _TILE_COLS):
        for r in range(0, rows, _TILE_ROWS):
            out[c : c + _TILE_COLS, r : r + _TILE_ROWS] = src[r : r + _TILE_ROWS, c : c + _TILE_COLS].T
    return out


def _transpose(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    src = arrays[0]
    return transpose_into(src, np.empty(src.shape[::-1], dtype=src.dtype))


def _transpose_chunks(arrays: Sequence[np.ndarray], target: Shape) -> Iterator[np.ndarray]:
    """The transposed tensor as blocks of whole output rows, computed into one reused buffer."""
    src = arrays[0]
    rows, cols = src.shape
    row_bytes = max(1, rows * src.dtype.itemsize)
    step = max(_TILE_COLS, _PIECE_BYTES // row_bytes // _TILE_COLS * _TILE_COLS)
    if step >= cols:
        yield _transpose(arrays, target)
        return
    buffer = np.empty((step, rows), dtype=src.dtype)
    for c in range(0, cols, step):
        width = min(step, cols - c)
        yield transpose_into(src[:, c : c + width], buffer[:width])


def _copy_chunks(arrays: Sequence[np.ndarray], target: Shape) -> Iterator[np.ndarray]:
    # A contiguous source (a view into the checkpoint) goes to the output without any copy.
    yield np.ascontiguousarray(arrays[0])


def _matmul(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    # Folding two factors into one matrix: computed in float64 so the product is exact to the
    # last bit of float32 that the result is stored in.
    a, b = arrays
    return np.ascontiguousarray(a.astype(np.float64) @ b.astype(np.float64))


def _eye(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    return np.eye(target[0], dtype=np.float32)


def _zeros(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    return np.zeros(target, dtype=np.float32)


# TF2 (tensorflow/models, Keras MultiHeadAttention) keeps attention kernels per head:
# q/k/v ``[in, heads, head_dim]`` (einsum ``BSH,HND->BSND``), their biases ``[heads, head_dim]``,
# and the output projection ``[heads, head_dim, out]`` (``BSND,NDH->BSH``). Merging the head axes
# in C order gives index ``head * head_dim + d``, the head-major layout torch's Linear splits.


def _prod(dims: Sequence[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _merge_out_transpose_shape(src: Sequence[Shape], target: Shape) -> Shape | None:
    return (_prod(src[0][1:]), src[0][0]) if len(src[0]) >= 2 else None


def _merge_in_transpose_shape(src: Sequence[Shape], target: Shape) -> Shape | None:
    return (src[0][-1], _prod(src[0][:-1])) if len(src[0]) >= 2 else None


def _flatten_shape(src: Sequence[Shape], target: Shape) -> Shape:
    return (_prod(src[0]),)


def _merge_out_transpose(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    a = arrays[0]
    return np.ascontiguousarray(a.reshape(a.shape[0], -1).T)


def _merge_in_transpose(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    a = arrays[0]
    return np.ascontiguousarray(a.reshape(-1, a.shape[-1]).T)


def _flatten(arrays: Sequence[np.ndarray], target: Shape) -> np.ndarray:
    return np.ascontiguousarray(arrays[0].reshape(-1))


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("copy", 1, _copy_shape, _copy, "as stored", _copy_chunks),
        Transform("transpose", 1, _transpose_shape, _transpose, "[in, out] -> [out, in]", _transpose_chunks),
        Transform("matmul", 2, _matmul_shape, _matmul, "product of two factors, in float64"),
        Transform("eye", 0, _eye_shape, _eye, "identity matrix (layer absent in TF)"),
        Transform("zeros", 0, _target_shape, _zeros, "zeros (layer absent in TF)"),
        Transform("merge_out_transpose", 1, _merge_out_transpose_shape, _merge_out_transpose,
                  "[in, heads, head_dim] -> [heads*head_dim, in]"),
        Transform("merge_in_transpose", 1, _merge_in_transpose_shape, _merge_in_transpose,
                  "[heads, head_dim, out] -> [out, heads*head_dim]"),
        Transform("flatten", 1, _flatten_shape, _flatten, "[heads, head_dim] -> [heads*head_dim]"),
    )
}


def stream(transform: Transform, arrays: Sequence[np.ndarray], target: Shape) -> Iterator[np.ndarray]:
    """The result of ``transform`` as C-contiguous pieces, in order (one piece if it has no
    streaming form); use each piece before asking for the next."""
    if transform.chunks is None:
        yield transform.apply(arrays, target)
    else:
        yield from transform.chunks(arrays, target)


def get(name: str) -> Transform:
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise KeyError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}") from None
