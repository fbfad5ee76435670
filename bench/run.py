"""Benchmark tf2hf against the converter it replaces and against copying the same bytes.

    python bench/run.py [--runs N] [--quick] [--checkpoints base,base-adam,large]
                        [--skip-old] [--update-docs]

One command from a fresh clone (with tf2hf installed: see the README; docs/PERFORMANCE.md
explains the figures). It

1. writes three google-research/bert-shaped checkpoints with random weights using TensorFlow's
   own SaveV2 (``bench/make_checkpoints.py``): BERT-base, BERT-base + Adam slots, BERT-large;
2. sets up the old converter (transformers 4.47.1, the last release with
   ``convert_bert_original_tf_checkpoint_to_pytorch``, + tensorflow-cpu + torch 2.13.0) in its
   own virtual environment;
3. times, in one run and interleaved so that a change of machine load hits all alike: the old
   converter, ``tf2hf convert --no-verify``, ``tf2hf convert`` (verified) and the floor, a plain
   ``cp`` of a file exactly as large as the model's float32 weights (the first that-many bytes
   of the checkpoint's data shard, so the same bytes ``tf2hf`` writes, give or take the
   safetensors header), into the same folder the converters write to; then ``tf2hf --help``,
   ``tf2hf inspect`` on BERT-large and ``tf2hf batch`` over 8 BERT-base checkpoints with 1 and 2
   workers;
4. prints a Markdown table (median and min wall time of N runs, peak RSS, output size, the
   ratios tf2hf / old and tf2hf / floor, PASS or MISS per target) and writes it to
   ``bench/RESULTS.md`` with the date and the machine; ``--update-docs`` (alias
   ``--update-readme``) also puts it into ``docs/PERFORMANCE.md``, between its markers.

Everything it creates is under ``bench/.cache/`` (kept between runs, ignored by git). Wall
time, peak RSS (``ru_maxrss``) and CPU time of each command come from ``os.wait4`` in a bare
launcher process (see ``LAUNCHER``); for ``batch``, whose conversions run in worker processes of
a ``forkserver`` it does not wait for, peak RSS is the largest ``VmHWM`` of any process of its
session and CPU their sum, sampled from ``/proc``.
Every run starts with the page cache warm (the checkpoints were just written or read), as a
conversion right after training or a download would.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
KINDS = ("base", "base-adam", "large")
LABELS = {"base": "BERT-base, no slots", "base-adam": "BERT-base + Adam slots", "large": "BERT-large, no slots"}
OLD_PACKAGES = ("transformers==4.47.1", "tensorflow-cpu==2.21.0")
OLD_SCRIPT = "transformers.models.bert.convert_bert_original_tf_checkpoint_to_pytorch"
ZOO_SIZE = 8
TIMEOUT = 1800  # seconds for any one command
MIB = 1 << 20

# The targets of issue 6, on BERT-base + Adam slots unless stated.
TARGET_KIND = "base-adam"


# --- running one command -------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    rss: int  # bytes
    code: int
    cpu: float  # user + system seconds of the process and the children it waited for


@dataclass
class Row:
    name: str
    runs: list[Run] = field(default_factory=list)
    output_bytes: int | None = None
    missing: str | None = None  # why the row was not measured
    failed: str | None = None  # log of the failing run

    @property
    def ok(self) -> bool:
        return bool(self.runs) and self.missing is None and self.failed is None

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def best(self) -> float:
        return min(r.wall for r in self.runs)

    @property
    def rss(self) -> int:
        return max(r.rss for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)


# The launcher of every measured command: a bare interpreter (``-S``: no site, ~8 MiB) forks,
# execs the command, and reports what ``os.wait4`` says of it. Launching from this script
# directly would not do: a forked child's peak RSS starts at its parent's (~50 MiB here), and the
# kernel keeps that peak across the exec.
LAUNCHER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as out:
    out.write(f"{wall!r} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime!r} {os.waitstatus_to_exitcode(status)}")
"""


