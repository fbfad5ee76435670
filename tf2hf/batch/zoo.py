"""Finding the checkpoints of a model zoo, or reading them from a manifest.

A zoo is a folder tree. Every folder that holds ``*.index`` files is a checkpoint folder; its
latest step is converted (``--all-steps``: every checkpoint in it), with the config and the
vocabulary found beside it as ``tf2hf convert`` finds them. The output of a checkpoint folder
``ZOO/a/b`` is ``OUT_ROOT/a/b`` (``OUT_ROOT/a/b/<step>`` with ``--all-steps``).

Nothing outside the zoo is read by discovery: symbolic links to folders are not followed, and a
checkpoint folder where a file is a symbolic link leading outside the zoo is skipped with the
reason. Output names never contain ``..``; the batch runner checks again, on the real paths,
that every output lands inside OUT_ROOT.

A manifest (JSON, or YAML when PyYAML is installed) lists entries explicitly::

    {"defaults": {"gelu": "tanh"},
     "entries": [{"source": "runs/mrpc/model.ckpt-343", "out": "mrpc", "family": "bert"},
                 {"source": "albert_zh/albert_model.ckpt", "target": "bert", "vocab": "albert_zh/vocab.txt"}]}

(a plain list of entries works too). Relative paths are relative to the manifest's folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from tf2hf.errors import AmbiguousCheckpointError, ManifestError, Tf2hfError, ZooError

#: Per-entry options a manifest (or ``convert_many``) may set, as ``tf2hf.convert`` names them.
OPTION_KEYS = ("family", "config", "vocab", "target", "task", "gelu", "lowercase", "dtype", "format", "hash_sources")
_STEP = re.compile(r"(.*)-(\d+)")
_CHECKPOINT_FILE = re.compile(r".*(\.index|\.meta|\.data-\d{5}-of-\d{5})")
MAX_MANIFEST_BYTES = 16 << 20


@dataclass
class ZooEntry:
    """One checkpoint to convert and where its output goes (relative to OUT_ROOT).

    ``status``/``reason`` are set when discovery already knows the entry will not be converted
    (``"skipped"``: a symbolic link leads outside the zoo; ``"failed"``: an ambiguous folder).
    """

    source: str
    out: str
    family: str | None = None
    config: str | None = None
    vocab: str | None = None
    target: str | None = None
    task: str | None = None
    gelu: str | None = None
    lowercase: bool | None = None
    dtype: str | None = None
    format: str | None = None
    hash_sources: bool | None = None  # full sha256 of the data shards in the model card
    status: str | None = None
    reason: str | None = None
    note: str | None = None

    def options(self) -> dict[str, Any]:
        """The options set on this entry (unset ones are left to the batch defaults)."""
        return {key: getattr(self, key) for key in OPTION_KEYS if getattr(self, key) is not None}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_out_name(out: str, what: str) -> str:
    """A relative output name with no ``..``, normalised to forward slashes ("" = OUT_ROOT)."""
    text = str(out).replace("\\", "/")
    path = PurePosixPath(text)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", text):
        raise ManifestError(f"{what}: out {out!r} is an absolute path; give a name relative to the output root")
    if any(part == ".." for part in path.parts):
        raise ManifestError(f"{what}: out {out!r} contains '..'; outputs stay inside the output root")
    return "" if str(path) == "." else str(path)


def check_inside(out: Path, out_root: Path) -> None:
    """Refuse an output path that leaves the output root, lexically or through symbolic links."""
    root = os.path.realpath(out_root)
    real = os.path.realpath(out)
    if not _inside(real, root):
        raise ZooError(f"{out}: leads outside the output root {out_root} (to {real}); nothing was written")


def check_out_root(out_root: Path) -> None:
    """The output root is a folder, or will be one: found before any entry is converted, instead
    of every entry failing on it in turn."""
    out_root = Path(out_root)
    if os.path.lexists(out_root) and not out_root.is_dir():
        raise ZooError(f"{out_root}: exists and is not a folder; --out is the folder the outputs go into: choose another --out")
    for parent in out_root.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise ZooError(f"{out_root}: {parent} is not a folder, so nothing can be written below it; choose another --out")
            break


def check_report_path(report: Path) -> None:
    """``--report`` can be written once the batch ends: its folder exists and it is not a folder.
    Checked first, so that a typo is not found only after converting everything."""
    report = Path(report)
    if report.is_dir():
        raise ZooError(f"{report}: is a folder; --report takes the path of a JSON file to write")
    if not report.parent.is_dir():
        raise ZooError(f"{report}: the folder {report.parent} does not exist; create it or choose another --report path")
    if not os.access(report.parent, os.W_OK):
        raise ZooError(f"{report}: the folder {report.parent} is not writable; choose another --report path")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


# --- discovery ------------------------------------------------------------------------------


def _escaping_links(folder: Path, names: Iterable[str], zoo_real: str) -> list[str]:
    """Files among ``names`` that are symbolic links whose target is outside the zoo."""
    escaping = []
    for name in names:
        path = folder / name
        if os.path.islink(path) and not _inside(os.path.realpath(path), zoo_real):
            escaping.append(name)
    return escaping


def _relevant_files(prefix: str, filenames: list[str]) -> list[str]:
    """Files a conversion of ``prefix`` may read: its own files and every non-checkpoint file."""
    own = [f for f in filenames if f == prefix + ".index" or re.fullmatch(re.escape(prefix) + r"\.data-\d{5}-of-\d{5}", f)]
    side = [f for f in filenames if not _CHECKPOINT_FILE.fullmatch(f)]
    return own + side


def _choose(folder: Path, prefixes: list[str], all_steps: bool) -> tuple[list[tuple[str, str | None]], str | None, str | None]:
    """(prefix, step subfolder or None) pairs to convert, an error for the folder, a note."""
    if all_steps:
        # Always a subfolder, so that outputs keep their place when a folder gains a step.
        chosen = []
        for prefix in prefixes:
            match = _STEP.fullmatch(prefix)
            chosen.append((prefix, match.group(2) if match else prefix))
        return chosen, None, None
    if len(prefixes) == 1:
        return [(prefixes[0], None)], None, None
    stepped = [(int(m.group(2)), p) for p in prefixes if (m := _STEP.fullmatch(p))]
    if stepped:
        latest = max(step for step, _ in stepped)
        at_latest = [p for step, p in stepped if step == latest]
        if len(at_latest) > 1:
            return [], f"{folder}: several checkpoints at step {latest} ({', '.join(at_latest)}); list the one you want in a --manifest, or pass --all-steps", None
        others = [p for p in prefixes if p != at_latest[0]]
        return [(at_latest[0], None)], None, f"latest of {len(prefixes)} checkpoints (also: {', '.join(others[:3])}{' …' if len(others) > 3 else ''}); --all-steps converts every one"
    from tf2hf.tfckpt.resolve import resolve_prefix

    try:
        prefix = resolve_prefix(folder)  # the folder's `checkpoint` file may name one of them
    except AmbiguousCheckpointError as exc:
        return [], f"{exc} (or list it in a --manifest, or pass --all-steps)", None
    except Tf2hfError as exc:
        return [], str(exc), None
    return [(prefix.name, None)], None, None


def discover(zoo: str | os.PathLike[str], *, all_steps: bool = False, exclude: Iterable[str | os.PathLike[str]] = ()) -> list[ZooEntry]:
    """Every checkpoint under ``zoo``, sorted by output name; ``exclude`` lists folders not to
    walk into (the output root, when it lies inside the zoo)."""
    root = Path(zoo).expanduser()
    if not root.is_dir():
        what = "does not exist" if not os.path.lexists(root) else "is not a folder"
        raise ZooError(f"{root}: {what}; pass the folder that holds the checkpoints")
    zoo_real = os.path.realpath(root)
    excluded = {os.path.realpath(p) for p in exclude}
    entries: list[ZooEntry] = []
    unreadable: list[OSError] = []
    # A folder that cannot be listed may hold checkpoints: it is a failed entry, never left out
    # of the summary, the report and the exit status (os.walk ignores such errors by default).
    for dirpath, dirnames, filenames in os.walk(zoo_real, followlinks=False, onerror=unreadable.append):
        dirnames[:] = sorted(d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in excluded and not os.path.islink(os.path.join(dirpath, d)))
        filenames.sort()
        folder = Path(dirpath)
        prefixes = sorted(f[: -len(".index")] for f in filenames if f.endswith(".index") and f != ".index")
        if not prefixes:
            continue
        rel = Path(os.path.relpath(dirpath, zoo_real)).as_posix()
        rel = "" if rel == "." else rel
        chosen, error, note = _choose(folder, prefixes, all_steps)
        if error is not None:
            entries.append(ZooEntry(source=str(folder), out=rel, status="failed", reason=error))
            continue
        for prefix, sub in chosen:
            out = f"{rel}/{sub}" if rel and sub else (sub or rel)
            entry = ZooEntry(source=str(folder / prefix), out=out, note=note)
            escaping = _escaping_links(folder, _relevant_files(prefix, filenames), zoo_real)
            if escaping:
                entry.status = "skipped"
                entry.reason = f"{folder / escaping[0]}: a symbolic link leading outside the zoo ({os.path.realpath(folder / escaping[0])}); not read"
            entries.append(entry)
    # Added after the conflict check: an unreadable folder is known to write no output.
    entries = _mark_conflicts(sorted(entries, key=lambda e: e.out))
    return sorted(entries + [_unreadable_entry(error, zoo_real) for error in unreadable], key=lambda e: e.out)


def _unreadable_entry(error: OSError, zoo_real: str) -> ZooEntry:
    folder = error.filename or zoo_real
    rel = Path(os.path.relpath(folder, zoo_real)).as_posix()
    return ZooEntry(
        source=str(folder), out="" if rel == "." else rel, status="failed",
        reason=f"{folder}: cannot read this folder ({error.strerror or error}), so its checkpoints were not looked for; "
        "make it readable (or move it out of the zoo) and run again",
    )


def _mark_conflicts(entries: list[ZooEntry]) -> list[ZooEntry]:
    """An output folder cannot hold another entry's output (it is renamed into place whole)."""
    outs = [PurePosixPath(e.out) if e.out else None for e in entries]
    for k, entry in enumerate(entries):
        if entry.status is not None:
            continue
        mine = outs[k]
        nested = [
            other.source for j, other in enumerate(entries)
            if j != k and (mine is None or (outs[j] is not None and (outs[j] == mine or mine in outs[j].parents)))
        ]
        if nested:
            where = f"the output folder {entry.out or '(the output root itself)'}"
            entry.status = "failed"
            entry.reason = (
                f"{entry.source}: {where} would also hold the output of {nested[0]}"
                f"{f' and {len(nested) - 1} more' if len(nested) > 1 else ''}; list it in a --manifest with its own out name"
            )
    return entries


