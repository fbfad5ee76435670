"""The ``tf2hf`` command line.

This is the one place where errors become output: a :class:`~tf2hf.errors.Tf2hfError` turns
into one line on stderr (plus its detail list, if any) and exit code 1; ``--debug`` shows the
traceback instead. Heavy modules are imported inside the commands, so ``tf2hf --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tf2hf.errors import Tf2hfError
from tf2hf.sizes import human

app = typer.Typer(
    name="tf2hf",
    help="Convert TensorFlow 1.x BERT-family checkpoints into Hugging Face transformers folders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
        from tf2hf.folding import fold

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
    family: Annotated[str, typer.Argument(help="Family of the checkpoint: bert, albert, or auto to detect it.")],
    tf: Annotated[Path, typer.Option("--tf", help="The checkpoint: folder, prefix (model.ckpt-N), or any of its .index/.data/.meta files.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (must not exist unless --force).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TF config JSON (default: found beside the checkpoint).")] = None,
    vocab: Annotated[Optional[Path], typer.Option("--vocab", help="vocab.txt (default: found beside the checkpoint).")] = None,
    format: Annotated[Format, typer.Option("--format", help="Weights file format.")] = Format.safetensors,
    dtype: Annotated[DType, typer.Option("--dtype", help="Stored dtype of the weights.")] = DType.float32,
    gelu: Annotated[Optional[Gelu], typer.Option("--gelu", help="GELU formula for configs that say 'gelu': erf (transformers 'gelu') or tanh ('gelu_new'). Default: the family's.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Output layout where a family offers several: for brightmart albert_zh, albert (default, AlbertFor*) or bert (BertFor*).")] = None,
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
    """List the supported families and the transformers classes each converts to."""
    from tf2hf.registry import families

    for family in families().values():
        typer.echo(f"{family.name}: {family.description}")
        for target in family.targets:
            typer.echo(f"  {target.cls:<32} parts: {', '.join(sorted(target.parts))}")
        typer.echo(f"  example: tf2hf convert {family.name} --tf model.ckpt-1000 --out {family.name}-model")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
