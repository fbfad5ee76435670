"""tf2hf: convert TensorFlow 1.x BERT-family checkpoints into Hugging Face transformers folders.

Importing this package is cheap: the public functions are bound on first use (``from tf2hf
import convert`` loads the converter, never torch or transformers until a conversion verifies).
They are the library's functions themselves, wrapped only so that their messages name Python
keyword arguments instead of command-line options (:mod:`tf2hf.messages`); ``help()`` shows
their real parameters. The library logs to ``logging.getLogger("tf2hf")`` and never prints.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import TYPE_CHECKING, Any, Callable

from tf2hf.errors import Tf2hfError

__version__ = "0.1.0"

__all__ = ["__version__", "Tf2hfError", "convert", "convert_many", "inspect_checkpoint"]

if TYPE_CHECKING:  # pragma: no cover
    from tf2hf.api import convert
    from tf2hf.batch.run import convert_many
    from tf2hf.tools.inspection import inspect as inspect_checkpoint

#: public name -> (module, function). Not ``inspect``: ``from tf2hf import *`` or a
#: ``from tf2hf import inspect`` shadowed the standard library's module of that name.
_FUNCTIONS = {
    "convert": ("tf2hf.api", "convert"),
    "convert_many": ("tf2hf.batch.run", "convert_many"),
    "inspect_checkpoint": ("tf2hf.tools.inspection", "inspect"),
}
#: Message lists of the results, respelled for Python (see tf2hf.messages).
_RESULT_TEXT = ("warnings", "notes")


def _public(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    from tf2hf.messages import python_spelling, respell_lists, to_python

    if name == "convert_many":
        @functools.wraps(function)
        def many(*args: Any, **kwargs: Any):
            with python_spelling():
                for result in function(*args, **kwargs):
                    if isinstance(result.reason, str):
                        result.reason = to_python(result.reason)
                    yield result

        return many

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any):
        with python_spelling():
            result = function(*args, **kwargs)
        respell_lists(result, *_RESULT_TEXT)
        return result

    return call


def __getattr__(name: str) -> Any:
    if name == "inspect":
        warnings.warn("tf2hf.inspect is deprecated (it shadows the standard library's inspect); use tf2hf.inspect_checkpoint",
                      DeprecationWarning, stacklevel=2)
        return __getattr__("inspect_checkpoint")
    if name not in _FUNCTIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _FUNCTIONS[name]
    value = _public(getattr(importlib.import_module(module), attribute), name)
    value.__name__ = value.__qualname__ = name
    value.__module__ = __name__
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_FUNCTIONS})
