"""Jobs for executor tests; a module of its own so that spawned worker processes can import it."""

from __future__ import annotations

import os
import time


def die_on_boom(payload: dict) -> dict:
    """Kill the worker process abruptly for the entry named ``boom``; succeed for the others."""
    if payload["key"] == "boom":
        os._exit(3)
    time.sleep(0.05)
    return {"key": payload["key"], "source": payload["source"], "out": payload["out"], "status": "converted", "seconds": 0.0}


def raise_on_bad(payload: dict) -> dict:
    """A job whose failure is an ordinary exception, not a dead process."""
    if payload["key"] == "bad":
        raise RuntimeError("this job is broken")
    return {"key": payload["key"], "source": payload["source"], "out": payload["out"], "status": "converted", "seconds": 0.0}


def die_while_writing(payload: dict, *, key: str, flag: str, always: bool = False) -> dict:
    """Convert the entry with tf2hf's job, but for the entry ``key`` kill this worker process as
    soon as the first tensor of its model is written (a staging folder is on disk then): on the
    first attempt only, or on every attempt with ``always``. Before dying, the names of the
    staging folders beside the destination are written to ``flag`` (which also marks that the
    first attempt happened)."""
    import json
    from pathlib import Path

    from tf2hf.batch.events import progress_sink
    from tf2hf.batch.job import run_entry

    if payload["key"] != key or (Path(flag).exists() and not always):
        return run_entry(payload)
    out = Path(payload["out"])

    def kill_when_writing(message: tuple) -> None:
        if message[0] == "progress" and message[4] == "writing" and 0 < message[2] < message[3]:
            staging = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tf2hf-partial-"))
            Path(flag).write_text(json.dumps(staging))
            os._exit(3)

    with progress_sink(kill_when_writing):
        return run_entry(payload)


def start_then_sleep(payload: dict) -> dict:
    """Say the entry started, then take a second over it."""
    from tf2hf.batch.events import emit

    emit(("start", payload["key"]))
    time.sleep(1.0)
    return {"key": payload["key"], "source": payload["source"], "out": payload["out"], "status": "converted", "seconds": 0.0}
