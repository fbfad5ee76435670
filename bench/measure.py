"""Running one measured command for bench/run.py: wall time, CPU time, peak RSS and bytes read
from disk from ``os.wait4`` in a bare launcher, and the shared constants of the benchmark."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
KINDS = ("base", "base-adam", "large", "large-adam")
LABELS = {"base": "BERT-base, no slots", "base-adam": "BERT-base + Adam slots", "large": "BERT-large, no slots",
          "large-adam": "BERT-large + Adam slots"}
# The checkpoints with optimizer slots, where issue 17's targets apply (read only the weights).
SLOT_KINDS = ("base-adam", "large-adam")
BLOCK = 512  # bytes of one ru_inblock unit
OLD_PACKAGES = ("transformers==4.47.1", "tensorflow-cpu==2.21.0")
OLD_SCRIPT = "transformers.models.bert.convert_bert_original_tf_checkpoint_to_pytorch"
ZOO_SIZE = 8
#: The second floor: importing what verification needs, the least a verified conversion takes.
IMPORT_FLOOR = "floor: import torch + transformers + class"
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
    read: int = 0  # bytes read from disk (ru_inblock × 512), the children it waited for included


@dataclass
class Row:
    name: str
    runs: list[Run] = field(default_factory=list)
    output_bytes: int | None = None
    missing: str | None = None  # why the row was not measured
    failed: str | None = None  # log of the failing run
    cold: Run | None = None  # one run with the page cache of the inputs dropped

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
    out.write(f"{wall!r} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime!r} {os.waitstatus_to_exitcode(status)} {usage.ru_inblock}")
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
        wall, rss, cpu, code, blocks = report.read_text().split()
    except (OSError, ValueError):
        return Run(wall=float("nan"), rss=0, code=launcher.returncode or 1, cpu=0.0)
    return Run(wall=float(wall), rss=max(int(rss) * 1024, tree_rss), code=int(code), cpu=max(float(cpu), tree_cpu),
               read=int(blocks) * BLOCK)


def drop_page_cache(paths: list[Path]) -> None:
    """Evict these files (written by this script) from the page cache; nothing else is touched."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages are not dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def quiet(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


