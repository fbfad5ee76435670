"""The local executor: a process pool on this machine, where a crashed worker fails only its entry.

When a worker process dies (killed, out of memory, a crash in native code), the pool breaks and
every job in it fails at once; then the jobs that were not running are resubmitted to a new pool,
and those that were (the suspects) rerun one at a time in a pool of their own: only a job that
breaks that one too is reported failed.

Workers fork from a fork server that imported :data:`WARM_IMPORTS` first, and every process of
the pool ends when its parent does (:func:`die_with_parent`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from tf2hf.batch.events import Event, Finished, Progress, Started, set_progress_sink
from tf2hf.batch.executor import Executor
from tf2hf.batch.job import run_entry
from tf2hf.batch.main_guard import refuse_unguarded_main
from tf2hf.batch.results import failed_result
from tf2hf.errors import one_line

#: The module the fork server imports before it forks any worker (see its docstring): named, not
#: imported, because importing it is what it is for, and only the fork server must do that.
WARM_IMPORTS = "tf2hf.batch.warm_imports"
#: What verification needs besides: torch and transformers' model machinery take seconds of CPU
#: to import, so the fork server imports them once and workers share them copy-on-write.
VERIFY_IMPORTS = ("torch", "transformers.modeling_utils")


def warm_imports(verify: bool) -> tuple[str, ...]:
    """The fork server's preload list for a batch that verifies its conversions, or not."""
    return (WARM_IMPORTS, *VERIFY_IMPORTS) if verify else (WARM_IMPORTS,)


def die_with_parent() -> None:
    """End this process when its parent process ends (Linux: at once, by the kernel; elsewhere:
    within half a second, by a watching thread).

    Workers call it, and so does the fork server (:mod:`tf2hf.batch.warm_imports`), whose parent
    is the batch process: if the batch is killed, the server and then every worker end with it.
    Without this, a killed batch would leave workers running: each holds the server's
    liveness pipe and the ends of its own queues open, so nothing else would ever stop them.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="tf2hf-parent-watch", daemon=True).start()


def _init_worker(queue) -> None:
    die_with_parent()
    # Progress is best-effort: a worker must never wait at exit for the batch to read it.
    queue.cancel_join_thread()
    set_progress_sink(queue.put)


def crashed_result(payload: dict[str, Any]) -> dict[str, Any]:
    return failed_result(
        payload["key"], payload,
        "internal error: the worker process died while converting this entry (killed, or out of memory?); "
        "convert it alone with tf2hf convert to see why",
        "BrokenProcessPool",
    )


def _context(name: str | None, preload: list[str]):
    """``forkserver`` where the system has it (workers fork from a server that imported
    ``preload`` once), else ``spawn``. Never plain ``fork``: the batch process may run threads."""
    if name is None:
        name = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(name)
    if name == "forkserver" and preload:
        # Takes effect when the fork server starts (once per process): the first pool decides.
        ctx.set_forkserver_preload(preload)
    return ctx


class LocalExecutor(Executor):
    """A pool of ``workers`` processes on this machine (``forkserver``, or ``spawn`` where the
    system has no fork server), with crash isolation (see the module docstring). ``preload``:
    the fork server's imports, :func:`warm_imports` for a batch.
    """

    def __init__(self, workers: int, *, job: Callable[[dict[str, Any]], dict[str, Any]] = run_entry,
                 context: str | None = None, preload: Iterable[str] = (), poll: float = 0.1) -> None:
        self.workers = max(1, int(workers))
        self.job = job
        self.poll = poll
        self._ctx = _context(context, list(preload))
        # Before any process starts: a script without the __main__ guard would run in each worker.
        refuse_unguarded_main(self._ctx.get_start_method())
        self._queue = self._ctx.Queue()
        self._generation = 0
        self._pool = self._new_pool(self.workers)
        self._futures: dict[Future, tuple[str, int]] = {}
        self._payloads: dict[str, dict[str, Any]] = {}
        self._running: set[str] = set()
        self._breaks: Counter[str] = Counter()
        self._suspects: deque[str] = deque()
        self._isolated: tuple[Future, str, ProcessPoolExecutor] | None = None
        self._closed = False

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=self._ctx, initializer=_init_worker, initargs=(self._queue,))

    def submit(self, key: str, payload: dict[str, Any]) -> None:
        self._payloads[key] = payload
        self._futures[self._pool.submit(self.job, payload)] = (key, self._generation)

    def _drain(self) -> Iterator[Event]:
        while True:
            try:
                message = self._queue.get_nowait()
            except Exception:  # queue.Empty, or a torn message from a dying worker
                return
            if message[0] == "start":
                self._running.add(message[1])
                yield Started(message[1])
            elif message[0] == "progress":
                yield Progress(*message[1:])

    def _on_broken(self, key: str, generation: int, was_running: bool) -> None:
        if generation == self._generation:  # the first casualty of this pool: replace the pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._generation += 1
            self._pool = self._new_pool(self.workers)
        self._breaks[key] += 1
        # A job that broke a pool while running, or broke two, is a suspect: it reruns alone.
        if was_running or self._breaks[key] >= 2:
            self._suspects.append(key)
        else:
            self._futures[self._pool.submit(self.job, self._payloads[key])] = (key, self._generation)

    def _start_isolated(self) -> None:
        if self._isolated is None and self._suspects:
            key = self._suspects.popleft()
            pool = self._new_pool(1)
            self._isolated = (pool.submit(self.job, self._payloads[key]), key, pool)

    def events(self) -> Iterator[Event]:
        while self._futures or self._suspects or self._isolated:
            yield from self._drain()
            self._start_isolated()
            for fut, (key, _gen) in self._futures.items():
                if fut.running():
                    self._running.add(key)
            pending = list(self._futures) + ([self._isolated[0]] if self._isolated else [])
            done, _ = wait(pending, timeout=self.poll, return_when=FIRST_COMPLETED)
            yield from self._drain()
            for fut in done:
                finished = self._collect(fut)
                if finished is not None:
                    yield finished
        yield from self._drain()

    def _collect(self, fut: Future) -> Finished | None:
        """The ``Finished`` event of a completed future, or None when its job runs again."""
        if self._isolated is not None and fut is self._isolated[0]:
            _, key, pool = self._isolated
            self._isolated = None
            pool.shutdown(wait=False)
            return Finished(key, self._result(fut, key, crashed=crashed_result(self._payloads[key])))
        key, generation = self._futures.pop(fut)
        if isinstance(fut.exception(), BrokenProcessPool):
            self._on_broken(key, generation, was_running=key in self._running)
            self._running.discard(key)
            return None
        self._running.discard(key)
        return Finished(key, self._result(fut, key))

    def _result(self, fut: Future, key: str, crashed: dict | None = None) -> dict[str, Any]:
        exc = fut.exception()
        if exc is None:
            return fut.result()
        if isinstance(exc, BrokenProcessPool) and crashed is not None:
            return crashed
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        return failed_result(key, self._payloads[key], one_line(f"internal error: {type(exc).__name__}: {exc}"), type(exc).__name__)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._isolated is not None:
            self._isolated[2].shutdown(wait=True, cancel_futures=True)
        self._queue.close()
        self._queue.cancel_join_thread()
