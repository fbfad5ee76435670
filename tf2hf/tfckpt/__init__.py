"""Reading TF V2 checkpoints (``P.index`` + ``P.data-*``) without TensorFlow.

    from tf2hf.tfckpt import open_checkpoint

    with open_checkpoint("/x/model.ckpt-1000") as ckpt:   # or the folder, or any of its files
        for name, info in ckpt.variables.items():         # parsed from the index alone
            array = ckpt.read(name)                       # checked against its crc32c
"""

from __future__ import annotations

from tf2hf.tfckpt.index import TensorInfo
from tf2hf.tfckpt.reader import Checkpoint, open_checkpoint
from tf2hf.tfckpt.resolve import resolve_prefix

__all__ = ["Checkpoint", "TensorInfo", "open_checkpoint", "resolve_prefix"]
