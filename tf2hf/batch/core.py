"""Converting many checkpoints: ``tf2hf batch`` and :func:`convert_many`.

Each entry is converted by :func:`run_entry`, a plain top-level function that takes and returns
plain data (so any executor can ship it to another process or machine). It calls
:func:`tf2hf.api.convert`, which builds the output beside its destination and renames it into
place whole; just before that rename, a marker file (``.tf2hf-source.json``) is written inside
the folder with the *fingerprint* of what it was made from: the sha256 of the index and every
data shard, and the options. A completed folder therefore proves itself, and a rerun skips every
entry whose output exists with the same fingerprint. A killed run leaves only staging folders of
dead processes, which the next conversion of that entry removes.

States of an existing output folder, and what a run does with them:

=============  ===========================================  ==================================
state          meaning                                      action
=============  ===========================================  ==================================
current        marker fingerprint matches (and it was       skipped
               verified, when verification is on)
redo           ours, same sources, but unverified while      converted again and replaced
               verification is on, or a file is missing
stale          ours, but the sources or options changed      failed, unless ``force``
foreign        no marker: not written by a batch             failed, unless ``force``
=============  ===========================================  ==================================

Execution goes through an :class:`Executor`: ``submit(key, payload)`` then iterate
``events()`` (``Started``, ``Progress``, ``Finished`` with the result dict). The local one runs a
process pool; a crashed worker process fails only the entry it was converting (the others are
resubmitted, and the suspects rerun alone to find the culprit). :mod:`tf2hf.batch.dask_executor` runs
the same jobs as tasks on a Dask cluster.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from tf2hf import __version__
from tf2hf.errors import OutputError, Tf2hfError, ZooError
from tf2hf.batch.zoo import OPTION_KEYS, ZooEntry, check_out_name

MARKER = ".tf2hf-source.json"
MARKER_VERSION = 1
CONVERTED, SKIPPED, FAILED = "converted", "skipped", "failed"
#: Seconds between two progress messages of one entry.
PROGRESS_INTERVAL = 0.2


# --- results --------------------------------------------------------------------------------


@dataclass
class EntryResult:
    """The outcome of one entry; ``to_dict()`` is JSON-serialisable.

    ``status`` is ``converted``, ``skipped`` (up to date, or not read for the ``reason`` given)
    or ``failed`` (``reason`` is the one-line error).
    """

    key: str
    source: str
    out: str
    status: str
    reason: str | None = None
    family: str | None = None
    target_class: str | None = None
    parameters: int = 0
    output_bytes: int = 0
    verified: bool | None = None
    max_abs_diff: float | None = None
    fingerprint: str | None = None
    seconds: float = 0.0
    note: str | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # the exception type of a failure

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EntryResult":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class BatchReport:
    """Every entry's result and the totals; ``to_dict()`` is what ``--report`` writes."""

    out_root: str
    entries: list[EntryResult]
    workers: int
    seconds: float
    zoo: str | None = None
    manifest: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(e.status for e in self.entries)
        return {status: found.get(status, 0) for status in (CONVERTED, SKIPPED, FAILED)}

    @property
    def ok(self) -> bool:
        """True when nothing failed (skipped entries count as success)."""
        return all(e.ok for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tf2hf": __version__,
            "zoo": self.zoo,
            "manifest": self.manifest,
            "out_root": self.out_root,
            "workers": self.workers,
            "seconds": self.seconds,
            "ok": self.ok,
            "counts": self.counts,
            "entries": [e.to_dict() for e in self.entries],
        }


# --- events ---------------------------------------------------------------------------------


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


# --- the per-entry job (runs in a worker) ---------------------------------------------------

_SINK: Callable[[tuple], None] | None = None


def set_progress_sink(sink: Callable[[tuple], None] | None) -> None:
    """Where :func:`run_entry` sends its progress messages in this process (set by executors):
    ``("start", key)``, ``("progress", key, done, total, phase)``."""
    global _SINK
    _SINK = sink


_LOCAL = threading.local()


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


def _emit(message: tuple) -> None:
    sink = getattr(_LOCAL, "sink", None) or _SINK
    if sink is None:
        return
    try:
        sink(message)
    except Exception:  # the display is best-effort: never fail a conversion for it
        pass


def _sha256(path: Path) -> str:
    from tf2hf.sources import sha256

    return sha256(path)


