"""The one place where errors become CLI output and exit codes.

Every command is wrapped by :func:`boundary`. A :class:`~tf2hf.errors.Tf2hfError` is the user's
to fix: one line ``error: …`` on stderr (plus its detail list when it has several), exit 1.
Anything else is a tf2hf bug: one line ``internal error: …``, exit 2. ``--debug`` lets the
exception through, so its traceback is shown instead.

Messages name the user's files, and a file name may hold anything: every line printed here
goes through :func:`tf2hf.errors.shown` (control characters escaped, long names shortened), the
one place where a message becomes terminal text.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Callable, TypeVar

import typer

from tf2hf.errors import Tf2hfError, shown

Command = TypeVar("Command", bound=Callable[..., None])


def named_file(message: str) -> str | None:
    """The file a message is about: messages start with it (``path: what is wrong; what to do``)."""
    head, sep, _ = message.partition(": ")
    if sep and head and ("/" in head or os.path.exists(head)):
        return head
    return None


def fail_json(exc: BaseException) -> None:
    """``--json``: the error as JSON on stdout, for the program reading it; same exit codes."""
    known = isinstance(exc, Tf2hfError)
    message = str(exc) if known else f"internal error: {type(exc).__name__}: {exc}"
    data = {"error": message, "file": named_file(str(exc)) if known else None, "type": type(exc).__name__,
            "details": list(getattr(exc, "details", []))}
    typer.echo(json.dumps(data, indent=2))
    raise typer.Exit(1 if known else 2) from None


def fail(exc: BaseException) -> None:
    """Report ``exc`` on stderr and exit: 1 for a tf2hf error, 2 for anything else."""
    if isinstance(exc, Tf2hfError):
        typer.echo(f"error: {shown(str(exc))}", err=True)
        details = getattr(exc, "details", [])
        if len(details) > 1:
            for line in details:
                typer.echo(f"  {shown(line)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"internal error: {type(exc).__name__}: {shown(str(exc))}; rerun with --debug and report the traceback", err=True)
    raise typer.Exit(2) from None


def boundary(*, interrupted: str | None = None) -> Callable[[Command], Command]:
    """Wrap a command in the exception boundary; it reads the command's ``debug`` parameter.

    ``interrupted``: the message for Ctrl-C, which then exits 130 quietly; without it Ctrl-C
    goes on to click, which prints ``Aborted!``.
    """

    def wrap(command: Command) -> Command:
        @functools.wraps(command)  # typer reads the options from the wrapped signature
        def run(*args, **kwargs) -> None:
            try:
                return command(*args, **kwargs)
            except typer.Exit:
                raise  # a command's own exit code
            except KeyboardInterrupt:
                if interrupted is None:
                    raise
                typer.echo(interrupted, err=True)
                raise typer.Exit(130) from None
            except BaseException as exc:
                if kwargs.get("debug"):
                    raise
                if kwargs.get("as_json"):
                    fail_json(exc)
                fail(exc)

        run.guarded = True  # lets a test check that no command goes without the boundary
        return run  # type: ignore[return-value]

    return wrap
