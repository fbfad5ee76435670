"""tf2hf: convert TensorFlow 1.x BERT-family checkpoints into Hugging Face transformers folders.

Importing this package is cheap: torch, transformers and numpy-heavy modules load only when a
conversion needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tf2hf.errors import Tf2hfError

__version__ = "0.1.0"

__all__ = ["__version__", "Tf2hfError", "convert", "convert_many", "inspect"]

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

    from tf2hf.api import ConversionResult
    from tf2hf.batch.results import EntryResult
    from tf2hf.tools.inspection import CheckpointReport


def convert(family: str, *, tf: str, out: str | None = None, **options: Any) -> "ConversionResult":
    """Convert one checkpoint; see :func:`tf2hf.api.convert` for the options."""
    from tf2hf.api import convert as _convert

    return _convert(family, tf=tf, out=out, **options)


def convert_many(entries: Any, out_root: Any, *, workers: int | None = None, **options: Any) -> "Iterator[EntryResult]":
    """Convert many checkpoints in parallel processes (or as tasks on a Dask cluster:
    ``executor="dask"``, ``scheduler=`` or ``client=``), yielding a result per entry as each
    completes; see :func:`tf2hf.batch.run.convert_many`."""
    from tf2hf.batch.run import convert_many as _convert_many

    return _convert_many(entries, out_root, workers=workers, **options)


def inspect(path: Any, **options: Any) -> "CheckpointReport":
    """Parameters and bytes per part of a checkpoint, from its index alone; see
    :func:`tf2hf.tools.inspection.inspect`."""
    from tf2hf.tools.inspection import inspect as _inspect

    return _inspect(path, **options)
