"""Whether an existing output is up to date: source fingerprints and the ``.tf2hf-source.json`` marker.

Just before a batch conversion renames its output folder into place, it writes the marker inside
it with the *fingerprint* of what the folder was made from: the sha256 of the index and every
data shard, and the options. A completed folder therefore proves itself, and a rerun skips every
entry whose output exists with the same fingerprint.

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


def file_sha256(path: Path) -> str:
    from tf2hf.sources import sha256

    return sha256(path)


def fingerprint(files: Iterable[Path], options: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """sha256 over the hashes of the checkpoint's files (by name) and the options.

    A ``config``/``vocab`` option counts by its content, not its path. Returns the fingerprint
    and the per-file hashes (a missing file hashes as ``"missing"``: the conversion will say why).
    """
    hashes = {p.name: (file_sha256(p) if p.is_file() else "missing") for p in files}
    normal = {key: options.get(key) for key in OPTION_KEYS}
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
