"""What the commands print: plans, results, the family list, and the progress bar."""

from __future__ import annotations

import json
import logging
import sys

import typer

from tf2hf.errors import shown
from tf2hf.sizes import human


#: -q: only errors and the JSON --json asks for (set by the app's callback, once per run).
_settings = {"quiet": False}


class _LogLine(logging.Handler):
    """The library's records below WARNING as ``note: …`` lines on stderr (-v, -vv). Warnings,
    and the notes a result carries, are not repeated here: the commands print them already."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and not getattr(record, "tf2hf_result", False):
            label = "note" if record.levelno >= logging.INFO else "debug"
            out(f"{label}: {record.getMessage()}", err=True)


_handler = _LogLine()


def configure(*, quiet: bool, verbose: int) -> None:
    """-q / -v: what this run prints, and which of the library's log records it shows."""
    _settings["quiet"] = quiet
    log = logging.getLogger("tf2hf")
    log.removeHandler(_handler)
    if verbose and not quiet:
        log.addHandler(_handler)
        log.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    else:
        log.setLevel(logging.NOTSET)


def is_quiet() -> bool:
    return _settings["quiet"]


def out(text: str = "", err: bool = False) -> None:
    """One line of text naming the user's files: escaped and shortened (:func:`shown`); nothing with -q."""
    if not _settings["quiet"]:
        typer.echo(shown(text), err=err)


def print_data(data) -> None:
    """--json: always printed, -q or not (it was asked for)."""
    typer.echo(json.dumps(data, indent=2))  # JSON escapes control characters itself


def print_json(result) -> None:
    print_data(result.to_dict())


class NoDisplay:
    """``batch -q``: nothing while it runs."""

    def __enter__(self) -> "NoDisplay":
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def event(self, event) -> None:
        pass

    def finished(self, result) -> None:
        pass


