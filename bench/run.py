"""Benchmark tf2hf against the converter it replaces and against copying the same bytes.

    python bench/run.py [--runs N] [--quick] [--checkpoints base,base-adam,large,large-adam]
                        [--skip-old] [--update-docs]

One command from a fresh clone (with tf2hf installed: see the README; docs/PERFORMANCE.md
explains the figures). It

1. writes four google-research/bert-shaped checkpoints with random weights using TensorFlow's
   own SaveV2 (``bench/make_checkpoints.py``): BERT-base, BERT-base + Adam slots, BERT-large,
   BERT-large + Adam slots (4 GB, of which 1.28 GB are weights);
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
Every timed run starts with the page cache warm (the checkpoints were just written or read), as
a conversion right after training would. Then each ``tf2hf`` conversion runs once more cold:
the page cache of the checkpoint's files (which this script wrote) is dropped first
(``posix_fadvise(POSIX_FADV_DONTNEED)``, nothing global), and the bytes it read from disk are
``ru_inblock`` × 512 from ``os.wait4`` (its verification process included), shown next to the
size of the weights: what a conversion of a freshly downloaded or network-mounted checkpoint
costs, where the optimizer slots must not be read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
from pathlib import Path

from measure import (CACHE, HERE, IMPORT_FLOOR, KINDS, LABELS, MIB, OLD_PACKAGES, OLD_SCRIPT, ROOT, TARGET_KIND, ZOO_SIZE, Row,
                     drop_page_cache, quiet, run_measured)
from report import load, machine, report, update_docs

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
    # What any verified conversion waits for before it can load the model: the verification
    # process imports these (on the second core, while the folder is written).
    commands[IMPORT_FLOOR] = lambda out: ([sys.executable, "-c", "import torch, transformers; transformers.BertForPreTraining"], None)
    return commands


def measure_interleaved(commands: dict, runs: int, warmup: int, tag: str, inputs: list[Path]) -> dict[str, Row]:
    """``runs`` timed runs of each command (after ``warmup``), interleaved; then one cold run of
    each ``tf2hf`` command, with the page cache of ``inputs`` dropped first (index ``runs``)."""
    rows = {name: Row(name) for name in commands}
    log = CACHE / "logs" / f"{tag}.log"
    for index in range(-warmup, runs + 1):
        for name, make in commands.items():
            row = rows[name]
            cold = index == runs
            if row.failed or (cold and not (name.startswith("tf2hf") and hasattr(os, "posix_fadvise"))):
                continue
            out = CACHE / "out" / tag
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            argv, product = make(out)
            if cold:
                drop_page_cache(inputs)
            run = run_measured(argv, log)
            if run.code != 0:
                row.failed = f"exit code {run.code}; see {log.relative_to(ROOT)}"
            elif cold:
                row.cold = run
            elif index >= 0:
                row.runs.append(run)
                row.output_bytes = product.stat().st_size if product is not None and product.exists() else None
            what = "warm-up" if index < 0 else ("cold" if cold else f"run {index + 1}")
            print(f"  {tag:<10} {name:<26} {what}: {run.wall:6.2f} s  {run.rss / MIB:7.1f} MiB  {run.read / MIB:8.1f} MiB read"
                  + ("" if run.code == 0 else f"  FAILED ({row.failed})"), flush=True)
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

    # Installed packages run from byte-compiled modules; with PYTHONDONTWRITEBYTECODE set (some
    # sandboxes set it) every run would compile tf2hf's ~110 modules again (0.14 s measured).
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        print("PYTHONDONTWRITEBYTECODE was set: unset for the measured commands", flush=True)
    quiet([sys.executable, "-m", "compileall", "-q", str(ROOT / "tf2hf")])

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
    weights: dict[str, int] = {}
    for kind in kinds:
        weights[kind] = model_bytes(tf2hf, checkpoints[kind])
        floor = ensure_floor_file(kind, checkpoints[kind], weights[kind])
        print(f"{LABELS[kind]}:", flush=True)
        commands = conversion_commands(kind, checkpoints[kind], old, tf2hf, floor)
        inputs = sorted(p for p in checkpoints[kind].iterdir() if p.is_file() and not p.name.startswith("."))
        conversions[kind] = measure_interleaved(commands, args.runs, args.warmup, kind, inputs)

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

    table = report(args, info, started, load(), start_load, conversions, largest, sizes, extra, weights)
    print()
    print(table)
    (HERE / "RESULTS.md").write_text("# Benchmark results\n\n" + table, encoding="utf-8")
    print(f"written to {(HERE / 'RESULTS.md').relative_to(ROOT)}")
    if args.update_docs:
        update_docs(table)


if __name__ == "__main__":
    main(sys.argv[1:])
