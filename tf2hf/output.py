"""The output folder: built aside, made durable, then renamed into place in one step.

A conversion writes into ``.<name>.tf2hf-partial-<pid>-<token>`` beside the destination. Only
when every file is written, fsync'd and verified is it renamed to the destination, so the
destination is either absent, the complete previous version, or the complete new one. With
``--force`` the previous version is first renamed aside and removed only after the new one is in
place. Leftovers of killed runs are removed by the next run on the same destination.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

from tf2hf.errors import OutputError

PARTIAL = ".tf2hf-partial-"
OLD = ".tf2hf-old-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if pid != os.getpid() and _pid_alive(pid):
            continue  # another conversion to the same place is running
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def output_error(dest: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"{dest}: no space left on the device; free some space or choose another --out")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{dest}: cannot write there ({exc.strerror}); choose a writable --out")
    return OutputError(f"{dest}: {exc.strerror or exc}; choose another --out")


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for directory in (root, root.parent):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Staging:
    """Context manager around the staging folder of one conversion."""

    def __init__(self, dest: Path, *, force: bool):
        self.dest = Path(dest).absolute()
        self.force = force
        self.path = self.dest.parent / f".{self.dest.name}{PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
        self.committed = False

    def check_destination(self) -> None:
        if self.dest.exists() and not self.force:
            raise OutputError(f"{self.dest}: already exists; choose another --out or pass --force to replace it")
        if self.dest.exists() and not self.dest.is_dir():
            raise OutputError(f"{self.dest}: exists and is not a folder; choose another --out")

    def __enter__(self) -> "Staging":
        self.check_destination()
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            clean_leftovers(self.dest)
            self.path.mkdir()
        except OSError as exc:
            raise output_error(self.dest, exc) from None
        return self

    def commit(self) -> None:
        """Make the staged folder the destination, atomically."""
        try:
            _fsync_tree(self.path)
            old = None
            if self.dest.exists():
                self.check_destination()
                old = self.dest.parent / f".{self.dest.name}{OLD}{os.getpid()}-{secrets.token_hex(4)}"
                os.rename(self.dest, old)
            try:
                os.rename(self.path, self.dest)
            except OSError:
                if old is not None:
                    os.rename(old, self.dest)
                raise
            self.committed = True
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            raise output_error(self.dest, exc) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
