"""Read TF V2 checkpoints (tensor bundles) without TensorFlow.

:func:`open_checkpoint` parses only the ``.index`` file, so a conversion can be planned from
names, dtypes and shapes even when the data shards are absent. :meth:`Checkpoint.read`
memory-maps a data shard the first time one of its tensors is needed and touches only that
tensor's bytes, so optimizer slots and other skipped variables are never read. When the array
it returned is gone, its pages are dropped from the process (``MADV_DONTNEED``; they stay in the
page cache), so reading a whole model tensor by tensor keeps one tensor resident, not the model.
"""

from __future__ import annotations

import math
import mmap
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import crc32c
import numpy as np

from tf2hf.tfckpt.bundle import (
    BIG_ENDIAN,
    BUNDLE_VERSION,
    BundleEntry,
    dtype_name,
    parse_entry,
    parse_header,
)
from tf2hf.tfckpt.resolve import _data_shards_of, resolve_prefix
from tf2hf.tfckpt.sstable import MalformedIndexError, mask_crc, read_table
from tf2hf.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    CrcMismatchError,
    MissingShardError,
    ShortShardError,
    UnsupportedDtypeError,
)

#: Upper bound on the shard count in a header; real checkpoints have a handful.
MAX_SHARDS = 100_000
#: Upper bound on the size of an index file. An index holds ~100 bytes per variable, so
#: real ones are kilobytes to a few megabytes; this keeps a wrong file from filling memory.
MAX_INDEX_BYTES = 256 << 20

#: How each readable dtype is stored in a data shard. bfloat16 is read as raw uint16 and
#: widened to float32 (numpy has no bfloat16).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "float32": "<f4",
        "float64": "<f8",
        "float16": "<f2",
        "bfloat16": "<u2",
        "int8": "i1",
        "int16": "<i2",
        "int32": "<i4",
        "int64": "<i8",
        "uint8": "u1",
        "uint16": "<u2",
        "uint32": "<u4",
        "uint64": "<u8",
        "bool": "?",
        "complex64": "<c8",
        "complex128": "<c16",
    }.items()
}

# Slices of a partitioned variable are stored under keys that start with a zero byte (an
# ordered-code encoding of name and extent); they are not variables of their own.
_SLICE_KEY_PREFIX = b"\x00"


@dataclass(frozen=True)
class TensorInfo:
    """Where and how one variable is stored.

    ``crc32c`` is the masked crc32c exactly as recorded in the index. ``shard``, ``offset`` and
    ``size`` are 0 for a partitioned variable, whose slices are stored separately.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int

    @property
    def nbytes(self) -> int:
        return self.size

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


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
        storage = _STORAGE_DTYPES.get(info.dtype)
        if storage is None:
            raise UnsupportedDtypeError(
                f"{self.index_path}: variable '{name}' has dtype {info.dtype}, which tf2hf "
                "cannot read as a weight (only numeric and bool tensors can be read); "
                "leave it out of the conversion"
            )
        if name in self._partitioned:
            raise CheckpointFormatError(
                f"{self.index_path}: variable '{name}' is a partitioned variable saved as "
                f"{self._partitioned[name]} slices, which tf2hf does not read; "
                "re-save the checkpoint without a partitioner"
            )
        shard_path = self.shard_paths[info.shard]
        mapped = self._shard_map(info.shard, name)
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
        if mapped is None or info.size == 0:
            data: memoryview = memoryview(b"")
        else:
            data = memoryview(mapped)[info.offset : end]
        if mask_crc(crc32c.crc32c(data)) != info.crc32c:
            data.release()  # let close() unmap the shard even while this error is alive
            raise CrcMismatchError(
                f"{shard_path}: variable '{name}' is corrupt (the crc32c of its {info.size} "
                f"bytes at offset {info.offset} does not match the index); "
                "the file was damaged, copy it again"
            )
        array = _to_array(data, storage, info)
        if mapped is not None and info.size:
            _drop_pages_after(array, mapped, info.offset, info.size)
        return array

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
                with path.open("rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    mapped = (
                        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None
                    )
            except FileNotFoundError:
                count = len(self.shard_paths)
                others = [
                    p.name for p in _data_shards_of(self.prefix)
                    if not p.name.endswith(f"-of-{count:05d}")
                ]
                if others:
                    raise MissingShardError(
                        f"{path}: data shard {shard + 1} of {count} is missing (it holds "
                        f"variable '{name}'), but {others[0]} is there: the index and the data "
                        "files come from different saves; copy the .index and .data-* files "
                        "of one save together"
                    ) from None
                raise MissingShardError(
                    f"{path}: data shard {shard + 1} of {count} is missing (it holds variable "
                    f"'{name}'); copy every {self.prefix.name}.data-*-of-{count:05d} file "
                    f"next to {self.index_path.name}"
                ) from None
            except (OSError, ValueError, OverflowError) as error:
                raise CheckpointNotFoundError(
                    f"{path}: cannot read this data shard ({error}); check the file"
                ) from None
            self._maps[shard] = mapped
            return mapped


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Resolve ``path`` to a prefix and parse its index; no tensor data is read."""
    prefix = resolve_prefix(path)
    index_path = _index_of(prefix)
    try:
        with index_path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_INDEX_BYTES:
                raise CheckpointFormatError(
                    f"{index_path}: the index is {size} bytes, far larger than any checkpoint "
                    "index; pass the checkpoint's real .index file"
                )
            data = handle.read()
    except OSError as error:
        raise CheckpointNotFoundError(
            f"{index_path}: cannot read the index ({error.strerror or error}); check the file"
        ) from None
    try:
        num_shards, variables, partitioned = _parse_index(data, index_path)
    except MalformedIndexError as error:
        raise CheckpointFormatError(
            f"{index_path}: not a valid TF checkpoint index ({error}); "
            "the file is damaged or truncated, copy it again"
        ) from None
    return Checkpoint(prefix, num_shards, variables, partitioned)


