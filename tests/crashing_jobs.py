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
