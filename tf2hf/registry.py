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

BUILTIN_MODULES = ("tf2hf.converters.bert", "tf2hf.converters.albert", "tf2hf.converters.brightmart")


@lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    """Every family by its name, in registration order. A module defines ``FAMILY`` or
    ``FAMILIES`` (several variants of one layout)."""
    found: dict[str, Family] = {}
    for module_name in BUILTIN_MODULES:
        module = importlib.import_module(module_name)
        for family in getattr(module, "FAMILIES", None) or (module.FAMILY,):
            found[family.name] = family
    return found


def group_names() -> list[str]:
    """The names users type: each family's group (or its own name)."""
    names: list[str] = []
    for family in families().values():
        name = family.group or family.name
        if name not in names:
            names.append(name)
    return names


def get_family(name: str) -> Family:
    try:
        return families()[name]
    except KeyError:
        known = ", ".join(group_names())
        raise FamilyError(f"unknown family {name!r}; known families: {known} (or 'auto')") from None


def in_group(name: str) -> list[Family]:
    members = [f for f in families().values() if f.name == name or f.group == name]
    if not members:
        known = ", ".join(group_names())
        raise FamilyError(f"unknown family {name!r}; known families: {known} (or 'auto')")
    return members


def select(name: str, names: Iterable[str], variant: str | None, source: str) -> Family:
    """The family for ``convert NAME``: ``auto`` or a group, narrowed by the checkpoint's names
    and by ``--target``."""
    names = list(names)
    candidates = list(families().values()) if name == "auto" else in_group(name)
    found = [f for f in candidates if matches(f, names)]
    if not found:
        elsewhere = [f for f in families().values() if f not in candidates and matches(f, names)]
        if name == "auto" or not elsewhere:
            if name != "auto" and len(candidates) == 1:
                return candidates[0]  # the planner explains what is missing
            sample = ", ".join(sorted(names)[:3])
            raise FamilyError(f"{source}: matches no known family (known: {', '.join(group_names())}); first variables: {sample}")
        other = elsewhere[0]
        raise FamilyError(
            f"{source}: not a{'n' if name[0] in 'aeiou' else ''} {name} checkpoint: it is a {other.group or other.name} checkpoint "
            f"({other.description}); use 'tf2hf convert {other.group or other.name}' or 'auto'"
        )
    variants = [f.variant for f in found if f.variant]
    if variant is not None:
        chosen = [f for f in found if f.variant == variant]
        if not chosen:
            offered = ", ".join(variants) if variants else "none"
            raise FamilyError(f"{source}: --target {variant} is not available for this checkpoint ({found[0].description}); targets: {offered}")
        return chosen[0]
    groups = {f.group or f.name for f in found}
    if len(groups) > 1:
        raise FamilyError(f"{source}: matches several families ({', '.join(sorted(groups))}); name one instead of 'auto'")
    return found[0]


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
