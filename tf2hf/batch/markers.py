"""Whether an existing output is up to date: source fingerprints and the ``.tf2hf-source.json`` marker.

Just before a batch conversion renames its output folder into place, it writes the marker inside
it with the *fingerprint* of what the folder was made from, and a rerun skips every entry whose
output exists with the same fingerprint. The fingerprint is made of:

- the sha256 of the ``.index``: it records the offset, size and crc32c of every tensor, so
  another save (other weights, other slots, another step) has another index;
- the size and modification time of each data shard, not its sha256: hashing a shard reads the
  optimizer slots (two thirds of a fine-tuned checkpoint's bytes) on every rerun, for each
  entry, while a shard copied again, rewritten or touched gets a new mtime. The trade-off: a
  shard changed in place with its size and mtime put back (and an unchanged index) passes
  for the same; such a file fails its crc32c as soon as it is converted again (``--force``);
- the options, a ``config``/``vocab`` option by its content;
- the sha256 of each file beside the checkpoint that a conversion could pick up as its config
  or vocabulary (:data:`SIDE_PATTERNS`): a vocabulary added after an output was made makes it
  stale, since a conversion now would write a tokenizer.

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
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from tf2hf import __version__
from tf2hf.batch.zoo import OPTION_KEYS

MARKER = ".tf2hf-source.json"
MARKER_VERSION = 1
#: Files beside a checkpoint that a conversion may read as its config or vocabulary: every
#: built-in family's patterns (bert_config*.json, *config*.json, vocab*.txt, *.model, ...).
SIDE_PATTERNS = ("*config*.json", "*vocab*.txt", "vocab*.txt", "*.model")


def file_sha256(path: Path) -> str:
    from tf2hf.sources import sha256

    return sha256(path)


def file_identity(path: Path) -> str:
    """What stands for a file in a fingerprint: the sha256 of an index or side file; the size
    and mtime of a data shard (see the module docstring); ``"missing"`` (the conversion says why)."""
    if not path.is_file():
        return "missing"
    if path.name.endswith(".index") or ".data-" not in path.name:
        return file_sha256(path)
    info = path.stat()
    return f"{info.st_size} bytes, mtime {info.st_mtime_ns} ns"


def side_files(folder: Path) -> list[Path]:
    """The files of ``folder`` a conversion could read as config or vocabulary."""
    found = {p for pattern in SIDE_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(found)


def fingerprint(files: Iterable[Path], options: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """sha256 over the identities of the checkpoint's files (by name), of the files beside it
    that a conversion could pick up, and of the options (see the module docstring).

    ``files``: the index and the data shards. A ``config``/``vocab`` option counts by its
    content, not its path; ``hash_sources`` not at all (it changes the model card's record, not
    the conversion). Returns the fingerprint and the per-file identities.
    """
    files = list(files)
    hashes = {p.name: file_identity(p) for p in files}
    if files:
        beside = [p for p in side_files(files[0].parent) if p.name not in hashes]
        hashes.update({p.name: file_identity(p) for p in beside})
    normal = {key: options.get(key) for key in OPTION_KEYS if key != "hash_sources"}
    for key in ("config", "vocab"):
        if normal[key] is not None:
            path = Path(normal[key])
            normal[key] = file_sha256(path) if path.is_file() else f"missing: {path}"
    # An option left out means its default: a run from Python (None) and one from the CLI (the
    # default spelt out) must agree on what is up to date.
    normal["family"] = normal["family"] or "auto"
    normal["dtype"] = normal["dtype"] or "float32"
    normal["format"] = normal["format"] or "safetensors"
    blob = json.dumps({"files": hashes, "options": normal}, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest(), hashes


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
        if not path.is_file() or file_sha256(path) != digest:
            return "stale", marker
    for name, size in (marker.get("outputs") or {}).items():
        path = out / name
        if not path.is_file() or path.stat().st_size != size:
            return "redo", marker
    if verify and not marker.get("verified"):
        return "redo", marker
    return "current", marker


def beside_hashes(paths: Iterable[str | None], source_folder: Path) -> dict[str, str]:
    """The hashes of the config and vocabulary a conversion used, keyed relative to the
    checkpoint's folder when they lie in it (so a zoo moved whole stays current), else absolute."""
    beside = {}
    for path in paths:
        if path:
            beside[_beside_key(Path(path), source_folder)] = file_sha256(Path(path))
    return beside


def _beside_key(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def write_marker(folder: Path, *, fp: str, source: Path, hashes: dict[str, str], options: dict[str, Any],
                 beside: dict[str, str], result: Any) -> None:
    """Write the marker of a finished conversion into its staging ``folder``: ``result`` is the
    :class:`tf2hf.api.ConversionResult` about to be committed."""
    # Listed before the marker is written: the marker records the other files, not itself.
    outputs = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    check = result.verification
    record = {
        "marker": MARKER_VERSION,
        "tf2hf": __version__,
        "fingerprint": fp,
        "source": str(source),
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
