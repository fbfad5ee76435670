"""The job of one batch entry, as a worker runs it: :func:`run_entry`.

It is a plain top-level function that takes and returns plain data, so that any executor can ship
it to another process or machine. It calls :func:`tf2hf.api.convert`, which builds the output
beside its destination and renames it into place whole; just before that rename, the marker of
:mod:`tf2hf.batch.markers` is written inside the folder. A killed run leaves only staging folders
of dead processes, which the next conversion of that entry removes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from tf2hf.batch.events import emit
from tf2hf.batch.markers import MARKER, beside_hashes, fingerprint, output_state, write_marker
from tf2hf.batch.results import CONVERTED, FAILED, SKIPPED, EntryResult
from tf2hf.batch.zoo import check_inside
from tf2hf.errors import OutputError, Tf2hfError, one_line
from tf2hf.messages import to_batch

#: Seconds between two progress messages of one entry.
PROGRESS_INTERVAL = 0.2


def run_entry(payload: dict[str, Any]) -> dict[str, Any]:
    """Convert one entry; never raises for a problem with the entry (it becomes ``failed``).

    ``payload``: ``key``, ``source``, ``out`` and ``out_root`` (absolute paths), ``options``
    (keyword arguments of :func:`tf2hf.convert`: family, config, vocab, target, gelu, lowercase,
    dtype, format), ``verify`` and ``force``. Returns an :class:`EntryResult` as a dict.
    """
    started = time.perf_counter()
    base = {"key": payload["key"], "source": payload["source"], "out": payload["out"]}
    emit(("start", payload["key"]))
    try:
        result = _convert_entry(payload)
    except Tf2hfError as exc:
        result = {"status": FAILED, "reason": to_batch(one_line(str(exc))), "error": type(exc).__name__}
    except Exception as exc:  # one entry's bug never stops the others
        result = {"status": FAILED, "reason": one_line(f"internal error: {type(exc).__name__}: {exc}"), "error": type(exc).__name__}
    result = {**base, **result, "seconds": time.perf_counter() - started}
    return EntryResult.from_dict(result).to_dict()


def _convert_entry(payload: dict[str, Any]) -> dict[str, Any]:
    """Fingerprint the sources, decide from the existing output, convert when needed."""
    key = payload["key"]
    out = Path(payload["out"])
    check_inside(out, Path(payload["out_root"]))
    options = {k: v for k, v in payload["options"].items() if v is not None}
    verify = bool(payload.get("verify", True))

    emit(("progress", key, 0, 0, "hashing"))
    prefix, files = _checkpoint_files(payload["source"])
    fp, hashes = fingerprint(files, options)
    state, marker = output_state(out, fp, prefix.parent, verify)
    if state == "current":
        return _skipped(marker, fp)
    if state in ("stale", "foreign") and not payload.get("force"):
        raise _refusal(out, state)

    # Made here, not by the conversion: a failed conversion removes the parent folders it
    # made, which could pull a shared parent from under a sibling entry being converted.
    out.parent.mkdir(parents=True, exist_ok=True)

    def before_commit(folder: Path, result: Any) -> None:
        beside = beside_hashes((result.config_path, result.vocab_path), prefix.parent)
        write_marker(folder, fp=fp, source=prefix, hashes=hashes, options=options, beside=beside, result=result)

    emit(("progress", key, 0, 0, "planning"))
    result = _convert(prefix, out, options, replace=state != "absent", verify=verify,
                      progress=_progress_reporter(key, verify), before_commit=before_commit)
    return _converted(result, state, fp, verify)


def _checkpoint_files(source: str) -> tuple[Path, list[Path]]:
    """The checkpoint's prefix and the files it is made of (index and data shards)."""
    from tf2hf.tfckpt import open_checkpoint

    with open_checkpoint(source) as ckpt:
        return ckpt.prefix, list(ckpt.files)


def _skipped(marker: dict[str, Any], fp: str) -> dict[str, Any]:
    """An up-to-date output: its result is what its marker recorded."""
    return {
        "status": SKIPPED, "reason": "up to date (same source fingerprint)", "fingerprint": fp,
        "family": marker.get("family"), "target_class": marker.get("target_class"),
        "parameters": marker.get("parameters", 0), "verified": marker.get("verified"),
    }


def _refusal(out: Path, state: str) -> OutputError:
    why = (
        "was converted from other files or options (its fingerprint differs)" if state == "stale"
        else f"exists and was not written by tf2hf batch (no {MARKER})"
    )
    return OutputError(f"{out}: {why}; pass --force to replace it, or choose another --out")


def _progress_reporter(key: str, verify: bool) -> Callable[[int, int, str], None]:
    """The conversion's progress callback: at most one message per :data:`PROGRESS_INTERVAL`,
    and always the last one (after which the entry verifies, when it does)."""
    last = [0.0]

    def progress(done: int, total: int, phase: str) -> None:
        # convert() names its phase (planning, writing, verifying); only writing is frequent, and
        # only it is rate-limited (a phase change must not hold back the first bytes written).
        if phase != "writing":
            emit(("progress", key, done, total, phase))
            return
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_INTERVAL:
            last[0] = now
            emit(("progress", key, done, total, phase))

    return progress


def _convert(prefix: Path, out: Path, options: dict[str, Any], *, replace: bool, verify: bool,
             progress: Callable[[int, int, str], None], before_commit: Callable[[Path, Any], None]) -> Any:
    # Imported only here: an entry that is skipped never loads the converter.
    from tf2hf.api import convert

    return convert(
        options.get("family", "auto"),
        tf=str(prefix),
        out=str(out),
        config=options.get("config"),
        vocab=options.get("vocab"),
        target=options.get("target"),
        task=options.get("task", "auto"),
        gelu=options.get("gelu"),
        lowercase=options.get("lowercase"),
        dtype=options.get("dtype", "float32"),
        format=options.get("format", "safetensors"),
        hash_sources=bool(options.get("hash_sources")),
        force=replace,
        verify=verify,
        progress=progress,
        before_commit=before_commit,
    )


def _converted(result: Any, state: str, fp: str, verify: bool) -> dict[str, Any]:
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
        "warnings": [to_batch(w) for w in result.warnings],
        "left_out": list(result.left_out),
        "extra_weights": [name for name, _shape in result.extra_weights],
        "note": f"replaced {'a previous output' if state == 'redo' else 'an existing folder'}" if state != "absent" else None,
    }
