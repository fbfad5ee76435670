"""What an executor reports while a batch runs, and how a job's progress reaches it.

A job (:func:`tf2hf.batch.job.run_entry`) reports through :func:`emit` as plain tuples,
``("start", key)`` and ``("progress", key, done, total, phase)``, because they must cross a
process pipe or a Dask event topic. Each executor installs a sink that carries them to the batch
process and turns them back into :class:`Started` and :class:`Progress`; it adds one
:class:`Finished` per entry with the result dict.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Started:
    key: str


@dataclass(frozen=True)
class Progress:
    """Bytes of the converted file written so far; ``phase`` says what the entry is doing."""

    key: str
    done: int
    total: int
    phase: str


@dataclass(frozen=True)
class Finished:
    key: str
    result: dict[str, Any]


Event = Started | Progress | Finished

_SINK: Callable[[tuple], None] | None = None
_LOCAL = threading.local()


def set_progress_sink(sink: Callable[[tuple], None] | None) -> None:
    """Where :func:`emit` sends this process's progress messages (set by executors whose
    workers run one job at a time, for the whole life of the worker)."""
    global _SINK
    _SINK = sink


@contextmanager
def progress_sink(sink: Callable[[tuple], None]) -> Iterator[None]:
    """Send this thread's progress messages to ``sink`` while the block runs (for executors
    whose workers run several jobs at once, each reporting to its own batch)."""
    previous = getattr(_LOCAL, "sink", None)
    _LOCAL.sink = sink
    try:
        yield
    finally:
        _LOCAL.sink = previous


def emit(message: tuple) -> None:
    """Send a progress message to this thread's sink, else this process's, else nowhere."""
    sink = getattr(_LOCAL, "sink", None) or _SINK
    if sink is None:
        return
    try:
        sink(message)
    except Exception:  # the display is best-effort: never fail a conversion for it
        pass
