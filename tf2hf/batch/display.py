"""What ``tf2hf batch`` shows while it runs and when it ends.

On a terminal (stderr is a TTY): a live rich display with an overall bar and one bar per model
being converted (bytes written). Otherwise: one plain line per finished entry on stdout, nothing
else, so logs stay readable. The summary follows on stdout: a table on a terminal, plain lines
otherwise; when the display has listed every entry already, only the totals.
An entry's warnings (no vocabulary found, special tokens missing …) follow its line, indented,
in both. Keys, paths and reasons come from the user's disk: they are shown escaped and
shortened (:func:`tf2hf.errors.shown`), and never read as rich markup.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tf2hf.batch.events import Event, Progress, Started
from tf2hf.batch.results import CONVERTED, FAILED, SKIPPED, BatchReport, EntryResult
from tf2hf.errors import shown
from tf2hf.sizes import human


def _detail(result: EntryResult, size: bool = True) -> str:
    if result.status == CONVERTED:
        parts = [result.target_class or "?"] + ([human(result.output_bytes)] if size else [])
        if result.verified:
            parts.append(f"max diff {result.max_abs_diff:.2g}" if result.max_abs_diff is not None else "verified")
        elif result.verified is None:
            parts.append("not verified")
        parts.append(f"{result.seconds:.1f} s")
        text = ", ".join(parts)
        return f"{text} ({result.note})" if result.note else text
    return result.reason or ""


def result_line(result: EntryResult) -> str:
    return shown(f"{result.status:<9} {result.key}: {_detail(result)}")


def warning_lines(result: EntryResult) -> list[str]:
    """The entry's warnings, one indented line each, as ``tf2hf convert`` prints them."""
    return [shown(f"  warning: {warning}") for warning in result.warnings]


class PlainDisplay:
    """One line per finished entry on ``stream``."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        # stdout, where the summary goes: a log that captures one stream gets both, in order.
        self.stream = stream or sys.stdout

    def __enter__(self) -> "PlainDisplay":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def event(self, event: Event) -> None:
        pass

    def finished(self, result: EntryResult) -> None:
        self.done += 1
        width = len(str(self.total))
        print(f"[{self.done:>{width}}/{self.total}] {result_line(result)}", file=self.stream, flush=True)
        for line in warning_lines(result):
            print(line, file=self.stream, flush=True)


class RichDisplay:
    """Overall progress plus a bar per running model, on stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress as Bars, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bars = Bars(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.total = total
        self.done = 0
        self.counts = {CONVERTED: 0, SKIPPED: 0, FAILED: 0}
        self.overall = self.bars.add_task("all", total=total, detail=self._overall())
        self.tasks: dict[str, int] = {}
        self.finished_keys: set[str] = set()

    def _overall(self) -> str:
        return f"{self.done}/{self.total} models  ({self.counts[CONVERTED]} converted, {self.counts[SKIPPED]} skipped, {self.counts[FAILED]} failed)"

    def __enter__(self) -> "RichDisplay":
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def _task(self, key: str) -> int | None:
        if key in self.finished_keys:
            return None
        if key not in self.tasks:
            self.tasks[key] = self.bars.add_task(key, total=None, detail="starting")
        return self.tasks[key]

    def event(self, event: Event) -> None:
        if isinstance(event, Started):
            self._task(event.key)
        elif isinstance(event, Progress):
            task = self._task(event.key)
            if task is None:
                return
            if event.total:
                detail = f"{event.phase} {human(event.done)} / {human(event.total)}"
                self.bars.update(task, completed=event.done, total=event.total, detail=detail)
            else:
                self.bars.update(task, detail=event.phase)

    def finished(self, result: EntryResult) -> None:
        self.finished_keys.add(result.key)
        task = self.tasks.pop(result.key, None)
        if task is not None:
            self.bars.remove_task(task)
        self.done += 1
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        self.bars.update(self.overall, completed=self.done, detail=self._overall())
        style = {CONVERTED: "green", SKIPPED: "cyan", FAILED: "red"}.get(result.status, "")
        from rich.markup import escape

        text = escape(shown(f"{result.key}: {_detail(result)}"))
        self.console.print(f"[{style}]{result.status:<9}[/{style}] {text}", markup=True, highlight=False, soft_wrap=True)
        for line in warning_lines(result):
            self.console.print(f"[yellow]{escape(line)}[/yellow]", markup=True, highlight=False, soft_wrap=True)


def make_display(total: int):
    """The live display on a terminal, plain lines otherwise."""
    return RichDisplay(total) if sys.stderr.isatty() else PlainDisplay(total)


def summary_lines(report: BatchReport) -> list[str]:
    counts = report.counts
    lines = [line for e in report.entries for line in (result_line(e), *warning_lines(e))]
    lines.append(
        f"{counts[CONVERTED]} converted, {counts[SKIPPED]} skipped, {counts[FAILED]} failed "
        f"in {report.seconds:.1f} s with {report.workers} worker(s); outputs in {shown(report.out_root)}"
    )
    return lines


def print_summary(report: BatchReport, stream: TextIO | None = None, *, listed: bool = False) -> None:
    """A table on a terminal; otherwise one plain line per entry and a totals line. ``listed``:
    the display showed each entry as it finished, so only the totals line is printed."""
    stream = stream or sys.stdout
    if listed:
        print(summary_lines(report)[-1], file=stream)
        return
    if not stream.isatty():
        for line in summary_lines(report):
            print(line, file=stream)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(shown(f"tf2hf batch: {report.out_root}")), title_justify="left")
    table.add_column("entry", overflow="fold")
    table.add_column("status")
    table.add_column("class / reason", overflow="fold")
    table.add_column("size", justify="right")
    style = {CONVERTED: "green", SKIPPED: "cyan", FAILED: "red"}
    for entry in report.entries:
        size = human(entry.output_bytes) if entry.status == CONVERTED else ""
        detail = "\n".join([shown(_detail(entry, size=False)), *(line.strip() for line in warning_lines(entry))])
        table.add_row(escape(shown(entry.key)), f"[{style[entry.status]}]{entry.status}[/]", escape(detail), size)
    console = Console(file=stream)
    console.print(table)
    counts = report.counts
    console.print(
        f"{counts[CONVERTED]} converted, {counts[SKIPPED]} skipped, {counts[FAILED]} failed "
        f"in {report.seconds:.1f} s with {report.workers} worker(s)", highlight=False,
    )
