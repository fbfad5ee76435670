"""Read TF V2 checkpoints (tensor bundles) without TensorFlow.

:func:`open_checkpoint` parses only the ``.index`` file, so a conversion can be planned from
names, dtypes and shapes even when the data shards are absent. :meth:`Checkpoint.read`
memory-maps a data shard the first time one of its tensors is needed and touches only that
tensor's bytes, so optimizer slots and other skipped variables are never read. When the array
it returned is gone, its pages are dropped from the process (``MADV_DONTNEED``; they stay in the
page cache; :mod:`tf2hf.tfckpt.pages`), so reading a whole model tensor by tensor keeps one
tensor resident, not the model. The kernel is told not to read ahead around what is touched
(:func:`tf2hf.tfckpt.pages.read_only_what_is_asked`) and to read each tensor's own range ahead
as it is read (:func:`tf2hf.tfckpt.pages.read_ahead`): the slots beside the weights of a
fine-tuned checkpoint stay on disk. What the index claims is checked as it is parsed
(:mod:`tf2hf.tfckpt.index`); what the data holds, as each tensor is read.
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
from pathlib import Path
from types import TracebackType

import crc32c
import numpy as np

from tf2hf.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CrcMismatchError,
    MissingShardError,
    ShortShardError,
    UnsupportedDtypeError,
)
from tf2hf.tfckpt.h5 import is_h5_source, open_h5
from tf2hf.sources import not_regular, open_regular
from tf2hf.tfckpt.index import STORAGE_DTYPES, TensorInfo, read_index
from tf2hf.tfckpt.pages import drop_pages_after, read_ahead, read_only_what_is_asked
from tf2hf.tfckpt.resolve import data_shards_of, resolve_prefix
from tf2hf.tfckpt.sstable import mask_crc


class Checkpoint:
    """An opened checkpoint: its files, its variables, and :meth:`read` for one tensor.

    Arrays returned by :meth:`read` are read-only views into the memory-mapped shard (or own
    their memory, for bfloat16 and misaligned tensors); they stay valid after :meth:`close`.
    """

    def __init__(
        self,
        prefix: Path,
        num_shards: int,
        variables: dict[str, TensorInfo],
        partitioned: dict[str, int],
    ) -> None:
        self.prefix = prefix
        self.index_path = _index_of(prefix)
        self.shard_paths = [
            prefix.with_name(f"{prefix.name}.data-{i:05d}-of-{num_shards:05d}")
            for i in range(num_shards)
        ]
        self.files = [self.index_path, *self.shard_paths]
        self.variables = variables
        self._partitioned = partitioned
        self._maps: dict[int, mmap.mmap | None] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.prefix)!r}, {len(self.variables)} variables)"

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unmap the shards; a mapping still viewed by a returned array closes with it."""
        with self._lock:
            maps, self._maps = self._maps, {}
        for mapped in maps.values():
            if mapped is None:
                continue
            try:
                mapped.close()
            except BufferError:
                pass  # arrays from read() still view it; it is unmapped when they go away

    def read(self, name: str) -> np.ndarray:
        """Return the tensor ``name`` after checking its dtype, location, size and crc32c."""
        info = self.variables[name]
        storage = self._storage_of(info)
        mapped = self._shard_map(info.shard, name)
        self._check_extent(info, mapped, storage)
        if mapped is not None and info.size:
            read_ahead(mapped, info.offset, info.size)
        data = self._checked_bytes(info, mapped)
        array = _to_array(data, storage, info)
        if mapped is not None and info.size:
            drop_pages_after(array, mapped, info.offset, info.size)
        return array

    def _storage_of(self, info: TensorInfo) -> np.dtype:
        """How the variable is stored, refusing what cannot be read as one array."""
        storage = STORAGE_DTYPES.get(info.dtype)
        if storage is None:
            raise UnsupportedDtypeError(
                f"{self.index_path}: variable '{info.name}' has dtype {info.dtype}, which tf2hf "
                "cannot read as a weight (only numeric and bool tensors can be read); "
                "leave it out of the conversion"
            )
        if info.name in self._partitioned:
            raise CheckpointFormatError(
                f"{self.index_path}: variable '{info.name}' is a partitioned variable saved as "
                f"{self._partitioned[info.name]} slices, which tf2hf does not read; "
                "re-save the checkpoint without a partitioner"
            )
        return storage

    def _check_extent(self, info: TensorInfo, mapped: mmap.mmap | None, storage: np.dtype) -> None:
        """The variable's bytes lie inside its shard, and there are as many as its shape needs."""
        name = info.name
        shard_path = self.shard_paths[info.shard]
        available = len(mapped) if mapped is not None else 0
        end = info.offset + info.size
        if end > available:
            if available >= self._stored_bytes(info.shard):
                # The shard holds as many bytes as all its variables need: it is complete,
                # and this entry's offset or size is what is wrong.
                raise CheckpointFormatError(
                    f"{self.index_path}: variable '{name}' is recorded at bytes {info.offset} "
                    f"to {end} of {shard_path.name}, past the end of that shard ({available} "
                    "bytes, enough for all its variables); the index is damaged, copy it again"
                )
            raise ShortShardError(
                f"{shard_path}: data shard is truncated ({available} bytes, but variable "
                f"'{name}' needs bytes {info.offset} to {end}); copy the file again"
            )
        expected = info.numel * storage.itemsize
        if info.size != expected:
            raise CheckpointFormatError(
                f"{self.index_path}: variable '{name}' is recorded with {info.size} bytes, but "
                f"shape {list(info.shape)} of {info.dtype} needs {expected}; "
                "the index is corrupt, copy it again"
            )

    def _checked_bytes(self, info: TensorInfo, mapped: mmap.mmap | None) -> memoryview:
        """The variable's bytes in the mapping, once their crc32c matches the index."""
        if mapped is None or info.size == 0:
            data: memoryview = memoryview(b"")
        else:
            data = memoryview(mapped)[info.offset : info.offset + info.size]
        if mask_crc(crc32c.crc32c(data)) != info.crc32c:
            data.release()  # let close() unmap the shard even while this error is alive
            raise CrcMismatchError(
                f"{self.shard_paths[info.shard]}: variable '{info.name}' is corrupt (the crc32c "
                f"of its {info.size} bytes at offset {info.offset} does not match the index); "
                "the file was damaged, copy it again"
            )
        return data

    def _stored_bytes(self, shard: int) -> int:
        """Bytes the index places in ``shard`` (unknown, so never reached, when partitioned
        variables store slices there under keys of their own)."""
        if self._partitioned:
            return 1 << 63
        return sum(v.size for v in self.variables.values() if v.shard == shard)

    def _shard_map(self, shard: int, name: str) -> mmap.mmap | None:
        """The read-only mapping of one shard, opened on first use (None for an empty file)."""
        with self._lock:
            if shard in self._maps:
                return self._maps[shard]
            path = self.shard_paths[shard]
            try:
                # Never a plain open: a FIFO as a shard would block here forever.
                with open_regular(path, CheckpointFormatError, "this data shard") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    mapped = (
                        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None
                    )
                    if mapped is not None:
                        read_only_what_is_asked(handle.fileno(), mapped)
            except FileNotFoundError:
                raise self._missing_shard(shard, name) from None
            except (OSError, ValueError, OverflowError) as error:
                raise CheckpointNotFoundError(
                    f"{path}: cannot read this data shard ({error}); check the file"
                ) from None
            self._maps[shard] = mapped
            return mapped


    def _missing_shard(self, shard: int, name: str) -> MissingShardError:
        """Say why a data shard is absent: shards of another save beside it, or just not copied."""
        path = self.shard_paths[shard]
        count = len(self.shard_paths)
        others = [p.name for p in data_shards_of(self.prefix) if not p.name.endswith(f"-of-{count:05d}")]
        if others:
            return MissingShardError(
                f"{path}: data shard {shard + 1} of {count} is missing (it holds "
                f"variable '{name}'), but {others[0]} is there: the index and the data "
                "files come from different saves; copy the .index and .data-* files "
                "of one save together"
            )
        return MissingShardError(
            f"{path}: data shard {shard + 1} of {count} is missing (it holds variable "
            f"'{name}'); copy every {self.prefix.name}.data-*-of-{count:05d} file "
            f"next to {self.index_path.name}"
        )

