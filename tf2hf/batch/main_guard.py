"""Refusing ``convert_many`` called by a script at its top level, without the ``__main__`` guard.

The process pool's workers (``forkserver`` or ``spawn``) prepare themselves by importing the
main module of the parent again, as ``__mp_main__``, so that objects defined there can be
unpickled. A script that calls ``convert_many`` outside ``if __name__ == "__main__":`` would thus
run again in every worker, where starting processes fails: each entry would fail as "the worker
process died", after pages of tracebacks. This check finds that case before any process starts,
from the script's source, and says what to add.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tf2hf.errors import Tf2hfError


def _is_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"``, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def _guarded(source: str, line: int) -> bool:
    """Whether the top-level statement at ``line`` is inside an ``if __name__ == "__main__":``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True  # cannot tell: let multiprocessing decide
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return isinstance(node, ast.If) and _is_guard(node.test)
    return True


def _reimported(main) -> bool:
    """Whether a worker imports the main module again (multiprocessing.spawn's own rule: a main
    run by ``python -m pkg`` is ``pkg.__main__``, which workers never import)."""
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return not (name == "__main__" or name.endswith(".__main__"))
    return getattr(main, "__file__", None) is not None


def refuse_unguarded_main(start_method: str) -> None:
    """Raise at once when the running script would be run again by every worker."""
    main = sys.modules.get("__main__")
    if start_method == "fork" or main is None or not _reimported(main):
        return
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    path = getattr(main, "__file__", None)
    if frame is None or path is None:
        return  # not called from the script's own top level (a thread, a REPL)
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    if not _guarded(source, frame.f_lineno):
        raise Tf2hfError(
            f"{path}: line {frame.f_lineno} runs tf2hf.convert_many outside `if __name__ == \"__main__\":`; "
            "its worker processes import this script again and would run it too: put the code that converts under that line"
        )
