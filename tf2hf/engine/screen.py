"""Steps 1 and 2 of planning (see :mod:`tf2hf.engine.plan`): read every name as the family's
table spells it, and refuse what the family cannot convert, before any size is resolved.
"""

from __future__ import annotations

import re
from typing import Mapping, Protocol

from tf2hf.engine.folding import fold
from tf2hf.engine.registry import detect, normalise, strip_name
from tf2hf.engine.table import Family, Rename
from tf2hf.errors import FamilyError, MappingError, UnsupportedModelError

MAX_LISTED = 12  # problems listed in one error message; all of them are in its details


class VariableInfo(Protocol):
    dtype: str
    shape: tuple[int, ...]
    size: int


def table_names(family: Family, variables: Mapping[str, VariableInfo], source: str) -> tuple[dict[str, str], list[str]]:
    """Table name -> checkpoint name for every variable, and a note per rename rule used."""
    original: dict[str, str] = {}
    collisions: dict[str, list[str]] = {}
    for name in variables:
        stripped = strip_name(family, name)
        if stripped in original:
            collisions.setdefault(stripped, [original[stripped]]).append(name)
            continue
        original[stripped] = name
    if collisions:
        _refuse_collisions(family, collisions, source)
    return original, _rename_notes(family, original)


def _refuse_collisions(family: Family, collisions: Mapping[str, list[str]], source: str) -> None:
    """Several checkpoint names read as one table name: two models, or renames that the names'
    positions could not disambiguate."""
    renamed = {stripped: group for stripped, group in collisions.items() if any(normalise(family, n)[1] for n in group)}
    if not renamed:
        stripped, group = next(iter(collisions.items()))
        raise MappingError(f"{source}: both {group[0]} and {group[1]} exist; the checkpoint holds two models")
    lines = [f"{' and '.join(group)} all read as {stripped}" for stripped, group in sorted(renamed.items())]
    whys = sorted({r.why for group in renamed.values() for n in group for r in normalise(family, n)[1]})
    raise UnsupportedModelError(
        f"{source}: {len(renamed)} weight(s) have several candidates, so their position does not say which is which: "
        f"{'; '.join(lines[:MAX_LISTED])}{'; …' if len(lines) > MAX_LISTED else ''} ({'; '.join(whys)}); nothing was written",
        details=lines,
    )


def _rename_notes(family: Family, original: Mapping[str, str]) -> list[str]:
    """One note per rename rule that changed any name: how many, with an example."""
    applied: dict[Rename, list[str]] = {}
    for name in original.values():
        for rename in normalise(family, name)[1]:
            applied.setdefault(rename, []).append(name)
    return [
        f"{len(names)} variable name(s) read as the table spells them ({rename.why}), e.g. {sorted(names)[0]}"
        for rename, names in applied.items()
    ]


def refuse_layouts(
    family: Family, variables: Mapping[str, VariableInfo], original: Mapping[str, str], tf_config: Mapping, *, source: str, config_label: str
) -> list[str]:
    """Raise for a checkpoint of another family or a layout the family refuses; return the
    notes of config checks whose key is absent (what is assumed instead)."""
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
    notes: list[str] = []
    for check in family.config_checks:
        if check.key not in tf_config:
            if check.missing:
                notes.append(check.missing)
            continue
        value = tf_config[check.key]
        if isinstance(value, (str, int, float, bool)) and value in check.refuse:
            raise UnsupportedModelError(f"{config_label}: {check.key} is {value!r}: {check.refuse[value]}")
    return notes
