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
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tf2hf.engine.folding import fold
from tf2hf.engine.nonweights import classify
from tf2hf.errors import CheckpointFormatError, OutputError
from tf2hf.output.staging import aside, clean_leftovers, fsync_path, output_error
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt.bundle import BundleEntry, parse_entry
from tf2hf.tfckpt.resolve import data_shards_of
from tf2hf.tfckpt.sstable import read_table
from tf2hf.tfckpt.writer import SourceTensor, WrittenBundle, write_bundle

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
    _check_destination(dest, prefix, force)
    raw = _raw_entries(index_path)
    keep, dropped, dropped_names = _split(raw, shard_paths)
    bytes_before = sum(p.stat().st_size for p in [index_path, *shard_paths] if p.exists())
    written, state_file = _write(dest, keep)
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


def _files_of(prefix: Path) -> list[Path]:
    """Files that belong to ``prefix`` (its index and any data shard, whatever the shard count)."""
    index = prefix.with_name(prefix.name + ".index")
    return ([index] if index.exists() or index.is_symlink() else []) + data_shards_of(prefix)


def _destination(out: str | os.PathLike[str], source_prefix: Path) -> Path:
    """``--out`` is a prefix; an existing folder means "a prefix of the source's name in it"."""
    path = Path(os.path.abspath(Path(out).expanduser()))
    if path.is_dir():
        return path / source_prefix.name
    for suffix in (".index",):
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def _check_destination(dest: Path, source_prefix: Path, force: bool) -> None:
    """Never the source itself; another checkpoint only with ``force``; never a folder."""
    if dest == source_prefix or dest.resolve() == source_prefix.resolve():
        raise OutputError(f"{dest}: this is the source checkpoint; slim writes a new one: choose another --out")
    existing = _files_of(dest)
    if existing and not force:
        raise OutputError(f"{dest}: a checkpoint with this prefix already exists ({existing[0].name}); choose another --out or pass --force to replace it")
    if dest.exists() and dest.is_dir():
        raise OutputError(f"{dest}: is a folder; --out takes a checkpoint prefix such as {dest / source_prefix.name}")


def _raw_entries(index_path: Path) -> list[tuple[bytes, BundleEntry]]:
    """(name, BundleEntry) of every key, refusing slices of partitioned variables."""
    entries = read_table(index_path.read_bytes())
    raw = [(key, parse_entry(value)) for key, value in entries[1:]]
    slices = sorted({name.decode("utf-8", "replace") for name, entry in raw if entry.num_slices})
    if slices or any(name.startswith(b"\x00") for name, _ in raw):
        raise CheckpointFormatError(
            f"{index_path}: {fold(slices)[0] if slices else 'a variable'} is a partitioned variable (saved as slices), which tf2hf does not copy; "
            "re-save the checkpoint without a partitioner"
        )
    return raw


def _split(raw: list[tuple[bytes, BundleEntry]], shard_paths: list[Path]) -> tuple[list[SourceTensor], dict[str, dict[str, int]], list[str]]:
    """The tensors to keep, and what is dropped: count and bytes per kind, and every name."""
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
    return keep, dropped, dropped_names


def _write(dest: Path, keep: list[SourceTensor]) -> tuple[WrittenBundle, str | None]:
    """Write the new checkpoint in a staging folder and move it to ``dest``; return what was
    written and the ``checkpoint`` state file, if one had to be made."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(dest)  # staging folders of killed runs
        staging = aside(dest)
        staging.mkdir()
        try:
            index_name = dest.name + ".index"
            data_name = dest.name + ".data-00000-of-00001"
            written = write_bundle(staging / index_name, staging / data_name, keep)
            _move_into_place(staging, dest, index_name, data_name)
            state_file = _write_state_file(dest)
            fsync_path(dest.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise output_error(dest, exc) from None
    return written, state_file


def _move_into_place(staging: Path, dest: Path, index_name: str, data_name: str) -> None:
    """Replacing: remove the old index first, so that at no moment does an index name data that
    is not its own; then the data, then the new index; then old shards of another shard count."""
    final_index = dest.with_name(index_name)
    final_data = dest.with_name(data_name)
    old = _files_of(dest)
    if final_index in old:
        os.unlink(final_index)
    os.replace(staging / data_name, final_data)
    os.replace(staging / index_name, final_index)
    for stale in old:
        if stale not in (final_index, final_data) and stale.exists():
            os.unlink(stale)


def _write_state_file(dest: Path) -> str | None:
    """Without it tf.train.load_checkpoint(folder) finds nothing; an existing one is never
    touched. Returns the file written, if any."""
    state = dest.parent / STATE_FILE
    if state.exists():
        return None
    state.write_text(f'model_checkpoint_path: "{dest.name}"\nall_model_checkpoint_paths: "{dest.name}"\n', encoding="utf-8")
    return str(state)