def fingerprint(files: Iterable[Path], options: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """sha256 over the hashes of the checkpoint's files (by name) and the options.

    A ``config``/``vocab`` option counts by its content, not its path. Returns the fingerprint
    and the per-file hashes (a missing file hashes as ``"missing"``: the conversion will say why).
    """
    hashes = {p.name: (_sha256(p) if p.is_file() else "missing") for p in files}
    normal = {key: options.get(key) for key in OPTION_KEYS}
    for key in ("config", "vocab"):
        if normal[key] is not None:
            path = Path(normal[key])
            normal[key] = _sha256(path) if path.is_file() else f"missing: {path}"
    # An option left out means its default: a run from Python (None) and one from the CLI (the
    # default spelt out) must agree on what is up to date.
    normal["family"] = normal["family"] or "auto"
    normal["dtype"] = normal["dtype"] or "float32"
    normal["format"] = normal["format"] or "safetensors"
    blob = json.dumps({"files": hashes, "options": normal}, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest(), hashes


def _beside_key(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def read_marker(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("marker") == MARKER_VERSION else None


def output_state(out: Path, fp: str, source_folder: Path, verify: bool) -> tuple[str, dict | None]:
    """``absent``, ``current``, ``redo``, ``stale`` or ``foreign`` (see the module docstring)."""
    if not os.path.lexists(out):
        return "absent", None
    marker = read_marker(out) if out.is_dir() and not out.is_symlink() else None
    if marker is None:
        return "foreign", None
    if marker.get("fingerprint") != fp:
        return "stale", marker
    for name, digest in (marker.get("beside") or {}).items():
        path = Path(name) if os.path.isabs(name) else source_folder / name
        if not path.is_file() or _sha256(path) != digest:
            return "stale", marker
    for name, size in (marker.get("outputs") or {}).items():
        path = out / name
        if not path.is_file() or path.stat().st_size != size:
            return "redo", marker
    if verify and not marker.get("verified"):
        return "redo", marker
    return "current", marker


def check_inside(out: Path, out_root: Path) -> None:
    """Refuse an output path that leaves the output root, lexically or through symbolic links."""
    root = os.path.realpath(out_root)
    real = os.path.realpath(out)
    if not (real == root or real.startswith(root.rstrip(os.sep) + os.sep)):
        raise ZooError(f"{out}: leads outside the output root {out_root} (to {real}); nothing was written")


def run_entry(payload: dict[str, Any]) -> dict[str, Any]:
    """Convert one entry; never raises for a problem with the entry (it becomes ``failed``).

    ``payload``: ``key``, ``source``, ``out`` and ``out_root`` (absolute paths), ``options``
    (keyword arguments of :func:`tf2hf.convert`: family, config, vocab, target, gelu, lowercase,
    dtype, format), ``verify`` and ``force``. Returns an :class:`EntryResult` as a dict.
    """
    started = time.perf_counter()
    base = {"key": payload["key"], "source": payload["source"], "out": payload["out"]}
    _emit(("start", payload["key"]))
    try:
        result = _convert_entry(payload)
    except Tf2hfError as exc:
        result = {"status": FAILED, "reason": _one_line(str(exc)), "error": type(exc).__name__}
    except Exception as exc:  # one entry's bug never stops the others
        result = {"status": FAILED, "reason": _one_line(f"internal error: {type(exc).__name__}: {exc}"), "error": type(exc).__name__}
    result = {**base, **result, "seconds": time.perf_counter() - started}
    return EntryResult.from_dict(result).to_dict()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _convert_entry(payload: dict[str, Any]) -> dict[str, Any]:
    from tf2hf.tfckpt import open_checkpoint

    key = payload["key"]
    out = Path(payload["out"])
    check_inside(out, Path(payload["out_root"]))
    options = {k: v for k, v in payload["options"].items() if v is not None}
    verify = bool(payload.get("verify", True))

    _emit(("progress", key, 0, 0, "hashing"))
    with open_checkpoint(payload["source"]) as ckpt:
        prefix = ckpt.prefix
        files = list(ckpt.files)
    fp, hashes = fingerprint(files, options)
    state, marker = output_state(out, fp, prefix.parent, verify)
    if state == "current":
        return {
            "status": SKIPPED, "reason": "up to date (same source fingerprint)", "fingerprint": fp,
            "family": marker.get("family"), "target_class": marker.get("target_class"),
            "parameters": marker.get("parameters", 0), "verified": marker.get("verified"),
        }
    if state in ("stale", "foreign") and not payload.get("force"):
        why = (
            "was converted from other files or options (its fingerprint differs)" if state == "stale"
            else f"exists and was not written by tf2hf batch (no {MARKER})"
        )
        raise OutputError(f"{out}: {why}; pass --force to replace it, or choose another --out")

    from tf2hf.api import convert

    # Made here, not by the conversion: a failed conversion removes the parent folders it
    # made, which could pull a shared parent from under a sibling entry being converted.
    out.parent.mkdir(parents=True, exist_ok=True)
    last = [0.0]

    def progress(done: int, total: int, _tensor: str) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_INTERVAL:
            last[0] = now
            _emit(("progress", key, done, total, "verifying" if done >= total and verify else "writing"))

    def before_commit(folder: Path, result) -> None:
        beside = {}
        for path in (result.config_path, result.vocab_path):
            if path:
                beside[_beside_key(Path(path), prefix.parent)] = _sha256(Path(path))
        outputs = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
        check = result.verification
        record = {
            "marker": MARKER_VERSION,
            "tf2hf": __version__,
            "fingerprint": fp,
            "source": str(prefix),
            "files": hashes,
            "options": {k: options.get(k) for k in OPTION_KEYS},
            "beside": beside,
            "outputs": outputs,
            "verified": bool(check and check.get("passed")),
            "family": result.family,
            "target_class": result.target_class,
            "parameters": result.parameters,
        }
        (folder / MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    _emit(("progress", key, 0, 0, "planning"))
    result = convert(
        options.get("family", "auto"),
        tf=str(prefix),
        out=str(out),
        config=options.get("config"),
        vocab=options.get("vocab"),
        target=options.get("target"),
        gelu=options.get("gelu"),
        lowercase=options.get("lowercase"),
        dtype=options.get("dtype", "float32"),
        format=options.get("format", "safetensors"),
        force=state != "absent",
        verify=verify,
        progress=progress,
        before_commit=before_commit,
    )
    check = result.verification
    return {
        "status": CONVERTED,
        "family": result.family,
        "target_class": result.target_class,
        "parameters": result.parameters,
        "output_bytes": result.output_bytes,
        "verified": bool(check and check.get("passed")) if verify else None,
        "max_abs_diff": check.get("worst") if check else None,
        "fingerprint": fp,
        "warnings": list(result.warnings),
        "note": f"replaced {'a previous output' if state == 'redo' else 'an existing folder'}" if state != "absent" else None,
    }


# --- executors ------------------------------------------------------------------------------


class Executor(ABC):
    """Where per-entry jobs run.

    ``submit(key, payload)`` queues a job (``job(payload) -> result dict``, a top-level function
    such as :func:`run_entry`); ``events()`` yields :class:`Started`, :class:`Progress` and
    :class:`Finished` events until every submitted job has finished, each exactly one
    ``Finished``. A job that cannot run (its worker died) still finishes, as ``failed``.
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


def die_with_parent() -> None:
    """End this process when its parent process ends (Linux: at once, by the kernel; elsewhere:
    within half a second, by a watching thread).

    Workers call it, and so does the fork server (:mod:`tf2hf.batch.preload`), whose parent is
    the batch process: if the batch is killed, the server and then every worker end with it.
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
    return EntryResult(
        key=payload["key"], source=payload["source"], out=payload["out"], status=FAILED,
        reason="internal error: the worker process died while converting this entry (killed, or out of memory?); "
               "convert it alone with tf2hf convert to see why",
        error="BrokenProcessPool",
    ).to_dict()


#: Imported once by the fork server, so that workers start with them loaded (copy-on-write)
#: instead of importing them each: torch and transformers' model machinery take seconds of CPU.
#: The first also ties the fork server's life to the batch process (see die_with_parent).
PRELOAD = ("tf2hf.batch.preload",)
PRELOAD_VERIFY = ("tf2hf.batch.preload", "tf2hf.batch.preload_verify")


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
    system has no fork server).

    When a worker process dies (killed, out of memory, a crash in native code), the pool breaks
    and every job in it fails at once; then the jobs that were not running are resubmitted to a
    new pool, and those that were (the suspects) rerun one at a time in a pool of their own:
    only a job that breaks that one too is reported failed.
    """

    def __init__(self, workers: int, *, job: Callable[[dict[str, Any]], dict[str, Any]] = run_entry,
                 context: str | None = None, preload: Iterable[str] = (), poll: float = 0.1) -> None:
        self.workers = max(1, int(workers))
        self.job = job
        self.poll = poll
        self._ctx = _context(context, list(preload))
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
                if self._isolated is not None and fut is self._isolated[0]:
                    _, key, pool = self._isolated
                    self._isolated = None
                    pool.shutdown(wait=False)
                    yield Finished(key, self._result(fut, key, crashed=crashed_result(self._payloads[key])))
                    continue
                key, generation = self._futures.pop(fut)
                if isinstance(fut.exception(), BrokenProcessPool):
                    self._on_broken(key, generation, was_running=key in self._running)
                    self._running.discard(key)
                    continue
                self._running.discard(key)
                yield Finished(key, self._result(fut, key))
        yield from self._drain()

    def _result(self, fut: Future, key: str, crashed: dict | None = None) -> dict[str, Any]:
        exc = fut.exception()
        if exc is None:
            return fut.result()
        if isinstance(exc, BrokenProcessPool) and crashed is not None:
            return crashed
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        payload = self._payloads[key]
        return EntryResult(
            key=key, source=payload["source"], out=payload["out"], status=FAILED,
            reason=_one_line(f"internal error: {type(exc).__name__}: {exc}"), error=type(exc).__name__,
        ).to_dict()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._isolated is not None:
            self._isolated[2].shutdown(wait=True, cancel_futures=True)
        self._queue.close()
        self._queue.cancel_join_thread()


# --- many entries ---------------------------------------------------------------------------


def _as_entry(item: ZooEntry | dict | str | os.PathLike) -> ZooEntry:
    if isinstance(item, ZooEntry):
        return item
    if isinstance(item, dict):
        data = dict(item)
        if "tf" in data and "source" not in data:
            data["source"] = data.pop("tf")
        unknown = sorted(set(data) - {"source", "out", *OPTION_KEYS})
        if unknown or "source" not in data:
            raise TypeError(f"an entry takes 'source' and optionally 'out', {', '.join(OPTION_KEYS)}; got {sorted(data)}")
        source = Path(data["source"]).expanduser()
        data["source"] = str(source.absolute())
        if data.get("out") is None:
            data["out"] = (source if source.is_dir() else source.parent).absolute().name
        return ZooEntry(**data)
    source = Path(item).expanduser().absolute()
    return ZooEntry(source=str(source), out=(source if source.is_dir() else source.parent).name)


def convert_many(
    entries: Iterable[ZooEntry | dict | str | os.PathLike],
    out_root: str | os.PathLike,
    *,
    workers: int | None = None,
    force: bool = False,
    verify: bool = True,
    executor: Executor | str | None = None,
    scheduler: str | None = None,
    client: Any = None,
    on_event: Callable[[Event], None] | None = None,
    **options: Any,
) -> Iterator[EntryResult]:
    """Convert many checkpoints in parallel; yield an :class:`EntryResult` per entry as each
    completes (entries known in advance to be skipped or failed come first).

    ``entries``: checkpoint paths (the output is named after the checkpoint's folder), dicts
    with ``source`` and optionally ``out`` and per-entry options, or :class:`~tf2hf.batch.zoo.ZooEntry`
    objects (``tf2hf.batch.zoo.discover(folder)`` finds a zoo's). ``options`` are the defaults for
    every entry: ``family`` (default ``"auto"``), ``config``, ``vocab``, ``target``, ``gelu``,
    ``lowercase``, ``dtype``, ``format``. ``workers``: processes (default: the CPU count).
    Outputs up to date with their sources are skipped; ``force`` replaces outputs made from
    other sources or not made by a batch. ``on_event`` receives the :class:`Started` and
    :class:`Progress` events (for a display).

    ``executor``: ``"local"`` (a process pool, the default), ``"dask"`` (one task per entry on
    the Dask scheduler at ``scheduler``, e.g. ``"tcp://host:8786"``, on the cluster of an
    existing ``dask.distributed.Client`` passed as ``client``, or on a ``LocalCluster`` of
    ``workers`` processes when neither is given), or an :class:`Executor` instance.
    """
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise TypeError(f"convert_many() got unknown option(s) {', '.join(unknown)}; options are {', '.join(OPTION_KEYS)}")
    kind = executor_kind(executor, scheduler, client)
    if kind == "dask" and client is None:
        from tf2hf.batch.dask_executor import require_distributed

        require_distributed()
    root = Path(os.path.abspath(Path(out_root).expanduser()))
    items = [_as_entry(item) for item in entries]
    seen: dict[str, str] = {}
    payloads: list[dict[str, Any]] = []
    for entry in items:
        name = check_out_name(entry.out, entry.source)
        key = name or "."
        if key in seen:
            raise ZooError(f"{seen[key]} and {entry.source} both write to {root / name}; give each its own out name")
        seen[key] = entry.source
        out = root / name if name else root
        base = {"key": key, "source": entry.source, "out": str(out)}
        if entry.status is not None:
            yield EntryResult(**base, status=entry.status, reason=entry.reason)
            continue
        try:
            check_inside(out, root)
        except ZooError as exc:
            yield EntryResult(**base, status=FAILED, reason=str(exc), error="ZooError")
            continue
        payloads.append({
            **base, "out_root": str(root), "options": {**options, **entry.options()},
            "verify": verify, "force": force, "note": entry.note,
        })
    if not payloads:
        return
    notes = {p["key"]: p.pop("note") for p in payloads}
    own = not isinstance(executor, Executor)
    if own:
        count = min(workers or os.cpu_count() or 1, len(payloads))
        if kind == "dask":
            from tf2hf.batch.dask_executor import DaskExecutor

            executor = DaskExecutor(scheduler, client=client, workers=count)
        else:
            executor = LocalExecutor(count, preload=PRELOAD_VERIFY if verify else PRELOAD)
    try:
        for payload in payloads:
            executor.submit(payload["key"], payload)
        for event in executor.events():
            if isinstance(event, Finished):
                result = EntryResult.from_dict(event.result)
                if result.note is None and notes.get(event.key):
                    result.note = notes[event.key]
                yield result
            elif on_event is not None:
                on_event(event)
    finally:
        if own:
            executor.close()


def executor_kind(executor: Executor | str | None, scheduler: str | None, client: Any) -> str:
    """``local``, ``dask`` or ``custom`` (an :class:`Executor` instance); a scheduler or a
    client alone means ``dask``."""
    if isinstance(executor, Executor):
        if scheduler is not None or client is not None:
            raise TypeError("pass scheduler= or client= with executor='dask', not with an Executor instance")
        return "custom"
    kind = executor or ("dask" if scheduler is not None or client is not None else "local")
    if kind not in ("local", "dask"):
        raise ValueError(f"executor must be 'local', 'dask' or an Executor instance, not {executor!r}")
    if kind == "local" and (scheduler is not None or client is not None):
        raise TypeError("scheduler= and client= are for executor='dask'; the local executor has no scheduler")
    if scheduler is not None and client is not None:
        raise TypeError("pass either scheduler= or client=, not both: the client is already connected to its scheduler")
    return kind


def run_batch(
    entries: list[ZooEntry],
    out_root: str | os.PathLike,
    *,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    client: Any = None,
    force: bool = False,
    verify: bool = True,
    on_event: Callable[[Event], None] | None = None,
    on_result: Callable[[EntryResult], None] | None = None,
    zoo: str | None = None,
    manifest: str | None = None,
    **options: Any,
) -> BatchReport:
    """Run :func:`convert_many` to the end and collect a :class:`BatchReport` (sorted by key).

    ``executor`` is ``"local"`` or ``"dask"`` (see :func:`convert_many`); the report's worker
    count is then that of the Dask cluster.
    """
    started = time.perf_counter()
    count = workers or os.cpu_count() or 1
    results = []
    runner: Executor | str = executor
    if executor_kind(executor, scheduler, client) == "dask" and any(e.status is None for e in entries):
        from tf2hf.batch.dask_executor import DaskExecutor

        # Made here, not by convert_many, so that the report can say how many workers ran.
        runner = DaskExecutor(scheduler, client=client, workers=min(count, sum(e.status is None for e in entries)))
        count = runner.workers
    cluster = {} if isinstance(runner, Executor) else {"scheduler": scheduler, "client": client}
    try:
        for result in convert_many(entries, out_root, workers=count, executor=runner, force=force, verify=verify, on_event=on_event, **cluster, **options):
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        if isinstance(runner, Executor):
            runner.close()
    return BatchReport(
        out_root=str(Path(os.path.abspath(Path(out_root).expanduser()))),
        entries=sorted(results, key=lambda r: r.key),
        workers=count,
        seconds=time.perf_counter() - started,
        zoo=zoo,
        manifest=manifest,
    )


def write_report(report: BatchReport, path: str | os.PathLike) -> None:
    """Write the report as JSON, atomically (a temporary file renamed into place)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot write the report ({exc.strerror or exc}); choose another --report path") from None
