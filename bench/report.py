"""The Markdown report of bench/run.py: the tables, the targets met or missed, docs/PERFORMANCE.md."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from measure import IMPORT_FLOOR, LABELS, MIB, ROOT, SLOT_KINDS, TARGET_KIND, ZOO_SIZE, Row, quiet

def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "ram": ram, "cpu": cpu}


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def version_line() -> str:
    import tf2hf

    commit = quiet(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip() or "?"
    dirty = quiet(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    return f"tf2hf {tf2hf.__version__} (commit {commit}{', with uncommitted changes' if dirty else ''}), Python {platform.python_version()}"


def mib(n: int | None) -> str:
    return "–" if n is None else f"{n / MIB:,.0f} MiB"


def secs(x: float) -> str:
    return f"{x:.2f} s"


def ratio(a: Row | None, b: Row | None, what: str = "wall") -> str:
    if a is None or b is None or not a.ok or not b.ok:
        return "–"
    if what == "wall":
        return f"{a.median / b.median:.3f}"
    return f"{a.rss / b.rss:.3f}"


def cell(row: Row | None) -> list[str]:
    if row is None:
        return ["–"] * 5
    if row.missing:
        return [row.missing, "", "", "", ""]
    if row.failed:
        return [f"FAILED ({row.failed})", "", "", "", ""]
    return [secs(row.median), secs(row.best), secs(row.cpu), mib(row.rss), mib(row.output_bytes)]


def cold_cell(row: Row, weights: int) -> list[str]:
    """Wall time and bytes read from disk of the cold run, the latter also as × the weights."""
    run = row.cold
    if run is None or run.code != 0:
        return ["–", "–"]
    return [secs(run.wall), f"{mib(run.read)} ({run.read / weights:.2f} ×)"]


class Verdicts:
    def __init__(self) -> None:
        self.lines: list[list[str]] = []

    def check(self, target: str, measured: str, passed: bool | None) -> None:
        verdict = "n/a" if passed is None else ("PASS" if passed else "MISS")
        self.lines.append([target, measured, verdict])


def report(args, info: dict, started: str, finished_load: str, start_load: str, conversions: dict,
           largest: dict, sizes: dict, extra: dict[str, Row], weights: dict[str, int]) -> str:
    lines = [
        f"Measured {started} by `python bench/run.py {' '.join(args.argv)}`".rstrip() + ".",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM; load average "
        f"{start_load} at the start, {finished_load} at the end (1, 5, 15 min). {version_line()}. "
        f"{args.runs} timed run(s) of each command after {args.warmup} warm-up run(s), interleaved.",
        "",
        "| checkpoint | command | wall (median) | wall (min) | CPU (median) | peak RSS | output | tf2hf / old (wall) | tf2hf / floor (wall) | cold: wall | cold: read from disk (× weights) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rows in conversions.items():
        old, floor = rows.get("old converter"), rows.get("floor: cp")
        for name, row in rows.items():
            vs_old = ratio(row, old) if name.startswith("tf2hf") else ""
            vs_floor = ratio(row, floor) if name.startswith("tf2hf") else ""
            label = f"{LABELS[kind]} ({sizes[kind] / MIB:,.0f} MiB data, {weights[kind] / MIB:,.0f} MiB weights)" if name == next(iter(rows)) else ""
            cold = cold_cell(row, weights[kind]) if name.startswith("tf2hf") else ["", ""]
            lines.append("| " + " | ".join([label, f"`{name}`" if not name.startswith("floor") else name, *cell(row), vs_old, vs_floor, *cold]) + " |")
    lines += ["", "| command | wall (median) | wall (min) | CPU (median) | peak RSS | output |", "|---|---|---|---|---|---|"]
    for name, row in extra.items():
        lines.append("| " + " | ".join([f"`{name}`", *cell(row)]) + " |")

    verdicts = Verdicts()
    rows = conversions.get(TARGET_KIND, {})
    old, nv, v, floor = (rows.get(k) for k in ("old converter", "tf2hf convert --no-verify", "tf2hf convert", "floor: cp"))
    if old and nv and old.ok and nv.ok:
        verdicts.check("`convert --no-verify` wall ≤ 1/8 of the old converter's", f"{nv.median / old.median:.3f}", nv.median <= old.median / 8)
        verdicts.check("peak RSS of `convert --no-verify` ≤ 1/4 of the old converter's", f"{nv.rss / old.rss:.3f}", nv.rss <= old.rss / 4)
    if old and v and old.ok and v.ok:
        verdicts.check("`convert` (verified) wall ≤ 1/2 of the old converter's", f"{v.median / old.median:.3f}", v.median <= old.median / 2)
        verdicts.check("peak RSS of `convert` (verified) ≤ 1/4 of the old converter's", f"{v.rss / old.rss:.3f}", v.rss <= old.rss / 4)
    if nv and floor and nv.ok and floor.ok:
        limit = 3 * floor.median + 0.5
        verdicts.check("`convert --no-verify` wall ≤ 3 × floor + 0.5 s", f"{secs(nv.median)} vs {secs(limit)}", nv.median <= limit)
    for kind in (k for k in SLOT_KINDS if k in conversions):  # issue 17's targets
        kind_rows = conversions[kind]
        old, nv, v, floor = (kind_rows.get(k) for k in ("old converter", "tf2hf convert --no-verify", "tf2hf convert", "floor: cp"))
        if nv and nv.cold is not None and nv.cold.code == 0:
            limit = 1.1 * weights[kind]
            verdicts.check(f"cold cache: `convert --no-verify` reads ≤ 1.1 × the weights ({LABELS[kind]})",
                           f"{mib(nv.cold.read)} vs {mib(int(limit))}", nv.cold.read <= limit)
        if nv and floor and nv.ok and floor.ok:
            limit = 2 * floor.median + 0.3
            verdicts.check(f"`convert --no-verify` wall ≤ 2 × floor + 0.3 s ({LABELS[kind]})", f"{secs(nv.median)} vs {secs(limit)}", nv.median <= limit)
        if old and v and old.ok and v.ok:
            verdicts.check(f"`convert` (verified) wall ≤ 1/4 of the old converter's ({LABELS[kind]})", f"{v.median / old.median:.3f}", v.median <= old.median / 4)
        imports = kind_rows.get(IMPORT_FLOOR)
        if v and imports and v.ok and imports.ok:  # not a target: how far above its own floor it is
            verdicts.check(f"`convert` (verified) wall above the import floor ({LABELS[kind]})",
                           f"{secs(v.median)} vs {secs(imports.median)} (+{secs(v.median - imports.median)}); old converter / 4: "
                           + (secs(old.median / 4) if old and old.ok else "–"), None)
    for kind, kind_rows in conversions.items():
        row = kind_rows.get("tf2hf convert --no-verify")
        if row and row.ok:
            limit = largest[kind] + 300 * MIB
            verdicts.check(f"peak RSS of `convert --no-verify` ≤ largest tensor + 300 MiB ({LABELS[kind]})",
                           f"{mib(row.rss)} vs {mib(limit)}", row.rss <= limit)
    help_row = extra.get("tf2hf --help")
    if help_row:
        verdicts.check("`tf2hf --help` ≤ 0.3 s", secs(help_row.median) if help_row.ok else (help_row.missing or "failed"),
                       help_row.median <= 0.3 if help_row.ok else None)
    inspect_row = extra.get("tf2hf inspect (BERT-large)")
    if inspect_row:
        verdicts.check("`tf2hf inspect` on BERT-large ≤ 0.5 s", secs(inspect_row.median) if inspect_row.ok else (inspect_row.missing or "failed"),
                       inspect_row.median <= 0.5 if inspect_row.ok else None)
    one, two = extra.get(f"tf2hf batch, {ZOO_SIZE} × BERT-base, --workers 1"), extra.get(f"tf2hf batch, {ZOO_SIZE} × BERT-base, --workers 2")
    if one and two:
        if one.ok and two.ok:
            speedup = one.median / two.median
            verdicts.check("`batch` throughput with 2 workers ≥ 1.7 × with 1", f"{speedup:.2f} ×", speedup >= 1.7)
        else:
            verdicts.check("`batch` throughput with 2 workers ≥ 1.7 × with 1", one.missing or two.missing or "failed", None)
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    lines += ["| " + " | ".join(line) + " |" for line in verdicts.lines]
    lines += [
        "",
        "The floor is `cp` of a file exactly as large as the model's float32 weights (the first "
        "that-many bytes of the checkpoint's data shard) into the output folder's file system; "
        "`cp` does not fsync, tf2hf does. The import floor is a Python that imports torch, "
        "transformers and the model's class and exits: a verified conversion cannot end before "
        "its verification process has done that. Wall time, CPU time (user + system) and peak RSS "
        "(`ru_maxrss`) come from `os.wait4` in a bare launcher (~8 MiB, the least RSS it can "
        "report); for `batch`, peak RSS is the largest process of its session and CPU their sum "
        "(sampled from /proc). On a loaded machine CPU time moves far less than wall time. "
        "Ratios use the medians. The timed runs start with the page cache warm; the cold run of "
        "each tf2hf command starts with the page cache of the checkpoint's files dropped "
        "(`posix_fadvise(DONTNEED)`), and its bytes read from disk are `ru_inblock` × 512 from "
        "`os.wait4` (the verification process included), beside the size of the float32 weights.",
    ]
    return "\n".join(lines) + "\n"


TABLE_START = "<!-- bench/run.py: start -->"
TABLE_END = "<!-- bench/run.py: end -->"
TABLE_DOC = ROOT / "docs" / "PERFORMANCE.md"


def update_docs(table: str) -> None:
    """Replaces the table between the markers of docs/PERFORMANCE.md (the markers stay)."""
    name = TABLE_DOC.relative_to(ROOT)
    text = TABLE_DOC.read_text(encoding="utf-8") if TABLE_DOC.is_file() else ""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        print(f"{name} has no {TABLE_START} … {TABLE_END} block; not updated", file=sys.stderr)
        return
    text = text[: start + len(TABLE_START)] + "\n" + table + text[end:]
    TABLE_DOC.write_text(text, encoding="utf-8")
    print(f"table written into {name}")


