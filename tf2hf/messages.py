"""The library's log and the wording of its messages for Python callers.

tf2hf never prints: what the command line shows as a note or a warning is a record of the logger
``tf2hf`` (:data:`logger`), which has only a :class:`logging.NullHandler` until an application
(the CLI, or the user's own ``logging.basicConfig``) configures logging.

Messages are written once, in the spelling of the command line ("pass --vocab"), because that is
where most of them are read. Calls through the public Python API (``tf2hf.convert``,
``tf2hf.inspect_checkpoint``, ``tf2hf.convert_many``) run inside :func:`python_spelling`, which
rewrites option names into keyword arguments ("pass vocab=") in the errors raised, the results
returned and the log records emitted meanwhile. Doing it at that one boundary leaves the command
line's output exactly as it was and the messages of every module untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from typing import Iterator

from tf2hf.errors import Tf2hfError

logger = logging.getLogger("tf2hf")
logger.addHandler(logging.NullHandler())

_python_caller: contextvars.ContextVar[bool] = contextvars.ContextVar("tf2hf_python_caller", default=False)

#: Flags that are booleans on the command line and keyword arguments with a value in Python.
_BOOLEAN = {"force": "force=True", "no-verify": "verify=False", "allow-non-finite": "allow_non_finite=True", "dry-run": "dry_run=True", "no-tokenizer": "tokenizer=False",
            "all-steps": "all_steps=True", "lowercase": "lowercase=True", "no-lowercase": "lowercase=False"}
#: Options whose value is a word from a fixed list, and those words: "--gelu tanh" reads
#: gelu="tanh", while "--tower or --target" keeps its "or".
_CHOICES = {"gelu", "tower", "target", "task", "format", "dtype", "executor", "family"}
_VALUES = {"erf", "tanh", "discriminator", "generator", "albert", "bert", "electra", "tf2_bert", "auto", "safetensors", "bin",
           "float32", "float16", "bfloat16", "local", "dask", "pretraining", "fill-mask", "text-classification",
           "token-classification", "question-answering", "feature-extraction", "multiple-choice"}
# An option starts a word (a path such as run--2/x is left alone).
_FLAG = re.compile(r"(?<![^\s(`'\"])--([a-z][a-z-]*)(?: ([a-z][a-z0-9_-]*)\b)?")


def to_python(text: str) -> str:
    """``text`` with each command-line option spelled as the keyword argument it is in Python."""

    def spell(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if value and name in _CHOICES and value in _VALUES:
            return f'{name.replace("-", "_")}="{value}"'
        alone = _BOOLEAN.get(name, name.replace("-", "_") + "=")
        return f"{alone} {value}" if value else alone

    return _FLAG.sub(spell, text)


class _PythonSpelling(logging.Filter):
    """Rewrites the records emitted during a Python API call (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _python_caller.get():
            record.msg = to_python(record.getMessage())
            record.args = ()
        return True


logger.addFilter(_PythonSpelling())


@contextlib.contextmanager
def python_spelling() -> Iterator[None]:
    """Run a public API call: its log records and the message of a tf2hf error it raises use
    Python's spelling of the options."""
    token = _python_caller.set(True)
    try:
        yield
    except Tf2hfError as exc:
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (to_python(exc.args[0]), *exc.args[1:])
        raise
    finally:
        _python_caller.reset(token)


def respell_lists(result: object, *names: str) -> None:
    """Rewrite the message lists ``names`` (e.g. ``warnings``, ``notes``) of a returned result."""
    for name in names:
        values = getattr(result, name, None)
        if isinstance(values, list):
            setattr(result, name, [to_python(v) if isinstance(v, str) else v for v in values])


#: Options of ``tf2hf convert`` that ``tf2hf batch`` has only as keys of a manifest entry.
_MANIFEST_KEYS = {"config": "config", "vocab": "vocab", "lowercase": "lowercase", "no-lowercase": "lowercase"}
#: Options of ``tf2hf convert`` that ``tf2hf batch`` does not have at all.
_CONVERT_ONLY = {"allow-non-finite", "labels", "no-tokenizer"}
# An option and the placeholder of its value, if any ("--config FILE").
_BATCH_FLAG = re.compile(r"(?<![^\s(`'\"])--([a-z][a-z-]*)(?: ([A-Z]+)\b)?")


def to_batch(text: str) -> str:
    """``text`` (a message of a conversion, in the command line's spelling) as a batch entry's
    result says it: an option batch does not have is named where it is set instead — the key
    of a manifest entry, or ``tf2hf convert`` for that one checkpoint."""

    def spell(match: re.Match) -> str:
        name = match.group(1)
        if name in _MANIFEST_KEYS:
            return f'the "{_MANIFEST_KEYS[name]}" key of its --manifest entry'
        if name in _CONVERT_ONLY:
            return f"{match.group(0)} (an option of tf2hf convert, not of batch)"
        return match.group(0)

    return _BATCH_FLAG.sub(spell, text)
