"""Finding and loading the files that come with a checkpoint: its config and vocabulary; and the
sha256 of files (:mod:`tf2hf.provenance` says which files are hashed, and why)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path
from typing import BinaryIO, Sequence

from tf2hf.errors import ConfigError, Tf2hfError

MAX_CONFIG_BYTES = 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words (from its ``st_mode``)."""
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def not_regular(path: Path, mode: int, error: type[Tf2hfError], what: str) -> Tf2hfError:
    """The error for ``path`` being a pipe, a device, a folder …: reading one could block
    forever (a FIFO with no writer) or never end (``/dev/zero``), so nothing of it is read."""
    return error(
        f"{path}: {what} is {file_kind(mode)}, not a regular file (reading a pipe or a device "
        "could block or never end); put the real file in its place"
    )


def open_regular(path: str | os.PathLike[str], error: type[Tf2hfError] = Tf2hfError, what: str = "this", buffering: int = -1) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (a symbolic link to one counts).

    Opened non-blocking and checked on the open descriptor, not by a ``stat`` before: opening a
    FIFO blocks until someone writes to it, and the name may be swapped between a check and an
    open. ``O_NONBLOCK`` does nothing to a regular file. Raises ``OSError`` as ``open`` does
    (e.g. ``FileNotFoundError``), and ``error`` for anything that is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(Path(path), mode, error, what)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def find_beside(folder: Path, patterns: Sequence[str]) -> tuple[Path | None, list[Path]]:
    """The first pattern that matches exactly one file wins; otherwise return all candidates."""
    candidates: list[Path] = []
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file())
        if len(hits) == 1:
            return hits[0], hits
        candidates.extend(h for h in hits if h not in candidates)
    return None, candidates


def locate_config(folder: Path, patterns: Sequence[str], given: str | os.PathLike[str] | None = None) -> tuple[Path | None, list[Path]]:
    """The config to read: ``given``, or else the one file beside the checkpoint that matches;
    None when there is none or several, with the files that matched."""
    if given is not None:
        return Path(given), []
    return find_beside(folder, patterns)


def find_config(folder: Path, patterns: Sequence[str], given: str | os.PathLike[str] | None = None) -> Path:
    """:func:`locate_config`, for a conversion: no single config is an error."""
    found, candidates = locate_config(folder, patterns, given)
    if found is not None:
        return found
    if candidates:
        raise ConfigError(f"{folder}: several configs found ({', '.join(p.name for p in candidates)}); pass one with --config")
    raise ConfigError(f"{folder}: no config JSON found beside the checkpoint; pass it with --config")


def read_limited(path: Path, limit: int, error: type[Tf2hfError], what: str, option: str) -> bytes:
    """The bytes of a small side file (config, vocabulary), refusing absurd sizes before reading."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise error(f"{path}: {size} bytes is too large for {what} (limit {limit}); pass the right {option}")
        with open_regular(path, error, what) as handle:
            data = handle.read(limit + 1)  # bounded: a growing file has no honest size
        if len(data) > limit:
            raise error(f"{path}: more than {limit} bytes, too large for {what}; pass the right {option}")
        return data
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror}); pass {option} with a readable file") from None


def load_config(path: Path) -> dict:
    path = Path(path)
    raw = read_limited(path, MAX_CONFIG_BYTES, ConfigError, "a model config", "--config")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); pass the model's JSON config") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a model config; pass the model's JSON config") from None
    except ValueError:  # Python refuses to read an int of more digits than sys.get_int_max_str_digits()
        raise ConfigError(f"{path}: holds a number of thousands of digits, which no model setting has; fix the config") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a JSON object, not {type(data).__name__}; pass the model's JSON config")
    if _depth(data) > MAX_CONFIG_DEPTH:
        raise ConfigError(f"{path}: nested more than {MAX_CONFIG_DEPTH} levels deep, too deep to be a model config; pass the model's JSON config")
    return data


# A model config is flat but for a few small maps (id2label, task_specific_params...).
MAX_CONFIG_DEPTH = 16


def _depth(value) -> int:
    """How deeply lists and objects nest in ``value``, without recursion (no RecursionError)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


# Digests already computed by this process, by file identity: ``tf2hf batch`` hashes the files
# of a checkpoint for its fingerprint, and the model card of the same conversion then needs them
# again. The change time is in the key: no write to a file leaves it as it was.
_DIGESTS: dict[tuple[int, ...], str] = {}


def sha256(path: Path, chunk: int = 1 << 20, cancel: threading.Event | None = None) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte pieces into one reused buffer.

    Raises :class:`HashCancelled` when ``cancel`` is set before the end, and a
    :class:`~tf2hf.errors.Tf2hfError` for a pipe or a device (which could block or never end).
    """
    with open_regular(path, Tf2hfError, "a source file", buffering=0) as handle:
        info = os.fstat(handle.fileno())
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        if key in _DIGESTS:
            return _DIGESTS[key]
        digest = hashlib.sha256()
        buffer = bytearray(chunk)
        view = memoryview(buffer)
        while count := handle.readinto(buffer):
            if cancel is not None and cancel.is_set():
                raise HashCancelled(str(path))
            digest.update(view[:count])  # hashlib lets other threads run meanwhile
    _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


class HashCancelled(Exception):
    pass


class BackgroundHashes:
    """sha256 of ``paths``, computed on a thread beside the conversion.

    Used only when full hashes of the data shards are asked for (``hash_sources``): that reads
    every byte of them, optimizer slots included (4 GB for BERT-large with Adam slots). hashlib
    releases the GIL on large buffers, so on a second core it costs little wall time when the
    files are cached, and all of their reading when they are not. :meth:`result` waits and
    returns ``(path, digest)`` pairs (re-raising the thread's error); :meth:`cancel` stops it.
    """

    def __init__(self, paths: Sequence[Path]):
        self.paths = [Path(p) for p in paths]
        self._cancel = threading.Event()
        self._digests: list[tuple[str, str]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tf2hf-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for path in self.paths:
                self._digests.append((str(path), sha256(path, cancel=self._cancel)))
        except HashCancelled:
            pass
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> list[tuple[str, str]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return list(self._digests)

    def cancel(self) -> None:
        self._cancel.set()
