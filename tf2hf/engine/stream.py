"""Streaming a plan into a weights file: read, transform, cast and write one tensor at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from tf2hf.engine import transforms
from tf2hf.engine.plan import Plan
from tf2hf.output.dtypes import ITEMSIZE, cast

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


def write_weights(plan: Plan, read: Read, path: Path, fmt: str, dtype: str, progress: Progress | None) -> int:
    """Write the plan's tensors to ``path`` as ``fmt`` (``safetensors`` or ``bin``); its size."""
    total = sum(t.numel for t in plan.tensors) * ITEMSIZE[dtype]
    if fmt == "safetensors":
        _write_safetensors(plan, read, path, dtype, progress, total)
    else:
        _write_bin(plan, read, path, dtype, progress, total)
    return path.stat().st_size


def _write_safetensors(plan: Plan, read: Read, path: Path, dtype: str, progress: Progress | None, total: int) -> None:
    from tf2hf.output.safetensors_stream import SafetensorsStreamWriter

    by_key = {t.key: t for t in plan.tensors}
    writer = SafetensorsStreamWriter(path, [(t.key, t.shape) for t in plan.tensors], dtype, {"format": "pt"})

    def pieces(key: str):
        # Read, transform and cast piece by piece straight into the file: a copied tensor
        # goes from the checkpoint's mapping to the file; a transposed one through a few MiB.
        tensor = by_key[key]
        sources = [read(s) for s in tensor.sources]
        for piece in transforms.stream(transforms.get(tensor.op), sources, tensor.shape):
            yield cast(piece, dtype)

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


def _write_bin(plan: Plan, read: Read, path: Path, dtype: str, progress: Progress | None, total: int) -> None:
    # torch.save needs every tensor at once: there is no streaming form of pytorch_model.bin.
    from tf2hf.output.torch_bin import save_bin

    done = 0
    arrays = {}
    for tensor in sorted(plan.tensors, key=lambda t: t.key):
        op = transforms.get(tensor.op)
        arrays[tensor.key] = cast(op.apply([read(s) for s in tensor.sources], tensor.shape), dtype)
        done += arrays[tensor.key].nbytes
        if progress:
            progress(done, total, tensor.key)
    save_bin(arrays, dtype, path)
