"""What a batch produces: one :class:`EntryResult` per entry, and the :class:`BatchReport`.

Results cross process (and machine) boundaries as plain dicts (``to_dict()`` /
``from_dict()``), so that any executor can carry them; ``--report`` writes the report as JSON.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tf2hf import __version__
from tf2hf.errors import OutputError

CONVERTED, SKIPPED, FAILED = "converted", "skipped", "failed"


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
    left_out: list[str] = field(default_factory=list)  # heads present but not written (the task chose)
    extra_weights: list[str] = field(default_factory=list)  # kept aside in extra_weights.safetensors (TF names)
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


def failed_result(key: str, payload: dict[str, Any], reason: str, error: str) -> dict[str, Any]:
    """The result dict of entry ``key`` when its job could not give one (its worker died, its
    task was lost): ``failed`` with ``reason``, ``error`` naming what happened."""
    return EntryResult(
        key=key, source=payload["source"], out=payload["out"], status=FAILED, reason=reason, error=error,
    ).to_dict()


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
