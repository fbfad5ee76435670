"""Choices and options that several commands share, defined once so their help reads the same."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


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
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="TF config JSON (default: found beside the checkpoint).")]
ResultAsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Task = _choices("Task", "auto", "pretraining", "fill-mask", "text-classification", "token-classification", "question-answering", "feature-extraction")
TaskOption = Annotated[Task, typer.Option(
    "--task", help="What the model is for, as transformers pipelines name it; picks the class written (auto: from the heads present; "
    "heads the class does not take are left out and reported).")]
