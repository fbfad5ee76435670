"""What a Dask worker runs for one entry of ``tf2hf batch --executor dask``: :func:`run_on_worker`.

The task checks first that the worker sees the checkpoint and the output root at the same paths as
the batch process (shared storage), then runs the entry's job with its progress messages sent to
the scheduler as Dask events on the batch's topic. The batch side is
:mod:`tf2hf.batch.dask_executor`; this module is kept apart from it because it is what the
workers import to unpickle the task.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from tf2hf.batch.events import progress_sink
from tf2hf.batch.results import failed_result

SHARED_STORAGE = "workers must see the zoo and the output root at the same paths"


def source_exists(source: str) -> bool:
    """A checkpoint path as entries give it: a folder, a file, or a prefix (``model.ckpt-1``)."""
    return os.path.exists(source) or os.path.exists(f"{source}.index")


def not_visible(payload: dict[str, Any], probe: str | None, source_seen: bool) -> str | None:
    """The path this worker does not see as the batch does, or None.

    ``source_seen``: whether the batch process sees the checkpoint (an entry whose checkpoint is
    missing everywhere fails in its job, with the usual message). ``probe``: the name of the file
    the batch wrote into the output root, None when there is none to look for.
    """
    if source_seen and not source_exists(payload["source"]):
        return payload["source"]
    if probe is not None and not os.path.isfile(os.path.join(payload["out_root"], probe)):
        return payload["out_root"]
    return None


def run_on_worker(job: Callable[[dict[str, Any]], dict[str, Any]], payload: dict[str, Any], topic: str,
                  probe: str | None, source_seen: bool) -> dict[str, Any]:
    """The task of one entry: check the shared storage, then run ``job`` with its progress
    messages sent to ``topic``."""
    from distributed import get_worker

    worker = get_worker()
    missing = not_visible(payload, probe, source_seen)
    if missing is not None:
        reason = f"{missing}: is not visible on worker {worker.address}; {SHARED_STORAGE} (shared storage)"
        return failed_result(payload["key"], payload, reason, "ClusterError")

    def sink(message: tuple) -> None:
        worker.log_event(topic, list(message))

    with progress_sink(sink):
        return job(payload)
