"""``pytorch_model.bin`` output: a plain dict of tensors, saved with torch.

Only tensors go in (no classes, no code), so the file loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np


def save_bin(arrays: Mapping[str, np.ndarray], dtype: str, path: Path) -> None:
    import torch

    state = {}
    for key, array in arrays.items():
        tensor = torch.from_numpy(np.array(array, copy=True, order="C"))
        if dtype == "bfloat16":
            tensor = tensor.view(torch.bfloat16)  # the array holds bfloat16 bit patterns
        state[key] = tensor
    with open(path, "wb") as handle:
        try:
            torch.save(state, handle)
        except RuntimeError as exc:
            # torch reports a failed write (a full disk...) as RuntimeError; the OSError that
            # caused it is its context. Raise that, so the caller can say what happened.
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise
