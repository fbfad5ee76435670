"""Paths and small helpers shared by the tests."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Callable, Iterable

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared" / "checkpoints"

# No test may reach the network: transformers and the hub client stay offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def shared(*parts: str) -> Path:
    """A path under ../shared/checkpoints, or skip the test when that folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (the shared checkpoints live beside the repository)")
    return path


def fixture(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"fixture {path} is missing; run fixtures/make_fixtures.py")
    return path


def bert_index_folders() -> list[Path]:
    """Every Google BERT checkpoint under real-index/ (ALBERT folders are named so)."""
    base = SHARED / "real-index"
    if not base.exists():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and "albert" not in p.name.lower() and not _object_based(p))


def _object_based(folder: Path) -> bool:
    """TF2 object-based (Keras) checkpoints hold this key; they are not Google BERT's layout."""
    return any(b"_CHECKPOINTABLE_OBJECT_GRAPH" in index.read_bytes() for index in folder.glob("*.index"))


@dataclass
class Var:
    """A stand-in for the reader's TensorInfo in planner tests: a shape and a dtype."""

    shape: tuple
    dtype: str = "float32"

    @property
    def size(self) -> int:
        return 4 * prod(self.shape)


def edit_rules(family, edit: Callable[[list], None], parts: Iterable[str] | None = None):
    """A copy of ``family`` whose rules went through ``edit`` (in place on a list), in every
    part or only in ``parts``: a table broken on purpose, to show verification catches it."""
    only = None if parts is None else set(parts)
    changed = []
    for part in family.parts:
        rules = list(part.rules)
        if only is None or part.name in only:
            edit(rules)
        changed.append(dataclasses.replace(part, rules=tuple(rules)))
    return dataclasses.replace(family, parts=tuple(changed))
