"""The ``tf2hf`` command line.

This is the one place where errors become output: a :class:`~tf2hf.errors.Tf2hfError` turns
into one line on stderr (plus its detail list, if any) and exit code 1; ``--debug`` shows the
traceback instead. Heavy modules are imported inside the commands, so ``tf2hf --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tf2hf.errors import Tf2hfError
from tf2hf.sizes import human

# The verification's NumPy reference multiplies matrices of a few dozen rows, where OpenBLAS's
# worker threads only spin-wait on each other: 4-5x slower than one thread on a loaded 2-core
# machine. Read once, when numpy loads (after this line); a value set by the user wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = typer.Typer(
    name="tf2hf",
    help="Convert TensorFlow 1.x BERT-family checkpoints into Hugging Face transformers folders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: typer's rich formatting imports rich's markdown and syntax
    # highlighting, 0.13-0.25 s of the 0.3 s a `tf2hf --help` may take.
    rich_markup_mode=None,
)


class Format(str, Enum):
    safetensors = "safetensors"
    bin = "bin"


class DType(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Gelu(str, Enum):
    erf = "erf"
    tanh = "tanh"


class ExecutorKind(str, Enum):
    local = "local"
    dask = "dask"


Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        raise exc
    if isinstance(exc, Tf2hfError):
        typer.echo(f"error: {exc}", err=True)
        details = getattr(exc, "details", [])
        if len(details) > 1:
            for line in details:
                typer.echo(f"  {line}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"internal error: {type(exc).__name__}: {exc}; rerun with --debug and report the traceback", err=True)
    raise typer.Exit(2) from None


def _print_plan(result) -> None:
    plan = result.plan
    out = typer.echo
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
        out("dropped:")
        for kind, entry in sorted(result.dropped.items()):
            out(f"  {kind:<18} {entry['count']:>6} variables  {human(entry['bytes'])}")
        from tf2hf.engine.folding import fold

        reasons: dict[str, list[str]] = {}
        for drop in plan.dropped:
            reasons.setdefault(f"{drop.kind}: {drop.why}", []).append(drop.name)
        for why, names in reasons.items():
            out(f"    {why} — e.g. {fold(names)[0]}")
    for name, why in result.discarded:
        out(f"  discarded {name}: {why}")
    for note in result.notes:
        out(f"note: {note}")
    for warning in result.warnings:
        out(f"warning: {warning}")


def _print_result(result) -> None:
    out = typer.echo
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    dropped = ", ".join(f"{v['count']} {k} ({human(v['bytes'])})" for k, v in sorted(result.dropped.items())) or "nothing"
    out(f"converted {result.source} -> {result.out}")
    out(f"  {result.target_class}: {result.tensors} tensors, {result.parameters:,} parameters, {human(result.output_bytes)} {result.format} ({result.dtype})")
    out(f"  dropped: {dropped}")
    for note in result.notes:
        out(f"  note: {note}")
    check = result.verification
    if check is None:
        out("  verification: skipped (--no-verify)")
    else:
        out(f"  verification: max abs diff {check['worst']:.3g} vs the TF graph (tolerance {check['tolerance']:.3g}, activation {check['gelu']}): passed")
    out(f"  took {result.seconds:.2f} s")


def _progress_bar():
    """A rich progress bar on stderr when it is a terminal; otherwise no display."""
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(TextColumn("writing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True)
    task = bar.add_task("write", total=None)

    def update(done: int, total: int, key: str) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


@app.command()
def convert(
    family: Annotated[str, typer.Argument(help="Family of the checkpoint: bert, albert, electra, tf2_bert (tf2hf architectures lists all), or auto to detect it.")],
    tf: Annotated[Path, typer.Option("--tf", help="The checkpoint: folder, prefix (model.ckpt-N), or any of its .index/.data/.meta files.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (must not exist unless --force).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TF config JSON (default: found beside the checkpoint).")] = None,
    vocab: Annotated[Optional[Path], typer.Option("--vocab", help="vocab.txt (default: found beside the checkpoint).")] = None,
    format: Annotated[Format, typer.Option("--format", help="Weights file format.")] = Format.safetensors,
    dtype: Annotated[DType, typer.Option("--dtype", help="Stored dtype of the weights.")] = DType.float32,
    gelu: Annotated[Optional[Gelu], typer.Option("--gelu", help="GELU formula for configs that say 'gelu': erf (transformers 'gelu') or tanh ('gelu_new'). Default: the family's.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Output layout where a family offers several: for brightmart albert_zh, albert (default, AlbertFor*) or bert (BertFor*).")] = None,
    tower: Annotated[Optional[str], typer.Option("--tower", help="Which model of a checkpoint that holds several: for ELECTRA, discriminator (ElectraForPreTraining) or generator (ElectraForMaskedLM).")] = None,
    lowercase: Annotated[Optional[bool], typer.Option("--lowercase/--no-lowercase", help="Tokenizer do_lower_case (default: inferred from the vocabulary and folder name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output folder (atomically).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and write nothing.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip running the converted model against the source graph.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: Debug = False,
) -> None:
    """Convert one TF checkpoint into a transformers folder."""
    bar = None
    try:
        from tf2hf.api import convert as run

        bar, update = (None, None) if dry_run or as_json else _progress_bar()
        if bar:
            bar.start()
        result = run(
            family,
            tf=tf,
            out=out,
            config=config,
            vocab=vocab,
            format=format.value,
            dtype=dtype.value,
            gelu=gelu.value if gelu else None,
            lowercase=lowercase,
            target=target,
            tower=tower,
            force=force,
            dry_run=dry_run,
            verify=not no_verify,
            progress=update,
        )
    except BaseException as exc:  # the one exception boundary of the CLI
        if bar:
            bar.stop()
        if isinstance(exc, (typer.Exit, KeyboardInterrupt)):
            raise
        _fail(exc, debug)
        return
    if bar:
        bar.stop()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif dry_run:
        _print_plan(result)
    else:
        _print_result(result)


@app.command()
def architectures() -> None:
    """List every family (built in and from plugins): heads, transformers classes, an example."""
    from tf2hf.engine.registry import BUILTIN, families, origin

    for family in families().values():
        name = family.group or family.name
        where = "built in" if origin(family.name) == BUILTIN else f"plugin package {origin(family.name)}"
        typer.echo(f"{family.name}: {family.description}")
        choose = f" {family.variant_option} {family.variant}" if family.variant else ""
        typer.echo(f"  from: {where}; convert with: tf2hf convert {name}{choose} (or auto)")
        lines: list[str] = []  # two targets may differ only in base parts (ELECTRA's tied/untied generator)
        for target in family.targets:
            heads = [p.label or p.name for p in family.parts if p.name in target.parts - family.base_parts]
            line = f"  {target.cls:<32} heads: {', '.join(heads) or 'none (base model)'}"
            if line not in lines:
                lines.append(line)
                typer.echo(line)
        config = family.config_names[0].replace("*", "")
        typer.echo(f"  example: tf2hf convert {name}{choose} --tf model.ckpt-1000 --config {config} --out {family.name}-model")


@app.command()
def batch(
    zoo: Annotated[Optional[Path], typer.Argument(help="Folder of checkpoints, searched recursively (or use --manifest).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output root: checkpoint folder ZOO/a/b is converted to OUT/a/b.")] = ...,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", help="JSON or YAML list of entries (source, out, family, config, vocab, target, gelu ...) instead of ZOO.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Conversions in parallel processes (default: the CPU count); with --scheduler, the cluster's workers decide.")] = None,
    executor: Annotated[ExecutorKind, typer.Option("--executor", help="Where conversions run: local processes, or Dask tasks (pip install 'tf2hf[cluster]').")] = ExecutorKind.local,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="With --executor dask: the address of a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster of --workers processes).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the results as JSON to this file.")] = None,
    all_steps: Annotated[bool, typer.Option("--all-steps", help="Convert every checkpoint of a folder into OUT/a/b/<step>, not only the latest.")] = False,
    family: Annotated[str, typer.Option("--family", help="Family of every checkpoint (default: detected per checkpoint).")] = "auto",
    target: Annotated[Optional[str], typer.Option("--target", help="Output layout where a family offers several (see tf2hf convert).")] = None,
    gelu: Annotated[Optional[Gelu], typer.Option("--gelu", help="GELU formula for configs that say 'gelu' (default: each family's).")] = None,
    dtype: Annotated[DType, typer.Option("--dtype", help="Stored dtype of the weights.")] = DType.float32,
    format: Annotated[Format, typer.Option("--format", help="Weights file format.")] = Format.safetensors,
    force: Annotated[bool, typer.Option("--force", help="Replace outputs made from other sources or options, or not made by tf2hf batch.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip running each converted model against its source graph.")] = False,
    debug: Debug = False,
) -> None:
    """Convert every checkpoint of a zoo (or a manifest) in parallel; rerun to resume."""
    try:
        from tf2hf.batch.core import run_batch, write_report
        from tf2hf.batch.display import make_display, print_summary
        from tf2hf.errors import ClusterError, ZooError
        from tf2hf.batch.zoo import discover, load_manifest

        if (zoo is None) == (manifest is None):
            raise ZooError("pass either a ZOO folder or --manifest FILE (not both)")
        if scheduler is not None and executor != ExecutorKind.dask:
            raise ClusterError(f"--scheduler {scheduler}: only the dask executor uses a scheduler; add --executor dask")
        if executor == ExecutorKind.dask:
            from tf2hf.batch.dask_executor import require_distributed

            require_distributed()
        if zoo is not None and zoo.is_dir() and out.exists() and zoo.resolve() == out.resolve():
            raise ZooError(f"{out}: the output root is the zoo itself; choose another --out")
        entries = load_manifest(manifest) if manifest is not None else discover(zoo, all_steps=all_steps, exclude=[out])
        if not entries:
            raise ZooError(f"{zoo}: no checkpoint (*.index) found in this folder or below; pass the folder that holds them")
        options = {"family": family, "target": target, "gelu": gelu.value if gelu else None, "dtype": dtype.value, "format": format.value}
        with make_display(len(entries)) as display:
            result = run_batch(
                entries, out, workers=workers, executor=executor.value, scheduler=scheduler, force=force, verify=not no_verify,
                on_event=display.event, on_result=display.finished,
                zoo=str(zoo) if zoo is not None else None, manifest=str(manifest) if manifest is not None else None,
                **{k: v for k, v in options.items() if v is not None},
            )
        if report is not None:
            write_report(result, report)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished entries are complete and kept; run the same command again to convert the rest", err=True)
        raise typer.Exit(130) from None
    except BaseException as exc:  # the one exception boundary of the command
        if isinstance(exc, typer.Exit):
            raise
        _fail(exc, debug)
        return
    print_summary(result)
    failed = result.counts["failed"]
    if failed:
        typer.echo(f"error: {failed} of {len(result.entries)} entries failed (reasons above); fix them and run the same command again", err=True)
        raise typer.Exit(1)


@app.command("inspect")
def inspect_command(
    ckpt: Annotated[Path, typer.Argument(help="The checkpoint: folder, prefix, or any of its files. The data shards are not needed.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    layers: Annotated[bool, typer.Option("--layers", help="One row per encoder layer (or ALBERT group) instead of one for all.")] = False,
    config: Annotated[Optional[Path], typer.Option("--config", help="TF config JSON (default: found beside the checkpoint).")] = None,
    family: Annotated[str, typer.Option("--family", help="Family to read it as (default: detected).")] = "auto",
    target: Annotated[Optional[str], typer.Option("--target", "--tower", help="A family's variant, as in convert: brightmart albert|bert, ELECTRA discriminator|generator.")] = None,
    debug: Debug = False,
) -> None:
    """Show where a checkpoint's size comes from: parameters and bytes per part, slots, heads."""
    try:
        from tf2hf.tools.inspection import format_report, inspect

        found = inspect(ckpt, config=config, family=family, target=target)
    except BaseException as exc:  # the one exception boundary of the command
        if isinstance(exc, (typer.Exit, KeyboardInterrupt)):
            raise
        _fail(exc, debug)
        return
    if as_json:
        typer.echo(json.dumps(found.to_dict(), indent=2))
    else:
        for line in format_report(found, layers=layers):
            typer.echo(line)


