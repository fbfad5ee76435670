"""Getting the Dask cluster a batch runs on: Dask installed or not, a ``LocalCluster`` as tf2hf
configures it, or a connection to a running scheduler.

Dask is an optional extra (``pip install 'tf2hf[cluster]'``): it is imported only by the
functions here and by the executor's tasks, never when this module is imported.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tf2hf.errors import ClusterError, one_line

INSTALL = "pip install 'tf2hf[cluster]'"


def require_distributed():
    """Import ``distributed``, or say how to install it."""
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"the dask executor needs Dask's distributed scheduler, which is not installed; {INSTALL}") from None
    return distributed


def local_cluster(workers: int, *, allowed_failures: int = 2):
    """A ``LocalCluster`` as tf2hf runs conversions on it: ``workers`` processes of one thread,
    each given one task at a time, a task run again ``allowed_failures`` times after its worker
    died, logs silenced (the batch reports every failure itself)."""
    distributed = require_distributed()
    import dask

    # One task at a time per worker thread: a worker's death then counts against the task it
    # was running only, not against tasks queued behind it.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        return distributed.LocalCluster(
            n_workers=max(1, int(workers)),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
            # No dashboard; the scheduler's HTTP endpoints (health, metrics) on any free local port,
            # not on 8787, which another cluster on this machine may hold.
            scheduler_kwargs={"allowed_failures": allowed_failures, "dashboard_address": "127.0.0.1:0"},
        )


def connect(scheduler: str | None, client: Any, workers: int | None, *, retries: int, timeout: float) -> tuple[Any, Any, str]:
    """The client to submit to, the ``LocalCluster`` made for it (None when the cluster is not
    ours to stop) and the scheduler's address as messages name it.

    ``client`` is used as it is; else a new client connects to ``scheduler``; else a
    ``LocalCluster`` of ``workers`` processes is started.
    """
    distributed = require_distributed()
    if client is not None:
        return client, None, getattr(getattr(client, "scheduler", None), "address", None) or "of the client"
    if scheduler is not None:
        try:
            return distributed.Client(scheduler, timeout=timeout, set_as_default=False), None, scheduler
        except (OSError, ValueError, TypeError) as exc:
            raise ClusterError(
                f"{scheduler}: cannot reach the Dask scheduler ({one_line(str(exc))}); "
                "start one with 'dask scheduler', or check the --scheduler address"
            ) from None
    cluster = local_cluster(workers or os.cpu_count() or 1, allowed_failures=retries)
    return distributed.Client(cluster, set_as_default=False), cluster, cluster.scheduler_address
