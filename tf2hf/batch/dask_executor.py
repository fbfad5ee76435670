"""Running the jobs of ``tf2hf batch`` on a Dask cluster (``--executor dask``).

Each entry becomes one task, :func:`tf2hf.batch.dask_worker.run_on_worker`, which runs the same
job as the local process pool (:func:`tf2hf.batch.job.run_entry`) on whichever worker the
scheduler picks. The cluster is the one at ``--scheduler`` (started with ``dask scheduler`` and ``dask worker``), the one of a
``distributed.Client`` passed in from Python, or a ``LocalCluster`` of worker processes on this
machine when neither is given.

What carries over from the local executor, and how:

- **Outputs.** Workers read the checkpoints and write the outputs themselves, so they must see
  the zoo and the output root at the same paths as the batch process (shared storage). Each task
  checks that first: the checkpoint must exist on the worker when it exists here, and a probe
  file that the batch writes into the output root must be there. Otherwise the entry fails with a
  message naming the worker, rather than converting into a folder nobody will find.
- **Progress.** The job's progress messages go to the scheduler as Dask events on a topic of
  this batch (``Worker.log_event``), and the client turns them into the usual events.
- **Failures.** A job turns every problem of its entry into a ``failed`` result, so a task only
  errs when its worker dies (killed, out of memory, a crash in native code). The scheduler then
  runs it again on another worker, up to ``allowed-failures`` times (``retries`` for the
  ``LocalCluster`` made here; a remote scheduler's own setting otherwise, 3 by default), and
  then reports ``KilledWorker``: the entry is reported failed, never lost. The dead worker's
  staging folder is removed by the next conversion of that entry (the retry, or the next run).
- **Blame.** Each worker thread is given one task at a time (``worker-saturation`` 1.0 on the
  ``LocalCluster`` made here), so a worker's death counts against the task it was running only.

Dask is imported only here, in :mod:`tf2hf.batch.dask_cluster` and in the task
(:mod:`tf2hf.batch.dask_worker`), and only when a Dask executor is made.
"""

from __future__ import annotations

import os
import queue
import secrets
import time
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any, Callable, Iterator

from tf2hf.batch.dask_cluster import connect, require_distributed
from tf2hf.batch.dask_worker import run_on_worker, source_exists
from tf2hf.batch.events import Event, Finished, Progress, Started
from tf2hf.batch.executor import Executor
from tf2hf.batch.job import run_entry
from tf2hf.batch.results import failed_result
from tf2hf.errors import ClusterError, one_line
from tf2hf.output.staging import output_error, pid_alive

#: Name of the file a batch writes into its output root, for workers to prove they see it.
PROBE = ".tf2hf-dask-probe-"


