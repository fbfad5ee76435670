"""``tf2hf slim``: a copy of a TF checkpoint without optimizer slots and bookkeeping.

The output is still a TF V2 checkpoint (``tf.train.load_checkpoint`` reads it), written by
tf2hf's own writer (:mod:`tf2hf.tfckpt.writer`) without TensorFlow. What is dropped is
decided by :func:`tf2hf.engine.nonweights.classify` alone: optimizer slots (``adam_m``, ``Adam_1``,
``beta1_power`` …) and bookkeeping (``global_step``, loss-scale state …). Every other variable
is kept, including ones no family table maps, so a slimmed checkpoint of any model (BERT or
not) holds all of its weights. Kept tensors are copied byte for byte, checked against their
crc32c on the way.

The new files are written into a staging folder beside the destination (the one conversions use,
so leftovers of a killed run are removed by the next) and moved into place data shard first,
index last: the prefix never names a half-written checkpoint.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt.bundle import parse_entry
from tf2hf.tfckpt.sstable import read_table
from tf2hf.tfckpt.writer import SourceTensor, write_bundle
from tf2hf.errors import CheckpointFormatError, OutputError
from tf2hf.engine.folding import fold
from tf2hf.engine.nonweights import classify
from tf2hf.output.staging import PARTIAL, clean_leftovers, output_error

STATE_FILE = "checkpoint"


@dataclass
class SlimResult:
    """What ``slim`` did; ``to_dict()`` is JSON-serialisable."""

    source: str
    out: str
    variables_before: int
    variables_after: int
    bytes_before: int  # index + data shards of the source, as on disk
    bytes_after: int  # index + data shard written
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> {"count", "bytes"}
    dropped_names: list[str] = field(default_factory=list)  # folded by layer
    state_file: str | None = None  # the ``checkpoint`` file written, if any
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _files_of(prefix: Path) -> list[Path]:
    """Files that belong to ``prefix`` (its index and any data shard, whatever the shard count)."""
    index = prefix.with_name(prefix.name + ".index")
    shards = sorted(prefix.parent.glob(_glob_escape(prefix.name) + ".data-?????-of-?????"))
    return ([index] if index.exists() or index.is_symlink() else []) + shards


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _destination(out: str | os.PathLike[str], source_prefix: Path) -> Path:
    """``--out`` is a prefix; an existing folder means "a prefix of the source's name in it"."""
    path = Path(os.path.abspath(Path(out).expanduser()))
    if path.is_dir():
        return path / source_prefix.name
    for suffix in (".index",):
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def _raw_entries(index_path: Path):
    """(name, BundleEntry) of every key, including slices of partitioned variables."""
    entries = read_table(index_path.read_bytes())
    return [(key, parse_entry(value)) for key, value in entries[1:]]


def slim(ckpt: str | os.PathLike[str], out: str | os.PathLike[str], *, force: bool = False) -> SlimResult:
    """Write the checkpoint ``ckpt`` without optimizer slots and bookkeeping to prefix ``out``.

    ``ckpt`` takes every form ``tf2hf convert --tf`` takes. ``out`` is the new prefix (or an
    existing folder, in which case the source's prefix name is used). An existing checkpoint
    at ``out`` is refused unless ``force``; the source itself is always refused as ``out``.
    """
    started = time.perf_counter()
    with open_checkpoint(ckpt) as source:  # resolves the path and validates the index
        prefix = source.prefix
        index_path = source.index_path
        shard_paths = list(source.shard_paths)
    dest = _destination(out, prefix)
    if dest == prefix or dest.resolve() == prefix.resolve():
        raise OutputError(f"{dest}: this is the source checkpoint; slim writes a new one: choose another --out")
    existing = _files_of(dest)
    if existing and not force:
        raise OutputError(f"{dest}: a checkpoint with this prefix already exists ({existing[0].name}); choose another --out or pass --force to replace it")
    if dest.exists() and dest.is_dir():
        raise OutputError(f"{dest}: is a folder; --out takes a checkpoint prefix such as {dest / prefix.name}")

    raw = _raw_entries(index_path)
    slices = sorted({name.decode("utf-8", "replace") for name, entry in raw if entry.num_slices})
    if slices or any(name.startswith(b"\x00") for name, _ in raw):
        raise CheckpointFormatError(
            f"{index_path}: {fold(slices)[0] if slices else 'a variable'} is a partitioned variable (saved as slices), which tf2hf does not copy; "
            "re-save the checkpoint without a partitioner"
        )

    keep: list[SourceTensor] = []
    dropped: dict[str, dict[str, int]] = {}
    dropped_names: list[str] = []
    for key, entry in raw:
        name = key.decode("utf-8")
        drop = classify(name)
        if drop is not None:
            kind = dropped.setdefault(drop.kind, {"count": 0, "bytes": 0})
            kind["count"] += 1
            kind["bytes"] += entry.size
            dropped_names.append(name)
            continue
        keep.append(SourceTensor(name, entry.dtype, entry.shape, entry.size, entry.crc32c, shard_paths[entry.shard_id], entry.offset))

    bytes_before = sum(p.stat().st_size for p in [index_path, *shard_paths] if p.exists())
    final_index = dest.with_name(dest.name + ".index")
    final_data = dest.with_name(dest.name + ".data-00000-of-00001")
    state_file: str | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(dest)  # staging folders of killed runs
        staging = dest.parent / f".{dest.name}{PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            written = write_bundle(staging / final_index.name, staging / final_data.name, keep)
            # Replacing: remove the old index first, so that at no moment does an index name
            # data that is not its own; then the data, then the new index; then old shards of
            # another shard count.
            old = _files_of(dest)
            if final_index in old:
                os.unlink(final_index)
            os.replace(staging / final_data.name, final_data)
            os.replace(staging / final_index.name, final_index)
            for stale in old:
                if stale not in (final_index, final_data) and stale.exists():
                    os.unlink(stale)
            state = dest.parent / STATE_FILE
            if not state.exists():
                # Without it tf.train.load_checkpoint(folder) finds nothing; an existing one is
                # never touched.
                state.write_text(f'model_checkpoint_path: "{dest.name}"\nall_model_checkpoint_paths: "{dest.name}"\n', encoding="utf-8")
                state_file = str(state)
            _fsync_dir(dest.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise output_error(dest, exc) from None

    return SlimResult(
        source=str(prefix),
        out=str(dest),
        variables_before=len(raw),
        variables_after=len(keep),
        bytes_before=bytes_before,
        bytes_after=written.index_bytes + written.data_bytes,
        dropped=dropped,
        dropped_names=fold(dropped_names),
        state_file=state_file,
        seconds=time.perf_counter() - started,
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