@app.command()
def slim(
    ckpt: Annotated[Path, typer.Argument(help="The checkpoint: folder, prefix, or any of its files.")],
    out: Annotated[Path, typer.Option("--out", help="Prefix of the new checkpoint (e.g. slim/model.ckpt-1000), or an existing folder.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a checkpoint that exists at --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: Debug = False,
) -> None:
    """Write a TF checkpoint without optimizer slots and bookkeeping (no TensorFlow needed)."""
    try:
        from tf2hf.tools.slim import slim as run_slim

        done = run_slim(ckpt, out, force=force)
    except BaseException as exc:  # the one exception boundary of the command
        if isinstance(exc, (typer.Exit, KeyboardInterrupt)):
            raise
        _fail(exc, debug)
        return
    if as_json:
        typer.echo(json.dumps(done.to_dict(), indent=2))
        return
    dropped = ", ".join(f"{v['count']} {k} ({human(v['bytes'])})" for k, v in sorted(done.dropped.items())) or "nothing"
    typer.echo(f"slimmed {done.source} -> {done.out}")
    typer.echo(f"  kept {done.variables_after} of {done.variables_before} variables; dropped {dropped}")
    share = f" ({100 * done.bytes_after / done.bytes_before:.0f}%)" if done.bytes_before else ""
    typer.echo(f"  size: {human(done.bytes_before)} -> {human(done.bytes_after)}{share}")
    if done.state_file:
        typer.echo(f"  wrote {done.state_file} naming the new checkpoint")


def main() -> None:
    try:
        app()
    except SystemExit as done:
        # After a verification, tearing the interpreter down (torch's and transformers' modules,
        # their thread pools and exit hooks) takes 1.5-2 s, a third of a verified conversion.
        # Everything is written, fsync'd and renamed by now: flush the output and leave at once.
        if "torch" in sys.modules and isinstance(done.code, (int, type(None))):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code or 0)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
