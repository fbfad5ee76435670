"""Steps 1 and 2 of planning (see :mod:`tf2hf.engine.plan`): read every name as the family's
table spells it (under the root :mod:`tf2hf.engine.roots` finds), and refuse what the family
cannot convert, before any size is resolved.
"""

from __future__ import annotations

import re
from typing import Mapping, Protocol

from tf2hf.engine.folding import fold
from tf2hf.engine.registry import detect
from tf2hf.engine.roots import Root, candidates
from tf2hf.engine.table import Family, Rename
from tf2hf.errors import FamilyError, MappingError, UnsupportedModelError

MAX_LISTED = 12  # problems listed in one error message; all of them are in its details


class VariableInfo(Protocol):
    dtype: str
    shape: tuple[int, ...]
    size: int


def find_root(family: Family, variables: Mapping[str, VariableInfo], source: str) -> Root:
    """The one root in front of the family's signature; none found: names as they are (the
    signature check of step 2 then says what is missing)."""
    found = candidates(family, variables)
    if len(found) > 1:
        shown = ", ".join(repr(r.prefix + (r.alias[0] if r.alias else "")) for r in found[:MAX_LISTED])
        raise MappingError(
            f"{source}: holds {len(found)} copies of a {family.name} model (under {shown}); tf2hf converts one model per "
            "checkpoint: save the one you want in a checkpoint of its own; nothing was written"
        )
    return found[0] if found else Root()


def table_names(family: Family, variables: Mapping[str, VariableInfo], source: str) -> tuple[dict[str, str], list[str], Root]:
    """Table name -> checkpoint name for every variable, a note per rule used (the root prefix
    stripped, each rename), and the root."""
    root = find_root(family, variables, source)
    original: dict[str, str] = {}
    collisions: dict[str, list[str]] = {}
    for name in variables:
        stripped = root.read(family, name)[0]
        if stripped in original:
            collisions.setdefault(stripped, [original[stripped]]).append(name)
            continue
        original[stripped] = name
    if collisions:
        _refuse_collisions(family, root, collisions, source)
    note = root.note()
    return original, ([note] if note else []) + _rename_notes(family, root, original), root


def _refuse_collisions(family: Family, root: Root, collisions: Mapping[str, list[str]], source: str) -> None:
    """Several checkpoint names read as one table name: two models, or renames that the names'
    positions could not disambiguate."""
    renamed = {stripped: group for stripped, group in collisions.items() if any(root.read(family, n)[1] for n in group)}
    if not renamed:
        stripped, group = next(iter(collisions.items()))
        raise MappingError(f"{source}: both {group[0]} and {group[1]} exist; the checkpoint holds two models")
    lines = [f"{' and '.join(group)} all read as {stripped}" for stripped, group in sorted(renamed.items())]
    whys = sorted({r.why for group in renamed.values() for n in group for r in root.read(family, n)[1]})
    raise UnsupportedModelError(
        f"{source}: {len(renamed)} weight(s) have several candidates, so their position does not say which is which: "
        f"{'; '.join(lines[:MAX_LISTED])}{'; …' if len(lines) > MAX_LISTED else ''} ({'; '.join(whys)}); nothing was written",
        details=lines,
    )


def _rename_notes(family: Family, root: Root, original: Mapping[str, str]) -> list[str]:
    """One note per rename rule that changed any name: how many, with an example."""
    applied: dict[Rename, list[str]] = {}
    for name in original.values():
        for rename in root.read(family, name)[1]:
            applied.setdefault(rename, []).append(name)
    return [
        f"{len(names)} variable name(s) read as the table spells them ({rename.why}), e.g. {sorted(names)[0]}"
        for rename, names in applied.items()
    ]


def refuse_layouts(
    family: Family, variables: Mapping[str, VariableInfo], original: Mapping[str, str], tf_config: Mapping, *, source: str, config_label: str
) -> list[str]:
    """Raise for a checkpoint of another family or a layout the family refuses; return what
    is assumed for the config checks whose key is absent (the plan's ``assumptions``)."""
    names = set(original)
    absent = [sig for sig in family.signature if sig not in names]
    if absent:
        others = [f.name for f in detect(variables) if f.name != family.name]
        found = f"it looks like a {' or '.join(others)} checkpoint (use that family, or 'auto')" if others else "it matches no known family"
        raise FamilyError(f"{source}: not a {family.name} checkpoint ({absent[0]} is missing); {found}")
    for refusal in family.refuse:
        hits = sorted(
            n for n in names
            if re.fullmatch(refusal.pattern, n) and (refusal.ndim is None or len(variables[original[n]].shape) == refusal.ndim)
        )
        if hits:
            raise UnsupportedModelError(f"{source}: {', '.join(fold(hits))}: {refusal.why}")
    assumed: list[str] = []
    for check in family.config_checks:
        if check.key not in tf_config:
            if check.missing:
                assumed.append(check.missing)
            continue
        value = tf_config[check.key]
        if isinstance(value, (str, int, float, bool)) and value in check.refuse:
            raise UnsupportedModelError(f"{config_label}: {check.key} is {value!r}: {check.refuse[value]}")
    return assumed
