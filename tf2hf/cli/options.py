"""Choices and options that several commands share, defined once so their help reads the same."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tf2hf.engine.table import TASKS  # plain data: no numpy, so --help stays light


def expand_user(value):
    """``~`` and ``~user`` at the start of a path option, as the shell expands them in ``--out ~/x``
    but not in ``--out=~/x`` (a literal ``./~`` folder would be made). Every path option of every
    command uses it, so ``--tf=~/a`` and ``--out=~/b`` mean the same home. Keeps the type given
    (a str stays a str: an empty --out must reach the check that refuses it)."""
    if value is None:
        return None
    expanded = os.path.expanduser(str(value))
    return Path(expanded) if isinstance(value, Path) else expanded


def _choices(name: str, *values: str) -> type[Enum]:
    """A ``str`` enum whose members are named by their values: typer lists them as the choices."""
    return Enum(name, [(value, value) for value in values], type=str, module=__name__)


Format = _choices("Format", "safetensors", "bin")
DType = _choices("DType", "float32", "float16", "bfloat16")
Gelu = _choices("Gelu", "erf", "tanh")
ExecutorKind = _choices("ExecutorKind", "local", "dask")

Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
FormatOption = Annotated[Format, typer.Option("--format", help="Weights file format.")]
DTypeOption = Annotated[DType, typer.Option("--dtype", help="Stored dtype of the weights.")]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", callback=expand_user, help="TF config JSON (default: found beside the checkpoint).")]
ResultAsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Task = _choices("Task", "auto", *TASKS)
TaskOption = Annotated[Task, typer.Option(
    "--task", help="What the model is for, as transformers pipelines name it; picks the class written (auto: from the heads present; "
    "heads the class does not take are left out and reported).")]
FamilyOption = Annotated[Optional[str], typer.Option(
    "--family", help="Family of the checkpoint (default: auto, detected from the variable names); every command that reads a checkpoint takes it.")]
LabelsOption = Annotated[Optional[str], typer.Option(
    "--labels", help="Names of a classifier's outputs, in order: neg,neu,pos or a file with one label a line (default: LABEL_0, LABEL_1 ...).")]


def one_family(positional: str | None, option: str | None) -> str:
    """The family, given as ``convert FAMILY`` or as ``--family`` (the same in every command)."""
    from tf2hf.errors import Tf2hfError

    if positional is not None and option is not None and positional != option:
        raise Tf2hfError(f"the family is given twice ({positional} and --family {option}); give it once")
    return positional or option or "auto"


def read_labels(value: str | None) -> list[str] | None:
    """``--labels``: a file of one label a line when such a file exists, else comma-separated."""
    if value is None:
        return None
    from tf2hf.errors import ConfigError

    path = Path(value).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the labels ({exc.__class__.__name__}); pass a UTF-8 text file, one label a line") from None
        names, where = [line.strip() for line in text.splitlines() if line.strip()], str(path)
    else:
        names, where = [name.strip() for name in value.split(",")], f"--labels {value}"
    if not names or any(not name for name in names):
        raise ConfigError(f"{where}: an empty label; give one name per output, e.g. --labels neg,neu,pos")
    return names
