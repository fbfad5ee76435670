"""Turn whatever path a user passes into a checkpoint prefix.

A TF V2 checkpoint is a prefix ``P`` with ``P.index`` and ``P.data-0000k-of-0000N`` beside it
(and often ``P.meta``, which is not needed). Users pass the folder, the prefix, any of those
files, a SavedModel export folder (its ``variables/variables`` is such a checkpoint), or the
folder's ``checkpoint`` state file, whose paths are frequently absolute paths of
the machine that trained the model. Every form is accepted; when the answer is not clear the
error lists what the folder does hold.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import NoReturn

from tf2hf.sources import not_regular
from tf2hf.tfckpt.sstable import FOOTER_SIZE, has_table_magic
from tf2hf.errors import (
    AmbiguousCheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    NotV2CheckpointError,
)

STATE_FILE = "checkpoint"
_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_LINE = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"\s*$')
_STATE_MAX_BYTES = 1 << 20
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_MAX_LISTED = 10
_MAX_SCANNED = 1000
_RESAVE_V2 = (
    "re-save it in TF's V2 format with "
    "tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V2)"
)


def resolve_prefix(path: str | os.PathLike[str]) -> Path:
    """Return the absolute prefix ``P`` of the checkpoint that ``path`` designates.

    ``P.index`` is guaranteed to exist; nothing else is checked (the data shards may be absent,
    which still allows planning a conversion).
    """
    given = Path(os.path.abspath(Path(path).expanduser()))
    try:
        return _resolve(given)
    except OSError as exc:  # pathlib's is_dir/is_file raise for names the system refuses to look up
        if exc.errno == errno.ENAMETOOLONG:
            raise CheckpointNotFoundError(
                f"{given}: the path is too long for this system to look up ({len(os.fsencode(str(given)))} "
                "bytes; the usual limits are 4096 for a path and 255 for each name in it); pass the checkpoint's real folder or prefix"
            ) from None
        raise CheckpointNotFoundError(f"{given}: cannot be looked up ({exc.strerror or exc}); pass the checkpoint folder or prefix") from None


def _resolve(given: Path) -> Path:
    if given.is_dir():
        return _from_folder(given, given / STATE_FILE)
    if given.is_file() and given.name == STATE_FILE and _state_target(given) is not None:
        return _from_folder(given.parent, given)

    prefix = _strip_suffix(given)
    if _index_of(prefix).is_file():
        return prefix
    _refuse_unusable_index(_index_of(prefix))
    if given.exists():
        _refuse_file_without_index(given, prefix)
    _refuse_missing_prefix(given, prefix)


def _refuse_unusable_index(index: Path) -> None:
    """An ``.index`` that exists but cannot be read as one: a FIFO, a device, a folder, or a
    symbolic link to nothing. Saying "no .index beside it" would send the user looking for a
    file that is right there."""
    try:
        mode = os.stat(index).st_mode
    except FileNotFoundError:
        if os.path.islink(index):
            raise CheckpointNotFoundError(
                f"{index}: a symbolic link to {os.readlink(index)}, which does not exist; "
                "copy the .index file itself here"
            ) from None
        return
    except OSError as exc:
        raise CheckpointNotFoundError(f"{index}: cannot read the index ({exc.strerror}); check the file") from None
    if not stat.S_ISREG(mode):
        raise not_regular(index, mode, CheckpointFormatError, "the index")


def _saved_model_variables(folder: Path) -> Path | None:
    """A SavedModel export (``export/<timestamp>/``: ``saved_model.pb`` + ``variables/``) keeps
    its weights as an ordinary V2 checkpoint with the prefix ``variables/variables``."""
    prefix = folder / "variables" / "variables"
    has_graph = (folder / "saved_model.pb").is_file() or (folder / "saved_model.pbtxt").is_file()
    if has_graph and _index_of(prefix).is_file():
        return prefix
    return None


def _refuse_file_without_index(given: Path, prefix: Path) -> NoReturn:
    """``given`` exists but no ``.index`` belongs to it: say what it is instead."""
    _raise_if_v1(given)
    if prefix != given:
        _raise_if_v1(prefix)
        raise CheckpointNotFoundError(
            f"{given}: no {_index_of(prefix).name} beside it; "
            f"copy the .index file into {given.parent}"
        )
    raise CheckpointFormatError(
        f"{given}: not a TF checkpoint (expected a folder, a checkpoint prefix, or a "
        f".index, .data-*, .meta or {STATE_FILE} file); pass the checkpoint folder or prefix"
    )


def _refuse_missing_prefix(given: Path, prefix: Path) -> NoReturn:
    """Nothing exists at ``given``: list what its folder holds (often a different step)."""
    folder = given.parent
    if not folder.is_dir():
        raise CheckpointNotFoundError(
            f"{given}: no such file or directory; pass a checkpoint folder or prefix"
        )
    _raise_if_v1_sharded(prefix)
    if data_shards_of(prefix):
        raise CheckpointNotFoundError(
            f"{given}: data shards exist but {_index_of(prefix).name} is missing; "
            f"copy the .index file into {folder}"
        )
    found = _prefixes_in(folder)
    if found:
        raise CheckpointNotFoundError(
            f"{given}: no such checkpoint; {folder} has {_listing(found)}; pass one of them"
        )
    raise CheckpointNotFoundError(
        f"{given}: no such checkpoint, and {folder} has no *.index file; "
        "pass the prefix of an existing checkpoint"
    )


def _from_folder(folder: Path, state_file: Path) -> Path:
    """Pick the checkpoint of a folder: the state file's choice if usable, else the only one."""
    target = _state_target(state_file) if state_file.is_file() else None
    if target is not None:
        chosen = _usable_state_target(folder, target)
        if chosen is not None:
            return chosen
    found = _prefixes_in(folder)
    if len(found) == 1:
        return folder / found[0]
    if len(found) > 1:
        raise AmbiguousCheckpointError(
            f"{folder}: {len(found)} checkpoints found ({_listing(found)}); "
            f"pass one of them explicitly, e.g. {folder / found[-1]}"
        )
    exported = _saved_model_variables(folder)
    if exported is not None:
        return exported
    for index in _special_indexes(folder):
        _refuse_unusable_index(index)
    if folder.name.endswith(".index") and folder.name != ".index":
        raise CheckpointFormatError(
            f"{folder}: a folder, not an index file; pass the folder that holds the checkpoint "
            "or its prefix"
        )
    for candidate in _v1_candidates(folder, target):
        _raise_if_v1(candidate)
    orphan = _first_orphan_shard(folder)
    if orphan is not None:
        raise CheckpointNotFoundError(
            f"{folder}: no checkpoint found ({orphan.name} has no "
            f"{_index_of(_strip_suffix(orphan)).name} beside it); "
            "copy the .index file into this folder"
        )
    raise CheckpointNotFoundError(
        f"{folder}: no checkpoint found (no *.index file); "
        f"pass the checkpoint prefix, e.g. {folder / 'model.ckpt-1000'}"
    )


