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
index last: the prefix never names a half-written checkpoint. A checkpoint is several files that
no single rename replaces together, so two slims into one folder take turns for that step (an
exclusive ``flock`` on the folder itself, which leaves no lock file behind): the index and the
data at the prefix always come from the same run. Nothing is written through a symbolic link:
files are moved in by ``rename`` (which replaces a link, never its target), and the
``checkpoint`` state file is only created where no file, and no link, has that name.

TF2 object-based checkpoints (``tf.train.Checkpoint``, with a ``_CHECKPOINTABLE_OBJECT_GRAPH``)
are refused: their object graph names every variable, optimizer slots included, so a copy
without the slots but with the old graph would no longer restore, and without the graph
``tf.train.Checkpoint.restore`` cannot read it at all.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tf2hf.engine.folding import fold
from tf2hf.engine.nonweights import classify
from tf2hf.errors import CheckpointFormatError, OutputError
from tf2hf.output.staging import aside, check_out, clean_leftovers, fsync_path, output_error
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tfckpt.bundle import BundleEntry, parse_entry
from tf2hf.tfckpt.resolve import data_shards_of
from tf2hf.sources import open_regular
from tf2hf.tfckpt.sstable import read_table
from tf2hf.tfckpt.writer import SourceTensor, WrittenBundle, write_bundle

STATE_FILE = "checkpoint"
OBJECT_GRAPH = b"_CHECKPOINTABLE_OBJECT_GRAPH"


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
    copied: list[str] = field(default_factory=list)  # config and vocabulary copied beside it
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
    check_out(out)
    with open_checkpoint(ckpt) as source:  # resolves the path and validates the index
        if source.index_path == source.prefix:  # an HDF5 weights file: no index, no slots
            raise CheckpointFormatError(
                f"{source.prefix}: an HDF5 weights file, not a TF checkpoint; slim removes optimizer slots from TF "
                "checkpoints, and Keras .h5 weights files hold none: convert it directly"
            )
        prefix = source.prefix
        index_path = source.index_path
        shard_paths = list(source.shard_paths)
    dest = _destination(out, prefix)
    _check_destination(dest, prefix, force)
    raw = _raw_entries(index_path)
    keep, dropped, dropped_names = _split(raw, shard_paths)
    bytes_before = sum(p.stat().st_size for p in [index_path, *shard_paths] if p.exists())
    written, state_file = _write(dest, keep, prefix, force)
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
        copied=_copy_companions(prefix.parent, dest.parent),
        seconds=time.perf_counter() - started,
    )


#: What comes with a checkpoint and is needed to convert it (every family's config and
#: vocabulary names): copied beside the slimmed one, so that it converts as the source does.
COMPANIONS = ("*config*.json", "vocab*.txt", "*.vocab", "*.model")


def _copy_companions(source_folder: Path, dest_folder: Path) -> list[str]:
    """Copy the config and vocabulary files beside the source into ``dest_folder``, never over a
    file (or link) already there; return the files copied."""
    if source_folder.resolve() == dest_folder.resolve():
        return []
    copied = []
    for pattern in COMPANIONS:
        for file in sorted(source_folder.glob(pattern)):
            target = dest_folder / file.name
            if not file.is_file() or file.is_symlink() or target.exists() or target.is_symlink():
                continue
            try:
                shutil.copyfile(file, target)
            except OSError as exc:
                raise output_error(target, exc) from None
            copied.append(str(target))
    return copied


def _files_of(prefix: Path) -> list[Path]:
    """Files that belong to ``prefix`` (its index and any data shard, whatever the shard count)."""
    index = prefix.with_name(prefix.name + ".index")
    return ([index] if index.exists() or index.is_symlink() else []) + data_shards_of(prefix)


def _destination(out: str | os.PathLike[str], source_prefix: Path) -> Path:
    """``--out`` is a prefix; an existing folder means "a prefix of the source's name in it"."""
    path = Path(os.path.abspath(Path(out).expanduser()))
    # "dir/" names a folder (made if missing), as cp and rsync read a trailing slash.
    if path.is_dir() or str(out).endswith(("/", os.sep)):
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
    if existing:
        _refuse_unless_slimmed(dest, existing)


def _refuse_unless_slimmed(dest: Path, existing: list[Path]) -> None:
    """--force replaces only what a previous slim wrote: a readable checkpoint with nothing left
    that slim drops. Anything else (the training run's checkpoint, with its optimizer slots, or
    files that are no checkpoint) may be the user's only copy."""
    index = dest.with_name(dest.name + ".index")
    try:
        names = [key.decode("utf-8", "replace") for key, _ in read_table(index.read_bytes())[1:]]
    except (OSError, ValueError, CheckpointFormatError):
        names = None
    droppable = [] if names is None else [n for n in names if classify(n) is not None]
    if names is None or droppable:
        what = (f"it holds {fold(droppable)[0]}{', …' if len(droppable) > 1 else ''}, which slim drops" if droppable
                else f"{existing[0].name} is no checkpoint index slim wrote")
        raise OutputError(f"{dest}: the checkpoint there is not a previous slim's output ({what}); choose another --out or remove it")


def _raw_entries(index_path: Path) -> list[tuple[bytes, BundleEntry]]:
    """(name, BundleEntry) of every key, refusing slices of partitioned variables."""
    with open_regular(index_path, CheckpointFormatError, "the index") as handle:
        entries = read_table(handle.read())
    raw = [(key, parse_entry(value)) for key, value in entries[1:]]
    if any(key == OBJECT_GRAPH for key, _ in raw):
        raise CheckpointFormatError(
            f"{index_path}: a TF2 object-based checkpoint (tf.train.Checkpoint: it has "
            "_CHECKPOINTABLE_OBJECT_GRAPH), which slim does not copy: its object graph names the "
            "optimizer slots, so without them it no longer restores; convert it with tf2hf "
            "convert directly, or drop the optimizer in TF and save again"
        )
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


def _write(dest: Path, keep: list[SourceTensor], source_prefix: Path, force: bool) -> tuple[WrittenBundle, str | None]:
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
            fsync_path(staging / index_name)
            fsync_path(staging / data_name)
            with _folder_lock(dest.parent):
                _check_destination(dest, source_prefix, force)  # another run may have finished meanwhile
                _move_into_place(staging, dest, index_name, data_name)
                state_file = _write_state_file(dest, staging)
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


class _folder_lock:
    """An exclusive ``flock`` on ``folder`` while files are moved into it (see the module's
    docstring); released when the block ends, or by the kernel when the process dies."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _write_state_file(dest: Path, staging: Path) -> str | None:
    """Without it tf.train.load_checkpoint(folder) finds nothing; an existing one is never
    touched, nor is a symbolic link of that name followed (even a dangling one: writing through
    it would create a file wherever it points). Written complete in the staging folder, then
    hard-linked into place, which fails if the name exists. Returns the file written, if any."""
    state = dest.parent / STATE_FILE
    if os.path.lexists(state):
        return None
    staged = staging / STATE_FILE
    staged.write_text(f'model_checkpoint_path: "{dest.name}"\nall_model_checkpoint_paths: "{dest.name}"\n', encoding="utf-8")
    fsync_path(staged)
    try:
        os.link(staged, state, follow_symlinks=False)
    except FileExistsError:
        return None  # appeared meanwhile: not ours to replace
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # No hard links on this file system: create it exclusively (O_EXCL never follows a link).
        fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(staged.read_bytes())
    return str(state)
