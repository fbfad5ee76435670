"""Which families exist, and which one a checkpoint belongs to.

Built-in families are modules of :mod:`tf2hf.converters` that define ``FAMILY``. Detection uses
only each family's ``signature`` names, so adding a family never touches this module beyond the
list below.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Iterable

from tf2hf.errors import FamilyError
from tf2hf.table import Family

BUILTIN_MODULES = ("tf2hf.converters.bert",)


@lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    found: dict[str, Family] = {}
    for module_name in BUILTIN_MODULES:
        family = importlib.import_module(module_name).FAMILY
        found[family.name] = family
    return found


def get_family(name: str) -> Family:
    try:
        return families()[name]
    except KeyError:
        known = ", ".join(sorted(families()))
        raise FamilyError(f"unknown family {name!r}; known families: {known} (or 'auto')") from None


def strip_name(family: Family, name: str) -> str:
    for prefix in family.strip_prefixes:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def matches(family: Family, names: Iterable[str]) -> bool:
    stripped = {strip_name(family, n) for n in names}
    return all(sig in stripped for sig in family.signature)


def detect(names: Iterable[str]) -> list[Family]:
    """All families whose signature names are all present."""
    names = list(names)
    return [family for family in families().values() if matches(family, names)]