def _usable_state_target(folder: Path, target: str) -> Path | None:
    """The prefix the state file names, if its index exists as written or in ``folder``.

    The path is often absolute on the training machine (even a Windows or ``gs://`` path), so
    when it does not exist its last component is looked up in ``folder`` instead.
    """
    if target:
        named = Path(target)
        candidate = named if named.is_absolute() else folder / named
        candidate = Path(os.path.abspath(candidate))
        # "/" or "//" names no file at all (Path("/").name is empty): fall back as for any
        # unusable state file.
        if candidate.name and _index_of(candidate).is_file():
            return candidate
        basename = re.split(r"[/\\]", target)[-1]
        if basename and basename not in (".", ".."):
            local = folder / basename
            if _index_of(local).is_file():
                return local
    return None


def _state_target(state_file: Path) -> str | None:
    """``model_checkpoint_path`` of a ``checkpoint`` state file, or None if it is not one."""
    try:
        with state_file.open("rb") as handle:
            raw = handle.read(_STATE_MAX_BYTES + 1)
    except OSError:
        return None
    if len(raw) > _STATE_MAX_BYTES:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for line in text.splitlines():
        match = _STATE_LINE.match(line)
        if match:
            return _unescape_text_proto(match.group(1))
    return None


def _unescape_text_proto(value: str) -> str:
    r"""Undo protobuf text-format string escapes (``\\``, ``\"``, ``\n``, octal ``\346``...)."""
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char != "\\" or i + 1 == len(value):
            out += char.encode("utf-8")
            i += 1
            continue
        nxt = value[i + 1]
        octal = re.match(r"[0-7]{1,3}", value[i + 1 : i + 4])
        hexa = re.match(r"x([0-9a-fA-F]{1,2})", value[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + len(octal.group(0))
        elif hexa:
            out.append(int(hexa.group(1), 16))
            i += 1 + len(hexa.group(0))
        else:
            out += _SIMPLE_ESCAPES.get(nxt, nxt).encode("utf-8")
            i += 2
    return out.decode("utf-8", errors="replace")


def _strip_suffix(path: Path) -> Path:
    """``P.index``, ``P.meta`` and ``P.data-0000k-of-0000N`` all name prefix ``P``."""
    name = path.name
    for suffix in (".index", ".meta"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return path.with_name(name[: -len(suffix)])
    match = _DATA_SUFFIX.search(name)
    if match and match.start() > 0:
        return path.with_name(name[: match.start()])
    return path


def _index_of(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def _prefixes_in(folder: Path) -> list[str]:
    """Names of the prefixes in ``folder`` that have an index, sorted."""
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.is_file()]
    except OSError:
        return []
    return sorted(n[: -len(".index")] for n in names if n.endswith(".index") and n != ".index")


def _special_indexes(folder: Path) -> list[Path]:
    """``*.index`` entries of ``folder`` that are not regular files (at most a few looked at)."""
    try:
        entries = [entry for _, entry in zip(range(_MAX_SCANNED), os.scandir(folder))]
    except OSError:
        return []
    return sorted(Path(e.path) for e in entries if e.name.endswith(".index") and e.name != ".index" and not e.is_file())


def data_shards_of(prefix: Path) -> list[Path]:
    """Every data shard beside ``prefix``, whatever shard count its name says (sorted)."""
    return sorted(prefix.parent.glob(f"{_glob_escape(prefix.name)}.data-?????-of-?????"))


def _first_orphan_shard(folder: Path) -> Path | None:
    shards = sorted(p for p in folder.glob("*.data-?????-of-?????") if p.is_file())
    return shards[0] if shards else None


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f" and {len(names) - _MAX_LISTED} more"
    return shown


def _v1_candidates(folder: Path, state_target: str | None) -> list[Path]:
    """Files that could be a V1 checkpoint: the state file's target, then the folder's files."""
    candidates: list[Path] = []
    if state_target:
        named = Path(state_target)
        candidates.append(named if named.is_absolute() else folder / named)
        candidates.append(folder / re.split(r"[/\\]", state_target)[-1])
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        entries = []
    for entry in entries[:_MAX_SCANNED]:
        if entry.name != STATE_FILE and not entry.name.endswith(".meta"):
            candidates.append(Path(entry.path))
    return candidates


def _raise_if_v1(path: Path) -> None:
    """Raise NotV2CheckpointError if ``path`` is a single-file (V1) table checkpoint."""
    if _is_table_file(path):
        raise NotV2CheckpointError(
            f"{path}: TF V1 checkpoint (a single table file with no .index beside it), "
            f"which tf2hf does not read; {_RESAVE_V2}"
        )


def _raise_if_v1_sharded(prefix: Path) -> None:
    """A sharded V1 save writes ``P-00000-of-0000N`` files and nothing named ``P``."""
    for shard in sorted(prefix.parent.glob(f"{_glob_escape(prefix.name)}-?????-of-?????")):
        _raise_if_v1(shard)


def _is_table_file(path: Path) -> bool:
    """True when ``path`` is a regular file ending with the LevelDB table magic number."""
    try:
        if not path.is_file():
            return False
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() < FOOTER_SIZE:
                return False
            handle.seek(-8, os.SEEK_END)
            return has_table_magic(handle.read(8))
    except OSError:
        return False