def _dropped_summary(dropped: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{v['count']} {k} ({human(v['bytes'])})" for k, v in sorted(dropped.items())) or "nothing"


def print_plan(result, detected: bool = False) -> None:
    """``convert --dry-run``: where everything comes from and goes, before any data is read."""
    plan = result.plan
    out(f"source:   {result.source}")
    out(f"family:   {result.family} ({plan.family.description}){' (detected)' if detected else ''}")
    out(f"config:   {result.config_path}")
    out(f"vocab:    {result.vocab_path or '(none)'}")
    out(f"parts:    {', '.join(plan.parts)}")
    out(f"target:   {result.target_class}  ({result.tensors} tensors, {result.parameters:,} parameters, {human(result.output_bytes)} as {result.dtype})")
    out("tensors per part:")
    for part, count in sorted(result.tensors_per_part.items()):
        out(f"  {part:<12} {count}")
    if plan.tied:
        out("tied (not written, transformers ties them on load):")
        for key, to in plan.tied.items():
            out(f"  {key} = {to}")
    if result.dropped:
        _print_dropped(result, plan)
    for name, why in result.discarded:
        out(f"  discarded {name}: {why}")
    for note in result.notes:
        out(f"note: {note}")
    for assumption in getattr(result, "assumptions", []):
        out(f"assumed: {assumption}")
    for warning in result.warnings:
        out(f"warning: {warning}")


def _print_dropped(result, plan) -> None:
    """Counts and bytes per kind, then each reason once with a folded example name."""
    out("dropped:")
    for kind, entry in sorted(result.dropped.items()):
        out(f"  {kind:<18} {entry['count']:>6} variables  {human(entry['bytes'])}")
    from tf2hf.engine.folding import fold

    reasons: dict[str, list[str]] = {}
    for drop in plan.dropped:
        reasons.setdefault(f"{drop.kind}: {drop.why}", []).append(drop.name)
    for why, names in reasons.items():
        out(f"    {why} — e.g. {fold(names)[0]}")


def print_result(result, detected: bool = False) -> None:
    """A finished conversion: warnings on stderr, the summary on stdout."""
    for warning in result.warnings:
        out(f"warning: {warning}", err=True)
    out(f"converted {result.source} -> {result.out}")
    if detected:
        out(f"  family: {result.family} (detected from the variable names)")
    out(f"  {result.target_class}: {result.tensors} tensors, {result.parameters:,} parameters, {human(result.output_bytes)} {result.format} ({result.dtype})")
    out(f"  dropped: {_dropped_summary(result.dropped)}")
    for note in result.notes:
        out(f"  note: {note}")
    for assumption in getattr(result, "assumptions", []):
        out(f"  assumed: {assumption}")
    check = result.verification
    if check is None:
        out("  verification: skipped (--no-verify)")
    else:
        out(f"  verification: max abs diff {check['worst']:.3g} vs the TF graph (tolerance {check['tolerance']:.3g}, activation {check['gelu']}"
            f"{', ' + check['settings'] if check.get('settings') else ''}): passed")
    out(f"  took {result.seconds:.2f} s")


def print_slimmed(done) -> None:
    out(f"slimmed {done.source} -> {done.out}")
    out(f"  kept {done.variables_after} of {done.variables_before} variables; dropped {_dropped_summary(done.dropped)}")
    share = f" ({100 * done.bytes_after / done.bytes_before:.0f}%)" if done.bytes_before else ""
    out(f"  size: {human(done.bytes_before)} -> {human(done.bytes_after)}{share}")
    if done.state_file:
        out(f"  wrote {done.state_file} naming the new checkpoint")
    for copied in getattr(done, "copied", []):
        out(f"  copied {copied} (needed to convert it)")


def print_families(families, origin, builtin: str) -> None:
    """``tf2hf architectures``: each family, where it comes from, its targets and an example."""
    for family in families:
        name = family.group or family.name
        where = "built in" if origin(family.name) == builtin else f"plugin package {origin(family.name)}"
        out(f"{family.name}: {family.description}")
        choose = f" {family.variant_option} {family.variant}" if family.variant else ""
        out(f"  from: {where}; convert with: tf2hf convert {name}{choose} (or auto)")
        lines: list[str] = []  # two targets may differ only in base parts (ELECTRA's tied/untied generator)
        for target in family.targets:
            heads = [p.label or p.name for p in family.parts if p.name in target.parts - family.base_parts]
            line = f"  {target.cls:<32} heads: {', '.join(heads) or 'none (base model)'}"
            if line not in lines:
                lines.append(line)
                out(line)
        config = family.config_names[0].replace("*", "")
        out(f"  example: tf2hf convert {name}{choose} --tf model.ckpt-1000 --config {config} --out {family.name}-model")


def families_data(families, origin, builtin: str) -> list[dict]:
    """``tf2hf architectures --json``: what the text shows, as data."""
    data = []
    for family in families:
        name = family.group or family.name
        choose = [family.variant_option, family.variant] if family.variant else []
        data.append({
            "name": family.name,
            "description": family.description,
            "origin": "built in" if origin(family.name) == builtin else origin(family.name),
            "convert": ["tf2hf", "convert", name, *choose],
            "model_type": family.model_type,
            "targets": [
                {"class": target.cls, "task": target.task or None,
                 "heads": [p.label or p.name for p in family.parts if p.name in target.parts - family.base_parts]}
                for target in family.targets
            ],
        })
    return data


class ProgressBar:
    """A rich progress bar of the bytes written, on stderr when it is a terminal (else nothing).

    ``update`` is the callback for :func:`tf2hf.api.convert` (None when nothing is shown). Used as
    a context manager, the bar is gone again however the conversion ends.
    """

    def __init__(self, show: bool) -> None:
        self._bar = None
        self.update = None
        if not (show and sys.stderr.isatty()) or is_quiet():
            return
        # Imported only when a bar is shown, so that no other command pays for it.
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        bar = Progress(TextColumn("{task.description:<9}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True)
        task = bar.add_task("planning", total=None)

        def update(done: int, total: int, phase: str) -> None:
            # The phase convert() reports: planning, writing, verifying (the bar stays full then).
            bar.update(task, completed=done, total=total or None, description=phase)

        self._bar, self.update = bar, update

    def __enter__(self) -> "ProgressBar":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar:
            self._bar.stop()