class TreeSampler:
    """Peak RSS (``VmHWM``) and CPU time of every process of a session, read from ``/proc``
    every 0.1 s: ``batch`` runs its conversions in worker processes that it does not wait for
    itself (a ``forkserver`` does), so ``os.wait4`` of ``batch`` does not see them."""

    def __init__(self, session: int, skip: int):
        self.session, self.skip = session, skip
        self.rss: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for name in os.listdir("/proc"):
                if name.isdigit() and int(name) != self.skip:
                    self._sample(int(name))

    def _sample(self, pid: int) -> None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != self.session:
                return
            self.cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.rss[pid] = max(self.rss.get(pid, 0), int(line.split()[1]) * 1024)
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile

    def stop(self) -> tuple[int, float]:
        self._stop.set()
        self._thread.join()
        return max(self.rss.values(), default=0), sum(self.cpu.values())


def run_measured(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None, tree: bool = False) -> Run:
    """Run ``cmd`` with its output appended to ``log``: wall time, peak RSS and CPU time of the
    process from ``os.wait4`` (with ``tree``, also of every process of its session)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    report = CACHE / "logs" / ".wait4"
    report.unlink(missing_ok=True)
    with open(log, "ab") as sink:
        sink.write(f"\n$ {' '.join(cmd)}\n".encode())
        sink.flush()
        launcher = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(report), *cmd], stdout=sink,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
        sampler = TreeSampler(launcher.pid, skip=launcher.pid) if tree else None
        timer = threading.Timer(TIMEOUT, lambda: os.killpg(launcher.pid, signal.SIGKILL))
        timer.start()
        try:
            launcher.wait()
        finally:
            timer.cancel()
        tree_rss, tree_cpu = sampler.stop() if sampler else (0, 0.0)
    try:
        wall, rss, cpu, code = report.read_text().split()
    except (OSError, ValueError):
        return Run(wall=float("nan"), rss=0, code=launcher.returncode or 1, cpu=0.0)
    return Run(wall=float(wall), rss=max(int(rss) * 1024, tree_rss), code=int(code), cpu=max(float(cpu), tree_cpu))


def quiet(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


# --- set-up: the old converter, the checkpoints, the zoo, the floor files -------------------


def tf2hf_command() -> list[str]:
    """The installed ``tf2hf`` script of this interpreter (what a user runs), else ``-m``."""
    script = Path(sys.executable).with_name("tf2hf")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tf2hf"]


def old_python() -> Path:
    return CACHE / "old-venv" / "bin" / "python"


def setup_old_venv() -> Path:
    venv = CACHE / "old-venv"
    marker = venv / ".complete"
    if marker.is_file():
        return old_python()
    print(f"setting up the old converter in {venv} (torch 2.13.0, {', '.join(OLD_PACKAGES)}) ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    log = CACHE / "logs" / "old-venv.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        # torch first and pinned: any other request pulls the CUDA build.
        [str(old_python()), "-m", "pip", "install", "torch==2.13.0"],
        [str(old_python()), "-m", "pip", "install", *OLD_PACKAGES],
        [str(old_python()), "-c", "import torch, tensorflow, transformers; print(torch.__version__, tensorflow.__version__, transformers.__version__)"],
    ]
    for step in steps:
        if run_measured(step, log).code != 0:
            sys.exit(f"setting up the old converter failed; see {log}")
    marker.write_text(" ".join(OLD_PACKAGES) + "\n")
    return old_python()


def python_with_tensorflow(old: Path | None) -> str:
    """The interpreter that writes the checkpoints: this one if it has TensorFlow (the ``tf``
    extra), else the old converter's, which has it too."""
    if quiet([sys.executable, "-c", "import tensorflow"]).returncode == 0:
        return sys.executable
    if old is not None:
        return str(old)
    sys.exit("writing the checkpoints needs TensorFlow: pip install -e '.[tf]', or run without --skip-old")


