"""Write a safetensors file one tensor at a time.

The format is an 8-byte little-endian header length, a JSON header (padded with spaces to a
multiple of 8) giving each tensor's dtype, shape and byte range, then the raw bytes. Because the
plan knows every shape before any data is read, the header is written first and each tensor is
streamed after it as soon as it is computed: memory stays at one tensor, whatever the model size.
Tensors are laid out in key order, as the safetensors library does.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import BinaryIO, Iterable, Mapping, Sequence

import numpy as np

from tf2hf.output.dtypes import ITEMSIZE, SAFETENSORS_NAME
from tf2hf.output.writeback import Writeback


class SafetensorsStreamWriter:
    def __init__(self, path: Path, layout: Sequence[tuple[str, tuple[int, ...]]], dtype: str, metadata: Mapping[str, str]):
        self.path = Path(path)
        self.dtype = dtype
        self._order = sorted(layout, key=lambda entry: entry[0])
        self._next = 0
        header: dict[str, object] = {"__metadata__": dict(metadata)}
        offset = 0
        self._sizes: dict[str, int] = {}
        for key, shape in self._order:
            nbytes = int(np.prod(shape, dtype=np.int64)) * ITEMSIZE[dtype]
            header[key] = {"dtype": SAFETENSORS_NAME[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            self._sizes[key] = nbytes
            offset += nbytes
        self.data_bytes = offset
        encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % 8)
        self._file: BinaryIO = open(self.path, "wb")
        self._writeback = Writeback(self._file)
        self._file.write(struct.pack("<Q", len(encoded)))
        self._file.write(encoded)

    @property
    def order(self) -> list[str]:
        """Keys in the order :meth:`write` expects them."""
        return [key for key, _ in self._order]

    def _due(self, key: str) -> tuple[int, ...]:
        """The shape of ``key``, which must be the tensor due next."""
        expected_key, shape = self._order[self._next]
        if key != expected_key:
            raise ValueError(f"tensors must be written in key order: expected {expected_key}, got {key}")
        return shape

    def write(self, key: str, data: np.ndarray) -> None:
        shape = self._due(key)
        if tuple(data.shape) != tuple(shape) or data.nbytes != self._sizes[key]:
            raise ValueError(f"{key}: expected shape {list(shape)} ({self._sizes[key]} bytes), got {list(data.shape)} ({data.nbytes} bytes)")
        self._file.write(memoryview(np.ascontiguousarray(data)).cast("B"))
        self._writeback.wrote()
        self._next += 1

    def write_chunks(self, key: str, pieces: Iterable[np.ndarray]) -> int:
        """Write the next tensor from consecutive pieces of its bytes (e.g. blocks of rows of a
        transpose), so it never has to exist whole in memory; return its size in bytes."""
        shape = self._due(key)
        size = self._sizes[key]
        written = 0
        for piece in pieces:
            view = memoryview(np.ascontiguousarray(piece)).cast("B")
            if written + view.nbytes > size:
                raise ValueError(f"{key}: more than the {size} bytes of shape {list(shape)} were produced")
            self._file.write(view)
            written += view.nbytes
            self._writeback.wrote()
        if written != size:
            raise ValueError(f"{key}: {written} bytes were produced, but shape {list(shape)} needs {size}")
        self._next += 1
        return size

    def close(self) -> None:
        """Finish the file; it is complete only if every tensor was written."""
        try:
            if self._next != len(self._order):
                raise ValueError(f"{self.path}: only {self._next} of {len(self._order)} tensors were written")
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()
