"""The output folder: built aside, made durable, then renamed into place in one step.

A conversion writes into ``.<name>.tf2hf-partial-<pid>-<token>`` beside the destination. Only
when every file is written, fsync'd and verified is it renamed to the destination, so the
destination is either absent, the complete previous version, or the complete new one. With
``--force`` the two folders are swapped in one step (Linux ``renameat2(RENAME_EXCHANGE)``) and
the previous version is removed afterwards; where the system cannot swap, the previous version is
renamed aside first and put back if the run dies before the new one is in place. Leftovers of
killed runs are removed (or, for a previous version, restored) by the next run on the same
destination.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import secrets
import shutil
from pathlib import Path

from tf2hf.errors import OutputError

PARTIAL = ".tf2hf-partial-"
OLD = ".tf2hf-old-"

# What makes an existing folder one that --force may replace: tf2hf's own batch marker, the
# first lines of the model card output/model_card.py writes, or a transformers model folder
# (config.json beside weights). Anything else may be the user's, and is never removed.
MARKER = ".tf2hf-source.json"
CARD_HEAD = 2048  # the front matter's length, with room to spare
CARD_TAGS = (b"\n- tf2hf\n", b"\ntags: [tf2hf,")  # the card's tag, as a YAML list (now) or inline (earlier versions)
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "model.safetensors.index.json", "pytorch_model.bin.index.json")

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not): a staging folder named after it is in use."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that died but was never reaped still answers kill(pid, 0).

    Orphans (e.g. the workers of a killed ``tf2hf batch``) are reaped by PID 1, and in
    containers PID 1 often reaps nothing, so their staging folders must count as dead.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False  # no /proc (not Linux), or it went away: not known to be a zombie
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


def _leftovers(dest: Path) -> list[Path]:
    try:
        return [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}{PARTIAL}") or p.name.startswith(f".{dest.name}{OLD}")]
    except OSError:
        return []


def clean_leftovers(dest: Path) -> list[Path]:
    """Remove staging folders of dead runs for ``dest``; return what was removed."""
    removed = []
    for path in _leftovers(dest):
        try:
            pid = int(path.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and pid_alive(pid):
            continue  # another conversion to the same place is running
        if path.name.startswith(f".{dest.name}{OLD}") and not os.path.lexists(dest):
            # That run died between moving the previous version aside and moving the new one
            # in: the previous version is still the destination's content, so put it back.
            try:
                os.rename(path, dest)
                continue
            except OSError:
                pass
        _remove(path)
        removed.append(path)
    return removed


def _remove(path: Path) -> None:
    if os.path.islink(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _libc_renameat2():
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return None  # not Linux/glibc
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Linux ``renameat2``: True when done, False where the system or file system lacks it."""
    func = _libc_renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def check_out(out: str | os.PathLike[str] | None, option: str = "--out") -> None:
    """An empty or blank ``--out`` is refused: as a path it means the current folder (or a folder
    named by spaces), and with --force that would replace the working directory."""
    if out is not None and not os.fspath(out).strip():
        raise OutputError(f"{option} is {os.fspath(out)!r}, which names no folder (an empty path means the current one); pass the output folder")


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` tf2hf may not replace: nothing when it is empty or holds a previous
    conversion (see :data:`MARKER`), else its entries (folders with a trailing ``/``), sorted."""
    entries = sorted(os.listdir(folder))
    names = set(entries)
    if not entries or MARKER in names or (_is_file(folder / "config.json") and any(_is_file(folder / w) for w in WEIGHTS)):
        return []
    if _is_card(folder / "README.md"):
        return []
    return [name + ("/" if os.path.isdir(folder / name) and not os.path.islink(folder / name) else "") for name in entries]


def _is_card(path: Path) -> bool:
    """A README.md that is tf2hf's model card: YAML front matter with the tf2hf tag."""
    try:
        with open(path, "rb") as card:
            head = card.read(CARD_HEAD) if _is_file(path) else b""
    except OSError:
        return False
    front = head.split(b"\n---", 1)[0] + b"\n"
    return head.startswith(b"---\n") and b"\nlibrary_name: transformers\n" in front and any(tag in front for tag in CARD_TAGS)


def _is_file(path: Path) -> bool:
    return os.path.isfile(path) and not os.path.islink(path)


def refuse_foreign(folder: Path) -> None:
    """Raise unless ``folder`` is one --force may replace (:func:`foreign_entries`)."""
    try:
        found = foreign_entries(folder)
    except OSError as exc:
        raise output_error(folder, exc) from None
    if found:
        shown = ", ".join(found[:3]) + (", …" if len(found) > 3 else "")
        what = "file" if len(found) == 1 else "files"
        raise OutputError(f"{folder}: holds {len(found)} {what} that tf2hf did not write ({shown}); choose another --out or remove them")


def output_error(dest: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"{dest}: no space left on the device; free some space or choose another --out")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{dest}: cannot write there ({exc.strerror}); choose a writable --out")
    if exc.errno == errno.ENAMETOOLONG:
        return _name_too_long(dest)
    return OutputError(f"{dest}: {exc.strerror or exc}; choose another --out")


def _name_too_long(dest: Path) -> OutputError:
    """A name the system takes on its own may still be too long once the staging folder beside
    it is named after it (``.<name>.tf2hf-partial-<pid>-<token>``, about 32 bytes more)."""
    name_max = 255  # NAME_MAX of every common Linux, macOS and Windows file system
    room = name_max - len(os.fsencode(aside(dest).name)) + len(os.fsencode(dest.name))
    size = len(os.fsencode(dest.name))
    if size > room:
        return OutputError(
            f"{dest}: the name is {size} bytes; tf2hf builds the output in a folder beside it named "
            f"after it with {name_max - room} bytes more, and a name may have at most {name_max}: "
            f"choose a --out name of at most {room} bytes"
        )
    return OutputError(f"{dest}: the path is too long for this system ({len(os.fsencode(str(dest)))} bytes); choose a shorter --out")


def fsync_path(path: str | Path) -> None:
    """fsync a file or a folder by its path (a folder's fsync makes its entries durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Every file's data and every folder's entries, so the rename publishes complete files."""
    for folder, _subfolders, files in os.walk(root):
        for name in files:
            fsync_path(os.path.join(folder, name))
        fsync_path(folder)


def aside(dest: Path, kind: str = PARTIAL) -> Path:
    """A new name beside ``dest`` for a staging folder (``kind`` PARTIAL) or a previous version
    moved out of the way (OLD). The pid in it tells :func:`clean_leftovers` whether its run is
    still alive; the token keeps two staging folders of one process apart."""
    return dest.parent / f".{dest.name}{kind}{os.getpid()}-{secrets.token_hex(4)}"


class Staging:
    """Context manager around the staging folder of one conversion."""

    def __init__(self, dest: Path, *, force: bool):
        self.dest = Path(os.path.abspath(dest))  # "out/.." names its parent, not "..", and so on
        self.force = force
        self.path = aside(self.dest)
        self.committed = False
        self._created: list[Path] = []  # parent folders this run made, deepest first

    def check_destination(self) -> None:
        if os.path.lexists(self.dest) and not self.force:
            raise OutputError(f"{self.dest}: already exists; choose another --out or pass --force to replace it")
        if os.path.lexists(self.dest) and not self.dest.is_dir():
            raise OutputError(f"{self.dest}: exists and is not a folder; choose another --out")
        if os.path.lexists(self.dest):
            refuse_foreign(self.dest)  # --force replaces a previous conversion, never the user's files

    def __enter__(self) -> "Staging":
        self.check_destination()
        try:
            parent = self.dest.parent
            while not parent.exists() and parent != parent.parent:
                self._created.append(parent)
                parent = parent.parent
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            clean_leftovers(self.dest)
            self.check_destination()  # a restored previous version counts
            self.path.mkdir()
        except OSError as exc:
            self.__exit__(None, None, None)
            raise output_error(self.dest, exc) from None
        return self

    def commit(self) -> None:
        """Make the staged folder the destination, atomically."""
        previous = None
        try:
            _fsync_tree(self.path)
            if os.path.lexists(self.dest):
                self.check_destination()
                previous = self._replace()
            elif not _renameat2(self.path, self.dest, _RENAME_NOREPLACE):
                os.rename(self.path, self.dest)
            self.committed = True
        except OSError as exc:
            if exc.errno == errno.EEXIST:  # appeared while converting, and no --force
                raise OutputError(f"{self.dest}: already exists; choose another --out or pass --force to replace it") from None
            raise output_error(self.dest, exc) from None
        try:
            fsync_path(self.dest.parent)  # make the rename itself durable
        except OSError:
            pass  # the folder is in place and complete; only its durability is not confirmed
        if previous is not None:
            _remove(previous)

    def _replace(self) -> Path:
        """Put the staged folder at the destination; return where the previous version went."""
        if _renameat2(self.path, self.dest, _RENAME_EXCHANGE):
            return self.path  # swapped in one step: the staging name now holds the old folder
        old = aside(self.dest, OLD)
        os.rename(self.dest, old)
        try:
            os.rename(self.path, self.dest)
        except OSError:
            os.rename(old, self.dest)
            raise
        return old

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
            for folder in self._created:  # leave no empty parents behind either
                try:
                    folder.rmdir()
                except OSError:
                    break