def _parse_index(
    data: bytes, index_path: Path
) -> tuple[int, dict[str, TensorInfo], dict[str, int]]:
    """Decode the header and every entry of an index file."""
    entries = read_table(data)
    if not entries or entries[0][0] != b"":
        raise MalformedIndexError("no header entry")
    header = parse_header(entries[0][1])
    if header.endianness == BIG_ENDIAN:
        raise CheckpointFormatError(
            f"{index_path}: the checkpoint was written in big-endian byte order, which tf2hf "
            "does not read; re-save it on a little-endian machine"
        )
    if header.endianness != 0:
        raise MalformedIndexError(f"unknown byte order {header.endianness} in the header")
    if header.min_consumer > BUNDLE_VERSION or BUNDLE_VERSION in header.bad_consumers:
        raise CheckpointFormatError(
            f"{index_path}: the checkpoint uses a newer tensor-bundle format (needs reader "
            f"version {header.min_consumer}); re-save it with an older TensorFlow"
        )
    if not 1 <= header.num_shards <= MAX_SHARDS:
        raise MalformedIndexError(f"the header says num_shards={header.num_shards}")

    variables: dict[str, TensorInfo] = {}
    partitioned: dict[str, int] = {}
    for key, value in entries[1:]:
        if key.startswith(_SLICE_KEY_PREFIX):
            continue
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedIndexError(f"variable name {key[:60]!r} is not valid UTF-8") from None
        entry = parse_entry(value)
        if entry.num_slices:
            partitioned[name] = entry.num_slices
        elif entry.shard_id >= header.num_shards:
            raise MalformedIndexError(
                f"variable '{name}' is in shard {entry.shard_id}, "
                f"but the header says there are {header.num_shards}"
            )
        else:
            _check_size(name, entry, index_path)
        variables[name] = _tensor_info(name, entry)
    return header.num_shards, variables, partitioned


def _check_size(name: str, entry: BundleEntry, index_path: Path) -> None:
    """A numeric tensor's byte size follows from its shape: check it while parsing, so that a
    garbled shape (say 10**12 elements) is refused before anything is sized from it."""
    storage = _STORAGE_DTYPES.get(dtype_name(entry.dtype))
    if storage is None:
        return  # strings and other variable-width dtypes: checked when (if ever) read
    expected = math.prod(entry.shape) * storage.itemsize
    if entry.size != expected:
        raise CheckpointFormatError(
            f"{index_path}: variable '{name}' is recorded with {entry.size} bytes, but shape "
            f"{list(entry.shape)} of {dtype_name(entry.dtype)} needs {expected}; "
            "the index is corrupt, copy it again"
        )


def _tensor_info(name: str, entry: BundleEntry) -> TensorInfo:
    return TensorInfo(
        name=name,
        dtype=dtype_name(entry.dtype),
        shape=entry.shape,
        shard=entry.shard_id,
        offset=entry.offset,
        size=entry.size,
        crc32c=entry.crc32c,
    )


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


def _drop_pages(mapped: mmap.mmap, offset: int, size: int) -> None:
    """Unmap the pages of ``offset:offset+size`` from this process; the file's data stays in
    the page cache and is mapped again on the next access, so views still alive (a neighbour
    sharing an edge page) read the same bytes."""
    start = offset - offset % mmap.PAGESIZE
    try:
        mapped.madvise(mmap.MADV_DONTNEED, start, offset + size - start)
    except (ValueError, OSError):
        pass  # the shard was closed meanwhile, or the system refuses: only memory is at stake


def _drop_pages_after(array: np.ndarray, mapped: mmap.mmap, offset: int, size: int) -> None:
    """Drop the tensor's pages once ``array`` (and every view of it) is gone, or now when it
    is a copy. Measured on BERT-base + Adam slots, this keeps peak RSS at one tensor for the
    cost of a page fault per 4 KiB read (as fast as mapping each tensor on its own, and
    faster than ``pread`` into a fresh buffer, which copies every byte once more)."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return  # no madvise here (Windows): pages stay mapped until the shard is closed
    if array.flags.owndata:
        _drop_pages(mapped, offset, size)
        return
    # numpy points every view (reshape, .T, slices) at the array that wraps the buffer, not at
    # the array it was made from: that one lives exactly as long as some view of the tensor.
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    weakref.finalize(root, _drop_pages, mapped, offset, size).atexit = False


def _index_of(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")
