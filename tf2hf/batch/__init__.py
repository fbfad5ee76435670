"""Many checkpoints at once: ``tf2hf batch`` and :func:`convert_many`.

The parts, each importing only those below it:

- :mod:`~tf2hf.batch.zoo` — finding a zoo's checkpoints, or reading a manifest;
- :mod:`~tf2hf.batch.results` — statuses, :class:`EntryResult`, :class:`BatchReport`, the report file;
- :mod:`~tf2hf.batch.events` — :class:`Started` / :class:`Progress` / :class:`Finished`, and how a job reports progress;
- :mod:`~tf2hf.batch.markers` — source fingerprints and the ``.tf2hf-source.json`` marker (what is up to date);
- :mod:`~tf2hf.batch.job` — the per-entry job a worker runs;
- :mod:`~tf2hf.batch.executor` — the interface of where jobs run;
- :mod:`~tf2hf.batch.local_pool` — the local process pool, with crash isolation; its fork server
  imports :mod:`~tf2hf.batch.warm_imports`;
- :mod:`~tf2hf.batch.dask_executor` and :mod:`~tf2hf.batch.dask_worker` — the same jobs on a
  Dask cluster (optional extra);
- :mod:`~tf2hf.batch.run` — :func:`convert_many` and :func:`run_batch`;
- :mod:`~tf2hf.batch.display` — what the command shows.

The names below are imported on first use, so that importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CONVERTED": "results", "SKIPPED": "results", "FAILED": "results",
    "EntryResult": "results", "BatchReport": "results", "write_report": "results",
    "Started": "events", "Progress": "events", "Finished": "events", "Event": "events",
    "MARKER": "markers",
    "Executor": "executor",
    "LocalExecutor": "local_pool",
    "convert_many": "run", "run_batch": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