def _remove_dead_probes(root: Path) -> None:
    """Probe files of batches that were killed (named by their process id)."""
    try:
        names = [p for p in root.iterdir() if p.name.startswith(PROBE)]
    except OSError:
        return
    for path in names:
        try:
            pid = int(path.name[len(PROBE):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not pid_alive(pid):
            path.unlink(missing_ok=True)


class DaskExecutor(Executor):
    """One Dask task per entry, on the scheduler at ``scheduler``, on ``client``'s cluster, or on
    a ``LocalCluster`` of ``workers`` processes (see the module docstring).

    ``retries``: how often a task runs again after its worker died (on the ``LocalCluster`` made
    here; a remote scheduler applies its own ``distributed.scheduler.allowed-failures``), and
    after the task itself raised. ``timeout``: seconds to wait for the scheduler and for a
    worker, and after the last worker left, before the entries not finished are failed.
    """

    def __init__(self, scheduler: str | None = None, *, client: Any = None, workers: int | None = None,
                 job: Callable[[dict[str, Any]], dict[str, Any]] = run_entry, retries: int = 2,
                 timeout: float = 30.0, poll: float = 0.1) -> None:
        require_distributed()
        if scheduler is not None and client is not None:
            raise TypeError("pass either scheduler= or client=, not both: the client is already connected to its scheduler")
        self.job = job
        self.retries = max(0, int(retries))
        self.timeout = timeout
        self.poll = poll
        self.token = secrets.token_hex(4)
        self.topic = f"tf2hf-progress-{self.token}"
        self._own_client = client is None
        self.client, self._cluster, self._where = connect(scheduler, client, workers, retries=self.retries, timeout=timeout)
        try:
            self.workers = self._wait_for_workers()
            self._inbox: queue.SimpleQueue = queue.SimpleQueue()
            self.client.subscribe_topic(self.topic, self._on_message)
        except BaseException:
            self._shutdown()
            raise
        self._futures: dict[Any, str] = {}  # pending futures -> entry key
        self._payloads: dict[str, dict[str, Any]] = {}
        self._pending: set[str] = set()  # keys submitted and not finished
        self._probes: dict[str, str | None] = {}  # output root -> probe file name
        self._made_roots: list[Path] = []
        self._closed = False

    def _wait_for_workers(self) -> int:
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
        except (TimeoutError, OSError):
            raise ClusterError(
                f"{self._where}: the Dask scheduler has no workers after {self.timeout:g} s; start some with 'dask worker {self._where}'"
            ) from None
        return max(1, sum(self.client.nthreads().values()))

    def _on_message(self, event: tuple) -> None:
        """Runs on the client's event loop: hand the job's message to :meth:`events`."""
        _timestamp, message = event
        self._inbox.put(("message", message))

    def _probe(self, payload: dict[str, Any]) -> str | None:
        """The probe file of the payload's output root, written on first use.

        An entry written to the output root itself gets none: the root must then stay absent
        until its conversion creates it, so its workers are checked on the checkpoint alone.
        """
        root = payload["out_root"]
        if os.path.abspath(payload["out"]) == os.path.abspath(root):
            return None
        if root not in self._probes:
            path = Path(root)
            name = f"{PROBE}{os.getpid()}-{self.token}"
            try:
                if not path.exists():
                    missing = [path, *[p for p in path.parents if not p.exists()]]
                    path.mkdir(parents=True, exist_ok=True)
                    self._made_roots.extend(missing)  # removed again if they stay empty
                _remove_dead_probes(path)
                (path / name).write_text("written by tf2hf batch so that its Dask workers can check they see this folder\n", encoding="utf-8")
            except OSError as exc:
                raise output_error(path, exc) from None
            self._probes[root] = name
        return self._probes[root]

    def submit(self, key: str, payload: dict[str, Any]) -> None:
        probe = self._probe(payload)
        future = self.client.submit(
            run_on_worker, self.job, payload, self.topic, probe, source_exists(payload["source"]),
            key=f"tf2hf-{self.token}-{key}", retries=self.retries, pure=False,
        )
        self._payloads[key] = payload
        self._pending.add(key)
        self._futures[future] = key
        future.add_done_callback(lambda fut: self._inbox.put(("done", fut)))

    def events(self) -> Iterator[Event]:
        alone_since: float | None = None  # when the cluster was last seen without workers
        checked = time.monotonic()
        while self._futures:
            try:
                kind, item = self._inbox.get(timeout=self.poll)
            except queue.Empty:
                kind, item = None, None
            if kind == "message":
                event = self._event(item)
                if event is not None:
                    yield event
                continue
            if kind == "done" and item in self._futures:
                yield self._finished(item)
                continue
            now = time.monotonic()
            if now - checked < 1.0:
                continue
            checked = now
            for future in [f for f in self._futures if f.done()]:  # a callback that never came
                yield self._finished(future)
            lost = self._lost(alone_since)
            if lost is None:
                alone_since = None if self._has_workers() else (alone_since or now)
                continue
            for future in list(self._futures):
                key = self._futures.pop(future)
                self._pending.discard(key)
                yield Finished(key, self._failed(key, lost, "ClusterError"))

    def _has_workers(self) -> bool:
        try:
            return bool(self.client.nthreads())
        except Exception:
            return False

    def _lost(self, alone_since: float | None) -> str | None:
        """Why the entries not finished can no longer finish, or None."""
        if self.client.status in ("closing", "closed", "failed"):
            return f"the connection to the Dask scheduler {self._where} was lost; run the same command again to convert this entry"
        if alone_since is not None and time.monotonic() - alone_since > self.timeout:
            return (f"the Dask scheduler {self._where} has had no workers for {self.timeout:g} s; "
                    "start workers and run the same command again to convert this entry")
        return None

    def _event(self, message: Any) -> Event | None:
        """A job's progress message as an event; None for entries not running in this batch."""
        try:
            kind, key, *rest = message
        except (TypeError, ValueError):
            return None
        if key not in self._pending:
            return None  # finished already (a late message), or not an entry of this batch
        if kind == "start":
            return Started(key)
        if kind == "progress" and len(rest) == 3:
            return Progress(key, *rest)
        return None

    def _finished(self, future: Any) -> Finished:
        key = self._futures.pop(future)
        self._pending.discard(key)
        try:
            status = future.status
            if status == "finished":
                return Finished(key, future.result())
            if status == "cancelled":
                return Finished(key, self._cancelled(key))
            exc = future.exception()
        except CancelledError:
            return Finished(key, self._cancelled(key))
        except Exception as error:  # the result could not be fetched
            exc = error
        finally:
            future.release()
        if type(exc).__name__ == "KilledWorker":
            attempts = getattr(exc, "allowed_failures", 0) + 1
            last = getattr(getattr(exc, "last_worker", None), "address", "?")
            return Finished(key, self._failed(
                key,
                f"internal error: the Dask worker converting this entry died (killed, or out of memory?), {attempts} time(s), "
                f"last on {last}; convert it alone with tf2hf convert to see why",
                "KilledWorker",
            ))
        return Finished(key, self._failed(key, f"internal error: {type(exc).__name__}: {exc}", type(exc).__name__))

    def _cancelled(self, key: str) -> dict[str, Any]:
        reason = f"its Dask task was cancelled (the scheduler {self._where} went away?); run the same command again to convert this entry"
        return self._failed(key, reason, "CancelledError")

    def _failed(self, key: str, reason: str, error: str) -> dict[str, Any]:
        return failed_result(key, self._payloads[key], one_line(reason), error)

    def close(self) -> None:
        """Cancel the tasks not finished (a running conversion completes or leaves only its
        staging folder), remove the probe files, and stop what this executor started."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._futures:
                self.client.cancel(list(self._futures))
                self._futures.clear()
            self.client.unsubscribe_topic(self.topic)
        except Exception:
            pass  # the scheduler is gone already
        for root, name in self._probes.items():
            if name is not None:
                Path(root, name).unlink(missing_ok=True)
        for folder in self._made_roots:  # deepest first; only while empty
            try:
                folder.rmdir()
            except OSError:
                break
        self._shutdown()

    def _shutdown(self) -> None:
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
