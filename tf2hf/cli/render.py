"""What the commands print: plans, results, the family list, and the progress bar."""

from __future__ import annotations

import json
import sys

import typer

from tf2hf.sizes import human

out = typer.echo


def print_json(result) -> None:
    out(json.dumps(result.to_dict(), indent=2))


def _dropped_summary(dropped: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{v['count']} {k} ({human(v['bytes'])})" for k, v in sorted(dropped.items())) or "nothing"


def print_plan(result) -> None:
    """``convert --dry-run``: where everything comes from and goes, before any data is read."""
    plan = result.plan
    out(f"source:   {result.source}")
    out(f"family:   {result.family} ({plan.family.description})")
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


def print_result(result) -> None:
    """A finished conversion: warnings on stderr, the summary on stdout."""
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    out(f"converted {result.source} -> {result.out}")
    out(f"  {result.target_class}: {result.tensors} tensors, {result.parameters:,} parameters, {human(result.output_bytes)} {result.format} ({result.dtype})")
    out(f"  dropped: {_dropped_summary(result.dropped)}")
    for note in result.notes:
        out(f"  note: {note}")
    check = result.verification
    if check is None:
        out("  verification: skipped (--no-verify)")
    else:
        out(f"  verification: max abs diff {check['worst']:.3g} vs the TF graph (tolerance {check['tolerance']:.3g}, activation {check['gelu']}): passed")
    out(f"  took {result.seconds:.2f} s")


def print_slimmed(done) -> None:
    out(f"slimmed {done.source} -> {done.out}")
    out(f"  kept {done.variables_after} of {done.variables_before} variables; dropped {_dropped_summary(done.dropped)}")
    share = f" ({100 * done.bytes_after / done.bytes_before:.0f}%)" if done.bytes_before else ""
    out(f"  size: {human(done.bytes_before)} -> {human(done.bytes_after)}{share}")
    if done.state_file:
        out(f"  wrote {done.state_file} naming the new checkpoint")


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


class ProgressBar:
    """A rich progress bar of the bytes written, on stderr when it is a terminal (else nothing).

    ``update`` is the callback for :func:`tf2hf.api.convert` (None when nothing is shown). Used as
    a context manager, the bar is gone again however the conversion ends.
    """

    def __init__(self, show: bool) -> None:
        self._bar = None
        self.update = None
        if not (show and sys.stderr.isatty()):
            return
        # Imported only when a bar is shown, so that no other command pays for it.
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        bar = Progress(TextColumn("writing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True)
        task = bar.add_task("write", total=None)

        def update(done: int, total: int, key: str) -> None:
            bar.update(task, completed=done, total=total)

        self._bar, self.update = bar, update

    def __enter__(self) -> "ProgressBar":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar:
            self._bar.stop()
