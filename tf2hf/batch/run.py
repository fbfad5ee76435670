"""Converting many checkpoints: :func:`convert_many` (Python) and :func:`run_batch` (``tf2hf batch``).

Each entry becomes a payload for the job :func:`tf2hf.batch.job.run_entry`, run by an
:class:`~tf2hf.batch.executor.Executor`: the local process pool
(:mod:`tf2hf.batch.local_pool`) or a Dask cluster (:mod:`tf2hf.batch.dask_executor`, imported
only when asked for: Dask is an optional extra). Entries decided without converting (skipped by
discovery, or with an output outside the output root) get their result at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from tf2hf.batch.events import Event, Finished
from tf2hf.batch.executor import Executor
from tf2hf.batch.local_pool import LocalExecutor, warm_imports
from tf2hf.batch.results import FAILED, BatchReport, EntryResult
from tf2hf.batch.zoo import OPTION_KEYS, ZooEntry, check_inside, check_out_name, check_out_root
from tf2hf.errors import ZooError
from tf2hf.output.staging import check_out


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
        from tf2hf.batch.dask_cluster import require_distributed

        require_distributed()
    check_out(out_root)
    root = Path(os.path.abspath(Path(out_root).expanduser()))
    check_out_root(root)  # else every entry would fail on it, one by one
    items = [_as_entry(item) for item in entries]
    payloads: list[dict[str, Any]] = []
    # A generator to the end: results known in advance are yielded before a later entry's
    # conflict raises, as the caller's display expects.
    for job in _jobs(items, root, {"options": options, "verify": verify, "force": force}):
        if isinstance(job, EntryResult):
            yield job
        else:
            payloads.append(job)
    if not payloads:
        return
    notes = {p["key"]: p.pop("note") for p in payloads}
    own = not isinstance(executor, Executor)
    if own:
        executor = _make_executor(kind, min(workers or os.cpu_count() or 1, len(payloads)), scheduler, client, verify)
    try:
        yield from _results(executor, payloads, notes, on_event)
    finally:
        if own:
            executor.close()


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


def _jobs(items: list[ZooEntry], root: Path, common: dict[str, Any]) -> Iterator[EntryResult | dict[str, Any]]:
    """Per entry, its result when it is decided without converting, else its job's payload
    (``common``: the batch's options, ``verify`` and ``force``). Two entries writing to the
    same output raise."""
    seen: dict[str, str] = {}
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
        yield {
            **base, "out_root": str(root), "options": {**common["options"], **entry.options()},
            "verify": common["verify"], "force": common["force"], "note": entry.note,
        }


def _make_executor(kind: str, workers: int, scheduler: str | None, client: Any, verify: bool) -> Executor:
    if kind == "dask":
        from tf2hf.batch.dask_executor import DaskExecutor

        return DaskExecutor(scheduler, client=client, workers=workers)
    return LocalExecutor(workers, preload=warm_imports(verify))


def _results(executor: Executor, payloads: list[dict[str, Any]], notes: dict[str, str | None],
             on_event: Callable[[Event], None] | None) -> Iterator[EntryResult]:
    """Submit every payload, then yield each entry's result as it finishes (with the note
    discovery gave it, unless the job wrote its own) and pass the other events on."""
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
