"""The interface between a batch and where its jobs run.

:mod:`tf2hf.batch.local_pool` runs the jobs in a process pool on this machine,
:mod:`tf2hf.batch.dask_executor` as tasks on a Dask cluster; :func:`tf2hf.batch.run.convert_many`
also takes any other implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator

from tf2hf.batch.events import Event


class Executor(ABC):
    """Where per-entry jobs run.

    ``submit(key, payload)`` queues a job (``job(payload) -> result dict``, a top-level function
    such as :func:`tf2hf.batch.job.run_entry`); ``events()`` yields :class:`Started`,
    :class:`Progress` and :class:`Finished` events until every submitted job has finished, each
    exactly one ``Finished``. A job that cannot run (its worker died) still finishes, as ``failed``.
    """

    workers: int = 1

    @abstractmethod
    def submit(self, key: str, payload: dict[str, Any]) -> None: ...

    @abstractmethod
    def events(self) -> Iterator[Event]: ...

    def close(self) -> None:
        """Stop: cancel what has not started, wait for what runs."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
