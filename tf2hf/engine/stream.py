"""Streaming a plan into a weights file: read, transform, check, cast and write one tensor at a time.

Every value written is checked on the way, on the pieces already in memory: a NaN or Inf (which
verification's few token ids would miss in an embedding row it never looks up) is refused unless
the user allows it, and a value beyond what the output dtype holds (1e5 in float16) is refused
always, since it would be written as Inf.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from tf2hf.engine import transforms
from tf2hf.engine.plan import Plan, PlannedTensor
from tf2hf.errors import WeightValueError
from tf2hf.output.dtypes import ITEMSIZE, LARGEST, cast, count_bad

Progress = Callable[[int, int, str], None]
Read = Callable[[str], np.ndarray]


def check_shards(ckpt, plan: Plan) -> None:
    """Fail before writing anything when a shard the model needs is missing or too short."""
    sizes: dict[int, int] = {}
    for tensor in plan.tensors:
        for name in tensor.sources:
            info = ckpt.variables[name]
            if info.shard not in sizes:
                path = ckpt.shard_paths[info.shard]
                sizes[info.shard] = path.stat().st_size if path.exists() else -1
            if info.offset + info.size > sizes[info.shard]:
                ckpt.read(name)  # raises the reader's own error naming the shard and what to do


class ValueCheck:
    """Counts the bad values of each tensor written; :meth:`done` refuses or warns."""

    def __init__(self, source: str, dtype: str, allow_non_finite: bool, warnings: list[str]):
        self.source, self.dtype, self.allow, self.warnings = source, dtype, allow_non_finite, warnings
        self._counts = [0, 0, 0]

    def scan(self, piece: np.ndarray) -> None:
        for i, n in enumerate(count_bad(piece, self.dtype)):
            self._counts[i] += n

    def done(self, tensor: PlannedTensor) -> None:
        """The tensor's last piece was scanned."""
        nan, inf, over = self._counts
        self._counts = [0, 0, 0]
        name = tensor.sources[0] if len(tensor.sources) == 1 else f"{tensor.key} (from {', '.join(tensor.sources)})"
        if over:
            raise WeightValueError(
                f"{self.source}: {name} has {over} value(s) beyond what {self.dtype} holds (|x| > {LARGEST[self.dtype]:g}), "
                "which would be written as Inf; convert with --dtype float32"
            )
        if nan or inf:
            counted = f"{self.source}: {name} has {nan} NaN and {inf} Inf values"
            if not self.allow:
                raise WeightValueError(f"{counted}; pass --allow-non-finite to convert anyway")
            self.warnings.append(f"{counted}; converted anyway (--allow-non-finite)")


def write_weights(plan: Plan, read: Read, path: Path, fmt: str, dtype: str, progress: Progress | None, *,
                  allow_non_finite: bool = False, warnings: list[str] | None = None) -> int:
    """Write the plan's tensors to ``path`` as ``fmt`` (``safetensors`` or ``bin``); its size.

    A tensor holding NaN or Inf is refused (a :class:`WeightValueError` naming it), or with
    ``allow_non_finite`` written and reported in ``warnings``; a value the dtype cannot hold is
    always refused.
    """
    total = sum(t.numel for t in plan.tensors) * ITEMSIZE[dtype]
    check = ValueCheck(plan.source, dtype, allow_non_finite, warnings if warnings is not None else [])
    if fmt == "safetensors":
        _write_safetensors(plan, read, path, dtype, progress, total, check)
    else:
        _write_bin(plan, read, path, dtype, progress, total, check)
    return path.stat().st_size


def _write_safetensors(plan: Plan, read: Read, path: Path, dtype: str, progress: Progress | None, total: int, check: ValueCheck) -> None:
    from tf2hf.output.safetensors_stream import SafetensorsStreamWriter

    by_key = {t.key: t for t in plan.tensors}
    writer = SafetensorsStreamWriter(path, [(t.key, t.shape) for t in plan.tensors], dtype, {"format": "pt"})

    def pieces(key: str):
        # Read, transform and cast piece by piece straight into the file: a copied tensor
        # goes from the checkpoint's mapping to the file; a transposed one through a few MiB.
        tensor = by_key[key]
        sources = [read(s) for s in tensor.sources]
        for piece in transforms.stream(transforms.get(tensor.op), sources, tensor.shape):
            check.scan(piece)
            yield cast(piece, dtype)
        check.done(tensor)

    done = 0
    try:
        for key in writer.order:
            done += writer.write_chunks(key, pieces(key))
            if progress:
                progress(done, total, key)
    except BaseException:
        writer.abort()
        raise
    writer.close()


def _write_bin(plan: Plan, read: Read, path: Path, dtype: str, progress: Progress | None, total: int, check: ValueCheck) -> None:
    # torch.save needs every tensor at once: there is no streaming form of pytorch_model.bin.
    from tf2hf.output.torch_bin import save_bin

    done = 0
    arrays = {}
    for tensor in sorted(plan.tensors, key=lambda t: t.key):
        op = transforms.get(tensor.op)
        value = op.apply([read(s) for s in tensor.sources], tensor.shape)
        check.scan(value)
        check.done(tensor)
        arrays[tensor.key] = cast(value, dtype)
        done += arrays[tensor.key].nbytes
        if progress:
            progress(done, total, tensor.key)
    save_bin(arrays, dtype, path)