def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Resolve ``path`` to a prefix and parse its index; no tensor data is read.

    A Keras HDF5 weights file (an ``.h5`` file, or a ``save_pretrained`` folder holding
    ``tf_model.h5``) opens as :class:`~tf2hf.tfckpt.h5.H5Weights`, which has the same interface.
    """
    try:
        h5 = is_h5_source(Path(os.path.abspath(Path(path).expanduser())))
    except OSError:
        h5 = False  # a name the system cannot look up: resolve_prefix says so in words
    if h5:
        return open_h5(path)  # type: ignore[return-value]
    prefix = resolve_prefix(path)
    index = read_index(_index_of(prefix))
    checkpoint = Checkpoint(prefix, index.num_shards, index.variables, index.partitioned)
    _refuse_special_files(checkpoint.shard_paths)
    return checkpoint


def _refuse_special_files(paths: list[Path]) -> None:
    """A shard that is a FIFO, a device or a folder is an error now, before anything reads it
    (absent shards are fine: a conversion can be planned without them)."""
    for path in paths:
        try:
            mode = os.stat(path).st_mode  # follows a symbolic link, as reading would
        except OSError:
            continue  # absent, or a dangling link: reported as missing when it is needed
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode, CheckpointFormatError, "this data shard")


def _to_array(data: memoryview, storage: np.dtype, info: TensorInfo) -> np.ndarray:
    """View ``data`` as the tensor; widen bfloat16, copy when the bytes are misaligned."""
    if info.size == 0:
        return np.zeros(info.shape, dtype=np.float32 if info.dtype == "bfloat16" else storage)
    view = np.frombuffer(data, dtype=storage).reshape(info.shape)
    if info.dtype == "bfloat16":
        # bfloat16 is the top half of a float32, so shifting the bits up is exact.
        widened = np.empty(info.shape, dtype=np.float32)
        bits = widened.view(np.uint32)
        bits[...] = view
        bits <<= 16
        return widened
    if not view.flags.aligned:
        return view.copy()
    return view


def _index_of(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")
