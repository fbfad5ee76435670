"""The ``tf2hf`` command line: the typer app and its commands, each a thin layer over the API.

Errors become output in one place, :mod:`tf2hf.cli.boundary`, which wraps every command; what a
command prints is in :mod:`tf2hf.cli.render`. Heavy modules are imported inside the commands,
so ``tf2hf --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from tf2hf.cli import render
from tf2hf.cli.boundary import boundary
from tf2hf.cli.options import (
    ConfigOption, Debug, DType, DTypeOption, ExecutorKind, FamilyOption, Format, FormatOption, Gelu, LabelsOption, ResultAsJson, Task, TaskOption,
    expand_user, one_family, read_labels,
)

# The verification's NumPy reference multiplies matrices of a few dozen rows, where OpenBLAS's
# worker threads only spin-wait on each other: 4-5x slower than one thread on a loaded 2-core
# machine. Read once, when numpy loads (after this line); a value set by the user wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = typer.Typer(
    name="tf2hf",
    help="Convert TensorFlow 1.x BERT-family checkpoints into Hugging Face transformers folders.",
    no_args_is_help=True,
    # --install-completion / --show-completion: typer imports its completion code only when asked.
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    # Plain help and usage errors: typer's rich formatting imports rich's markdown and syntax
    # highlighting, 0.13-0.25 s of the 0.3 s a `tf2hf --help` may take.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from tf2hf import __version__

        typer.echo(f"tf2hf {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors (and what --json asks for).")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="Also show the library's log: -v its notes and steps, -vv debug records.")] = 0,
) -> None:
    """Convert TensorFlow 1.x BERT-family checkpoints into Hugging Face transformers folders."""
    render.configure(quiet=quiet, verbose=verbose)


@app.command()
@boundary()
def convert(
    family: Annotated[Optional[str], typer.Argument(help="Family of the checkpoint: bert, albert, electra, tf2_bert (tf2hf architectures lists all), or auto to detect it (the default; also --family).")] = None,
    tf: Annotated[Path, typer.Option("--tf", help="The checkpoint: folder, prefix (model.ckpt-N), or any of its .index/.data/.meta files.")] = ...,
    # A str, not a Path: Path("") is ".", and an empty --out must be refused, not read as the current folder.
    out: Annotated[Optional[str], typer.Option("--out", callback=expand_user, help="Output folder (must not exist unless --force).")] = None,
    config: ConfigOption = None,
    vocab: Annotated[Optional[Path], typer.Option("--vocab", callback=expand_user, help="vocab.txt (default: found beside the checkpoint).")] = None,
    format: FormatOption = Format.safetensors,
    dtype: DTypeOption = DType.float32,
    gelu: Annotated[Optional[Gelu], typer.Option("--gelu", help="GELU formula for configs that say 'gelu': erf (transformers 'gelu') or tanh ('gelu_new'). Default: the family's.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Output layout where a family offers several: for brightmart albert_zh, albert (default, AlbertFor*) or bert (BertFor*).")] = None,
    tower: Annotated[Optional[str], typer.Option("--tower", help="Which model of a checkpoint that holds several: for ELECTRA, discriminator (ElectraForPreTraining) or generator (ElectraForMaskedLM).")] = None,
    task: TaskOption = Task.auto,
    labels: LabelsOption = None,
    family_option: FamilyOption = None,
    lowercase: Annotated[Optional[bool], typer.Option("--lowercase/--no-lowercase", help="Tokenizer do_lower_case (default: inferred from the vocabulary and folder name).")] = None,
    no_tokenizer: Annotated[bool, typer.Option("--no-tokenizer", help="Write no tokenizer files (no vocabulary is read).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output folder (atomically).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and write nothing.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip running the converted model against the source graph.")] = False,
    allow_non_finite: Annotated[bool, typer.Option("--allow-non-finite", help="Convert weights that hold NaN or Inf anyway (refused by default; reported in the model card).")] = False,
    hash_sources: Annotated[bool, typer.Option("--hash-sources", help="Also record the full sha256 of each data shard in the model card (reads the optimizer slots too; by default shards are identified by size and mtime beside the index's sha256).")] = False,
    as_json: ResultAsJson = False,
    debug: Debug = False,
) -> None:
    """Convert one TF checkpoint into a transformers folder."""
    from tf2hf.api import convert as run

    family = one_family(family, family_option)
    with render.ProgressBar(show=not (dry_run or as_json)) as bar:
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
            task=task.value,
            tokenizer=not no_tokenizer,
            labels=read_labels(labels),
            force=force,
            dry_run=dry_run,
            verify=not no_verify,
            allow_non_finite=allow_non_finite,
            hash_sources=hash_sources,
            progress=bar.update,
        )
    detected = family == "auto"
    if as_json:
        render.print_json(result)
    elif dry_run:
        render.print_plan(result, detected=detected)
    else:
        render.print_result(result, detected=detected)


@app.command()
@boundary()
def architectures(as_json: ResultAsJson = False, debug: Debug = False) -> None:  # debug is read by the boundary
    """List every family (built in and from plugins): heads, transformers classes, an example."""
    from tf2hf.engine.registry import BUILTIN, families, origin

    if as_json:
        render.print_data(render.families_data(families().values(), origin, BUILTIN))
    else:
        render.print_families(families().values(), origin, BUILTIN)


@app.command()
@boundary(interrupted="interrupted: finished entries are complete and kept; run the same command again to convert the rest")
def batch(
    zoo: Annotated[Optional[Path], typer.Argument(help="Folder of checkpoints, searched recursively (or use --manifest).")] = None,
    out: Annotated[str, typer.Option("--out", callback=expand_user, help="Output root: checkpoint folder ZOO/a/b is converted to OUT/a/b.")] = ...,  # str: see convert
    manifest: Annotated[Optional[Path], typer.Option("--manifest", callback=expand_user, help="JSON or YAML list of entries (source, out, family, config, vocab, target, gelu ...) instead of ZOO.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Conversions in parallel processes (default: the CPU count); with --scheduler, the cluster's workers decide.")] = None,
    executor: Annotated[ExecutorKind, typer.Option("--executor", help="Where conversions run: local processes, or Dask tasks (pip install 'tf2hf[cluster]').")] = ExecutorKind.local,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="With --executor dask: the address of a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster of --workers processes).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", callback=expand_user, help="Write the results as JSON to this file.")] = None,
    all_steps: Annotated[bool, typer.Option("--all-steps", help="Convert every checkpoint of a folder into OUT/a/b/<step>, not only the latest.")] = False,
    family: Annotated[str, typer.Option("--family", help="Family of every checkpoint (default: detected per checkpoint).")] = "auto",
    target: Annotated[Optional[str], typer.Option("--target", help="Output layout where a family offers several (see tf2hf convert).")] = None,
    task: TaskOption = Task.auto,
    gelu: Annotated[Optional[Gelu], typer.Option("--gelu", help="GELU formula for configs that say 'gelu' (default: each family's).")] = None,
    dtype: DTypeOption = DType.float32,
    format: FormatOption = Format.safetensors,
    force: Annotated[bool, typer.Option("--force", help="Replace outputs made from other sources or options, or not made by tf2hf batch.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip running each converted model against its source graph.")] = False,
    hash_sources: Annotated[bool, typer.Option("--hash-sources", help="Record the full sha256 of each data shard in every model card (reads the optimizer slots too; the resume fingerprint never needs it).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report (as --report writes it) as JSON on stdout, instead of the display.")] = False,
    debug: Debug = False,
) -> None:
    """Convert every checkpoint of a zoo (or a manifest) in parallel; rerun to resume."""
    from tf2hf.batch.results import write_report
    from tf2hf.batch.run import run_batch
    from tf2hf.batch.display import make_display, print_summary
    from tf2hf.output.staging import check_out

    check_out(out)
    out = Path(out)
    from tf2hf.batch.zoo import check_out_root, check_report_path

    check_out_root(out)  # both before any work: neither is found only after converting everything
    if report is not None:
        check_report_path(report)
    entries = _batch_entries(zoo, manifest, out, all_steps=all_steps, executor=executor, scheduler=scheduler)
    options = {"family": family, "target": target, "task": task.value if task != Task.auto else None, "gelu": gelu.value if gelu else None,
               "dtype": dtype.value, "format": format.value, "hash_sources": hash_sources or None}
    with (render.NoDisplay() if render.is_quiet() or as_json else make_display(len(entries))) as display:
        result = run_batch(
            entries, out, workers=workers, executor=executor.value, scheduler=scheduler, force=force, verify=not no_verify,
            on_event=display.event, on_result=display.finished,
            zoo=str(zoo) if zoo is not None else None, manifest=str(manifest) if manifest is not None else None,
            **{k: v for k, v in options.items() if v is not None},
        )
    if report is not None:
        write_report(result, report)
    if as_json:
        render.print_data(result.to_dict())
    elif not render.is_quiet():
        print_summary(result, listed=True)  # the display listed each entry as it finished
    failed = result.counts["failed"]
    if failed:
        if as_json:
            raise typer.Exit(1)  # the report says which failed and why
        typer.echo(f"error: {failed} of {len(result.entries)} entries failed (reasons above); fix them and run the same command again", err=True)
        raise typer.Exit(1)


def _batch_entries(zoo: Path | None, manifest: Path | None, out: Path, *, all_steps: bool, executor: ExecutorKind, scheduler: str | None) -> list:
    """The entries to convert, after refusing option combinations that cannot work."""
    from tf2hf.errors import ClusterError, ZooError
    from tf2hf.batch.zoo import discover, load_manifest

    if (zoo is None) == (manifest is None):
        raise ZooError("pass either a ZOO folder or --manifest FILE (not both)")
    if scheduler is not None and executor != ExecutorKind.dask:
        raise ClusterError(f"--scheduler {scheduler}: only the dask executor uses a scheduler; add --executor dask")
    if executor == ExecutorKind.dask:
        from tf2hf.batch.dask_cluster import require_distributed

        require_distributed()
    if zoo is not None and zoo.is_dir() and out.exists() and zoo.resolve() == out.resolve():
        raise ZooError(f"{out}: the output root is the zoo itself; choose another --out")
    entries = load_manifest(manifest) if manifest is not None else discover(zoo, all_steps=all_steps, exclude=[out])
    if not entries:
        raise ZooError(f"{zoo}: no checkpoint (*.index) found in this folder or below; pass the folder that holds them")
    return entries


@app.command("inspect")
@boundary()
def inspect_command(
    ckpt: Annotated[Optional[Path], typer.Argument(help="The checkpoint: folder, prefix, or any of its files (also --tf, as in convert). The data shards are not needed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    layers: Annotated[bool, typer.Option("--layers", help="One row per encoder layer (or ALBERT group) instead of one for all.")] = False,
    config: ConfigOption = None,
    family: FamilyOption = None,
    target: Annotated[Optional[str], typer.Option("--target", "--tower", help="A family's variant, as in convert: brightmart albert|bert, ELECTRA discriminator|generator.")] = None,
    tf: Annotated[Optional[Path], typer.Option("--tf", help="The checkpoint, as convert takes it (instead of CKPT).")] = None,
    debug: Debug = False,
) -> None:
    """Show where a checkpoint's size comes from: parameters and bytes per part, slots, heads."""
    from tf2hf.errors import Tf2hfError
    from tf2hf.tools.inspection import format_report, inspect

    if (ckpt is None) == (tf is None):
        raise Tf2hfError("pass the checkpoint once: tf2hf inspect CKPT, or tf2hf inspect --tf CKPT")
    found = inspect(ckpt or tf, config=config, family=one_family(None, family), target=target)
    if as_json:
        render.print_json(found)
    else:
        for line in format_report(found, layers=layers):
            render.out(line)


@app.command()
@boundary()
def slim(
    ckpt: Annotated[Path, typer.Argument(help="The checkpoint: folder, prefix, or any of its files.")],
    out: Annotated[str, typer.Option("--out", callback=expand_user, help="Prefix of the new checkpoint (e.g. slim/model.ckpt-1000), or an existing folder.")],  # str: see convert
    force: Annotated[bool, typer.Option("--force", help="Replace a checkpoint that exists at --out.")] = False,
    as_json: ResultAsJson = False,
    debug: Debug = False,
) -> None:
    """Write a TF checkpoint without optimizer slots and bookkeeping (no TensorFlow needed)."""
    from tf2hf.tools.slim import slim as run_slim

    done = run_slim(ckpt, out, force=force)
    if as_json:
        render.print_json(done)
    else:
        render.print_slimmed(done)


def main() -> None:
    """The console entry point ``tf2hf``."""
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
