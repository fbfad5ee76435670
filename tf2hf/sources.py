"""Finding and loading the files that come with a checkpoint: its config and vocabulary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from tf2hf.errors import ConfigError, Tf2hfError

MAX_CONFIG_BYTES = 1024 * 1024


def find_beside(folder: Path, patterns: Sequence[str]) -> tuple[Path | None, list[Path]]:
    """The first pattern that matches exactly one file wins; otherwise return all candidates."""
    candidates: list[Path] = []
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file())
        if len(hits) == 1:
            return hits[0], hits
        candidates.extend(h for h in hits if h not in candidates)
    return None, candidates


def read_limited(path: Path, limit: int, error: type[Tf2hfError], what: str, option: str) -> bytes:
    """The bytes of a small side file (config, vocabulary), refusing absurd sizes before reading."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise error(f"{path}: {size} bytes is too large for {what} (limit {limit}); pass the right {option}")
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror}); pass {option} with a readable file") from None


def load_config(path: Path) -> dict:
    path = Path(path)
    raw = read_limited(path, MAX_CONFIG_BYTES, ConfigError, "a model config", "--config")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); pass the model's JSON config") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a JSON object, not {type(data).__name__}; pass the model's JSON config")
    return data


def sha256(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
