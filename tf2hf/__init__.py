"""tf2hf: convert TensorFlow 1.x BERT-family checkpoints into Hugging Face transformers folders.

Importing this package is cheap: torch, transformers and numpy-heavy modules load only when a
conversion needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tf2hf.errors import Tf2hfError

__version__ = "0.1.0"

__all__ = ["__version__", "Tf2hfError", "convert"]

if TYPE_CHECKING:  # pragma: no cover
    from tf2hf.api import ConversionResult


def convert(family: str, *, tf: str, out: str | None = None, **options: Any) -> "ConversionResult":
    """Convert one checkpoint; see :func:`tf2hf.api.convert` for the options."""
    from tf2hf.api import convert as _convert

    return _convert(family, tf=tf, out=out, **options)