def ensure_checkpoint(kind: str, writer: str | None) -> Path:
    folder = CACHE / "checkpoints" / kind
    if (folder / ".complete").is_file():
        return folder
    if writer is None:
        sys.exit("internal: no interpreter to write checkpoints with")
    print(f"writing the {LABELS[kind]} checkpoint with TensorFlow into {folder} ...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    log = CACHE / "logs" / "checkpoints.log"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if run_measured([writer, str(HERE / "make_checkpoints.py"), str(folder.parent), kind], log, env=env).code != 0:
        sys.exit(f"writing the {kind} checkpoint failed; see {log}")
    (folder / ".complete").write_text("written by bench/make_checkpoints.py\n")
    return folder


def ensure_zoo(base: Path) -> Path:
    """8 BERT-base checkpoints for ``tf2hf batch``: real copies (3.4 GB), not links, so that
    every conversion reads and hashes files of its own, as in a real zoo."""
    zoo = CACHE / "zoo"
    for i in range(ZOO_SIZE):
        folder = zoo / f"model-{i}"
        if (folder / ".complete").is_file():
            continue
        print(f"copying the BERT-base checkpoint to {folder} ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for source in base.iterdir():
            if not source.name.startswith("."):
                shutil.copyfile(source, folder / source.name)
        (folder / ".complete").write_text("a copy of checkpoints/base\n")
    return zoo


def model_bytes(tf2hf: list[str], checkpoint: Path) -> int:
    """The float32 size of the converted model, from ``tf2hf convert --dry-run --json``."""
    done = quiet([*tf2hf, "convert", "bert", "--tf", str(checkpoint), "--dry-run", "--json"])
    if done.returncode != 0:
        sys.exit(f"tf2hf convert --dry-run failed on {checkpoint}:\n{done.stdout}{done.stderr}")
    return int(json.loads(done.stdout)["output_bytes"])


def ensure_floor_file(kind: str, checkpoint: Path, size: int) -> Path:
    """A file of exactly ``size`` bytes: the start of the checkpoint's data shard."""
    path = CACHE / "floor" / f"{kind}.bin"
    if path.is_file() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    shard = next(checkpoint.glob("*.data-00000-of-*"))
    with open(shard, "rb") as src, open(path, "wb") as dst:
        left = size
        while left:
            block = src.read(min(left, 8 * MIB))
            if not block:
                sys.exit(f"{shard} is smaller than the model ({size} bytes)")
            dst.write(block)
            left -= len(block)
    return path


def largest_tensor(checkpoint: Path) -> int:
    from tf2hf.tfckpt import open_checkpoint

    with open_checkpoint(checkpoint) as ckpt:
        return max(info.size for info in ckpt.variables.values())


def data_bytes(checkpoint: Path) -> int:
    return sum(p.stat().st_size for p in checkpoint.glob("*.data-*"))


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def has_command(tf2hf: list[str], name: str) -> bool:
    return quiet([*tf2hf, name, "--help"]).returncode == 0


# --- the measurements ----------------------------------------------------------------------


def conversion_commands(kind: str, checkpoint: Path, old: Path | None, tf2hf: list[str], floor: Path) -> dict:
    """name -> function(out folder) -> (argv, file whose size is the output)."""
    prefix = checkpoint / "model.ckpt-1000"
    config = checkpoint / "bert_config.json"
    commands = {}
    if old is not None:
        commands["old converter"] = lambda out: (
            [str(old), "-m", OLD_SCRIPT, "--tf_checkpoint_path", str(prefix), "--bert_config_file", str(config),
             "--pytorch_dump_path", str(out / "pytorch_model.bin")],
            out / "pytorch_model.bin",
        )
    commands["tf2hf convert --no-verify"] = lambda out: (
        [*tf2hf, "convert", "bert", "--tf", str(checkpoint), "--out", str(out / "model"), "--no-verify"],
        out / "model" / "model.safetensors",
    )
    commands["tf2hf convert"] = lambda out: (
        [*tf2hf, "convert", "bert", "--tf", str(checkpoint), "--out", str(out / "model")],
        out / "model" / "model.safetensors",
    )
    commands["floor: cp"] = lambda out: (["cp", str(floor), str(out / "model.bin")], out / "model.bin")
    return commands


def measure_interleaved(commands: dict, runs: int, warmup: int, tag: str) -> dict[str, Row]:
    rows = {name: Row(name) for name in commands}
    log = CACHE / "logs" / f"{tag}.log"
    for index in range(-warmup, runs):
        for name, make in commands.items():
            row = rows[name]
            if row.failed:
                continue
            out = CACHE / "out" / tag
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            argv, product = make(out)
            run = run_measured(argv, log)
            if run.code != 0:
                row.failed = f"exit code {run.code}; see {log.relative_to(ROOT)}"
            elif index >= 0:
                row.runs.append(run)
                row.output_bytes = product.stat().st_size if product.exists() else None
            print(f"  {tag:<10} {name:<26} {'warm-up' if index < 0 else f'run {index + 1}'}: "
                  f"{run.wall:6.2f} s  {run.rss / MIB:7.1f} MiB" + ("" if run.code == 0 else f"  FAILED ({row.failed})"), flush=True)
            shutil.rmtree(out, ignore_errors=True)
    return rows


def measure_simple(name: str, argv: list[str], runs: int, tag: str, out: Path | None = None, tree: bool = False) -> Row:
    row = Row(name)
    log = CACHE / "logs" / f"{tag}.log"
    for index in range(runs):
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
        run = run_measured(argv, log, tree=tree)
        if run.code != 0:
            row.failed = f"exit code {run.code}; see {log.relative_to(ROOT)}"
            break
        row.runs.append(run)
        if out is not None and out.exists():
            row.output_bytes = folder_bytes(out)
        print(f"  {name:<40} run {index + 1}: {run.wall:6.2f} s  {run.rss / MIB:7.1f} MiB", flush=True)
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    return row


# --- the report ----------------------------------------------------------------------------


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


class Verdicts:
    def __init__(self) -> None:
        self.lines: list[list[str]] = []

    def check(self, target: str, measured: str, passed: bool | None) -> None:
        verdict = "n/a" if passed is None else ("PASS" if passed else "MISS")
        self.lines.append([target, measured, verdict])


def report(args, info: dict, started: str, finished_load: str, start_load: str, conversions: dict,
           largest: dict, sizes: dict, extra: dict[str, Row]) -> str:
    lines = [
        f"Measured {started} by `python bench/run.py {' '.join(args.argv)}`".rstrip() + ".",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM; load average "
        f"{start_load} at the start, {finished_load} at the end (1, 5, 15 min). {version_line()}. "
        f"{args.runs} timed run(s) of each command after {args.warmup} warm-up run(s), interleaved.",
        "",
        "| checkpoint | command | wall (median) | wall (min) | CPU (median) | peak RSS | output | tf2hf / old (wall) | tf2hf / floor (wall) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rows in conversions.items():
        old, floor = rows.get("old converter"), rows.get("floor: cp")
        for name, row in rows.items():
            vs_old = ratio(row, old) if name.startswith("tf2hf") else ""
            vs_floor = ratio(row, floor) if name.startswith("tf2hf") else ""
            label = f"{LABELS[kind]} ({sizes[kind] / MIB:,.0f} MiB data)" if name == next(iter(rows)) else ""
            lines.append("| " + " | ".join([label, f"`{name}`" if not name.startswith("floor") else name, *cell(row), vs_old, vs_floor]) + " |")
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
        "`cp` does not fsync, tf2hf does. Wall time, CPU time (user + system) and peak RSS "
        "(`ru_maxrss`) come from `os.wait4` in a bare launcher (~8 MiB, the least RSS it can "
        "report); for `batch`, peak RSS is the largest process of its session and CPU their sum "
        "(sampled from /proc). On a loaded machine CPU time moves far less than wall time. "
        "Ratios use the medians.",
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


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="timed runs of each command (default 3; 1 with --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs before (default 1; 0 with --quick)")
    parser.add_argument("--quick", action="store_true", help="one run, no warm-up, only BERT-base + Adam slots")
    parser.add_argument("--checkpoints", default=None, help=f"comma-separated subset of {','.join(KINDS)}")
    parser.add_argument("--skip-old", action="store_true", help="do not set up or time the old converter")
    parser.add_argument("--update-docs", "--update-readme", dest="update_docs", action="store_true",
                        help="also write the table into docs/PERFORMANCE.md (--update-readme: the old name)")
    args = parser.parse_args(argv)
    args.argv = argv
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    kinds = args.checkpoints.split(",") if args.checkpoints else ([TARGET_KIND] if args.quick else list(KINDS))
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown checkpoint(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
    try:
        import tf2hf  # noqa: F401
    except ImportError:
        sys.exit("tf2hf is not installed in this Python: pip install torch==2.13.0 && pip install -e '.[dev]'")

    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    start_load = load()
    info = machine()
    tf2hf = tf2hf_command()
    old = None if args.skip_old else setup_old_venv()
    writer = None
    needed = set(kinds) | {"large", "base"}  # inspect runs on BERT-large, batch on BERT-base
    if not all((CACHE / "checkpoints" / k / ".complete").is_file() for k in needed):
        writer = python_with_tensorflow(old)
    checkpoints = {kind: ensure_checkpoint(kind, writer) for kind in sorted(needed)}
    sizes = {kind: data_bytes(path) for kind, path in checkpoints.items()}
    largest = {kind: largest_tensor(path) for kind, path in checkpoints.items()}

    conversions: dict[str, dict[str, Row]] = {}
    for kind in kinds:
        floor = ensure_floor_file(kind, checkpoints[kind], model_bytes(tf2hf, checkpoints[kind]))
        print(f"{LABELS[kind]}:", flush=True)
        commands = conversion_commands(kind, checkpoints[kind], old, tf2hf, floor)
        conversions[kind] = measure_interleaved(commands, args.runs, args.warmup, kind)

    extra: dict[str, Row] = {}
    print("other commands:", flush=True)
    extra["tf2hf --help"] = measure_simple("tf2hf --help", [*tf2hf, "--help"], max(args.runs, 5), "help")
    name = "tf2hf inspect (BERT-large)"
    if has_command(tf2hf, "inspect"):
        extra[name] = measure_simple(name, [*tf2hf, "inspect", str(checkpoints["large"])], max(args.runs, 5), "inspect")
    else:
        extra[name] = Row(name, missing="n/a (command missing)")
    zoo = ensure_zoo(checkpoints["base"])
    for workers in (1, 2):
        name = f"tf2hf batch, {ZOO_SIZE} × BERT-base, --workers {workers}"
        if has_command(tf2hf, "batch"):
            out = CACHE / "out" / "batch"
            argv = [*tf2hf, "batch", str(zoo), "--out", str(out), "--workers", str(workers), "--no-verify"]
            extra[name] = measure_simple(name, argv, args.runs, "batch", out=out, tree=True)
        else:
            extra[name] = Row(name, missing="n/a (command missing)")

    table = report(args, info, started, load(), start_load, conversions, largest, sizes, extra)
    print()
    print(table)
    (HERE / "RESULTS.md").write_text("# Benchmark results\n\n" + table, encoding="utf-8")
    print(f"written to {(HERE / 'RESULTS.md').relative_to(ROOT)}")
    if args.update_docs:
        update_docs(table)


if __name__ == "__main__":
    main(sys.argv[1:])