# --- manifests ------------------------------------------------------------------------------


def _parse_manifest(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: {size} bytes is too large for a manifest; pass the manifest file")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror or exc}); check the path") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text; save the manifest as UTF-8") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ManifestError(f"{path}: reading a YAML manifest needs PyYAML: pip install pyyaml (or write the manifest as JSON)") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = str(exc).replace("\n", " ")
            raise ManifestError(f"{path}: not valid YAML ({problem}); fix the manifest") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); fix the manifest (YAML needs a .yaml or .yml name)") from None


def _check_options(raw: dict, what: str, allowed: tuple[str, ...]) -> dict:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ManifestError(f"{what}: unknown key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(allowed)}")
    for key, value in raw.items():
        if key in ("lowercase", "hash_sources"):
            if value is not None and not isinstance(value, bool):
                raise ManifestError(f"{what}: {key} must be true or false, not {value!r}")
        elif value is not None and not isinstance(value, str):
            raise ManifestError(f"{what}: {key} must be a string, not {value!r}")
    return raw


def load_manifest(path: str | os.PathLike[str]) -> list[ZooEntry]:
    """The entries of a manifest, with paths made absolute and output names checked."""
    path = Path(path).expanduser()
    data = _parse_manifest(path)
    defaults: dict = {}
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"entries", "defaults"})
        if unknown or "entries" not in data:
            raise ManifestError(f"{path}: a manifest object has 'entries' (a list) and optionally 'defaults'; found {', '.join(map(repr, sorted(data))) or 'nothing'}")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise ManifestError(f"{path}: 'defaults' must be an object of options ({', '.join(OPTION_KEYS)})")
        _check_options(defaults, f"{path}: defaults", OPTION_KEYS)
        data = data["entries"]
    if not isinstance(data, list) or not data:
        raise ManifestError(f"{path}: no entries; a manifest lists checkpoints as [{{\"source\": \"...\", \"out\": \"...\"}}, ...]")
    base = path.parent.absolute()
    entries: list[ZooEntry] = []
    for number, raw in enumerate(data, start=1):
        what = f"{path}: entry {number}"
        if isinstance(raw, str):
            raw = {"source": raw}
        if not isinstance(raw, dict):
            raise ManifestError(f"{what}: expected an object with 'source' (and optionally 'out', {', '.join(OPTION_KEYS)})")
        raw = dict(raw)
        if "tf" in raw and "source" not in raw:
            raw["source"] = raw.pop("tf")
        _check_options(raw, what, ("source", "out", *OPTION_KEYS))
        if not raw.get("source"):
            raise ManifestError(f"{what}: no 'source'; give the checkpoint's folder or prefix")
        merged = {**defaults, **raw}
        for key in ("source", "config", "vocab"):
            if merged.get(key):
                merged[key] = str(base / Path(merged[key]).expanduser())
        source = Path(merged["source"])
        folder = source if source.is_dir() else source.parent
        if merged.get("out") is None:
            try:
                merged["out"] = folder.absolute().relative_to(base).as_posix()
            except ValueError:
                merged["out"] = folder.name
        merged["out"] = check_out_name(merged["out"], what)
        known = {f.name for f in fields(ZooEntry)}
        entries.append(ZooEntry(**{k: v for k, v in merged.items() if k in known}))
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.out in seen:
            raise ManifestError(f"{path}: {seen[entry.out]} and {entry.source} both write to {entry.out or 'the output root'}; give each its own 'out'")
        seen[entry.out] = entry.source
    return _mark_conflicts(entries)
