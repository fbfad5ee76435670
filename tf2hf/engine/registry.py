"""Which families exist, and which one a checkpoint belongs to.

Every family comes through the entry-point group ``tf2hf.converters``: each entry point
resolves to a :class:`~tf2hf.engine.table.Family`, or to a module that defines ``FAMILY`` or
``FAMILIES``. The entry points of the tf2hf distribution itself are the built-in families
(declared in its ``pyproject.toml``); other installed packages add theirs the same way, so this
module names no family. A family name defined twice is an error that names both packages.
Detection uses only each family's ``signature`` names.
"""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache
from typing import Iterable

from tf2hf.errors import FamilyError
from tf2hf.engine.roots import matches as has_root, renamed
from tf2hf.engine.table import Family, Rename

#: The entry-point group through which families are registered, built-in ones included.
ENTRY_POINT_GROUP = "tf2hf.converters"
#: The origin of built-in families: the distribution whose entry points they are.
BUILTIN = "tf2hf"


def _families_of(obj: object, where: str) -> tuple[Family, ...]:
    """The families an entry point provides."""
    if isinstance(obj, Family):
        return (obj,)
    found = getattr(obj, "FAMILIES", None) or ((obj.FAMILY,) if isinstance(getattr(obj, "FAMILY", None), Family) else ())
    if not found or not all(isinstance(f, Family) for f in found):
        raise FamilyError(f"{where}: defines neither a tf2hf Family nor a module with FAMILY or FAMILIES; fix or uninstall it")
    return tuple(found)


def _builtin_entries() -> list[importlib.metadata.EntryPoint]:
    """tf2hf's own entry points of the group, by name: the names start with a rank because
    setuptools writes entry points sorted by name, so no other order survives installation."""
    try:
        declared = importlib.metadata.distribution(BUILTIN).entry_points.select(group=ENTRY_POINT_GROUP)
    except importlib.metadata.PackageNotFoundError:
        declared = ()
    entries = sorted(declared, key=lambda entry: entry.name)
    if not entries:
        # Running from a source tree that was never installed, or installed before the
        # built-ins were entry points: without metadata there is no family at all.
        raise FamilyError(
            f"tf2hf's package metadata declares no families (entry-point group {ENTRY_POINT_GROUP}); "
            "reinstall tf2hf (pip install -e . in a checkout)"
        )
    return entries


def _is_builtin(entry: importlib.metadata.EntryPoint) -> bool:
    dist = getattr(entry, "dist", None)
    return dist is not None and dist.name.replace("_", "-").lower() == BUILTIN


@lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, Family], dict[str, str]]:
    found: dict[str, Family] = {}
    origin: dict[str, str] = {}

    def add(provided: tuple[Family, ...], package: str) -> None:
        for family in provided:
            if family.name in found:
                raise FamilyError(
                    f"family {family.name!r} is defined twice: by {origin[family.name]} and by {package}; "
                    f"uninstall one of them (pip uninstall {package if package != BUILTIN else origin[family.name]})"
                )
            found[family.name] = family
            origin[family.name] = package

    for entry in _builtin_entries():
        # A built-in that fails to import is a bug of tf2hf: its traceback is the report.
        add(_families_of(entry.load(), f"{entry.name} = {entry.value}"), BUILTIN)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if _is_builtin(entry):
            continue
        package = entry.dist.name if entry.dist is not None else entry.value
        where = f"plugin {entry.name} = {entry.value} (package {package})"
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken plugin must not read as a tf2hf crash
            raise FamilyError(f"{where}: cannot be imported ({type(exc).__name__}: {exc}); fix or uninstall {package}") from None
        add(_families_of(loaded, where), package)
    return found, origin


def families() -> dict[str, Family]:
    """Every family by its name, in registration order: built-in ones (by rank), then plugins'.
    A module defines ``FAMILY`` or ``FAMILIES`` (several variants of one layout)."""
    return _registry()[0]


def origin(name: str) -> str:
    """Which package defines the family: ``tf2hf`` or the plugin's distribution name."""
    return _registry()[1][name]


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


def _a(name: str) -> str:
    """'a bert', 'an albert'."""
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def select(name: str, names: Iterable[str], variant: str | None, source: str) -> Family:
    """The family for ``convert NAME``: ``auto`` or a group, narrowed by the checkpoint's names
    and by the variant asked for (``--target`` or ``--tower``, as the family's ``variant_option``)."""
    names = list(names)
    candidates = list(families().values()) if name == "auto" else in_group(name)
    found = [f for f in candidates if matches(f, names)]
    if not found:
        elsewhere = [f for f in families().values() if f not in candidates and matches(f, names)]
        if not elsewhere:
            refuse_object_based(names, source)
        if name == "auto" or not elsewhere:
            if name != "auto" and len(candidates) == 1:
                # Said now, before a config is looked for: a config error would mislead.
                family = candidates[0]
                stripped = {strip_name(family, n) for n in names}
                absent = next(sig for sig in family.signature if sig not in stripped)
                raise FamilyError(f"{source}: not {_a(name)} checkpoint ({absent} is missing); it matches no known family")
            sample = ", ".join(sorted(names)[:3])
            raise FamilyError(f"{source}: matches no known family (known: {', '.join(group_names())}); first variables: {sample}")
        other = elsewhere[0]
        raise FamilyError(
            f"{source}: not {_a(name)} checkpoint: it is {_a(other.group or other.name)} checkpoint "
            f"({other.description}); use 'tf2hf convert {other.group or other.name}' or 'auto'"
        )
    variants = [f.variant for f in found if f.variant]
    option = found[0].variant_option
    if variant is not None:
        chosen = [f for f in found if f.variant == variant]
        if not chosen:
            offered = ", ".join(variants) if variants else "none"
            raise FamilyError(f"{source}: {option} {variant} is not available for this checkpoint ({found[0].description}); choices: {offered}")
        return chosen[0]
    groups = {f.group or f.name for f in found}
    if len(groups) > 1:
        raise FamilyError(f"{source}: matches several families ({', '.join(sorted(groups))}); name one instead of 'auto'")
    if len(found) > 1 and any(f.needs_variant for f in found):
        listed = ", ".join(f.variant for f in found)
        choices = " or ".join(f"{option} {f.variant}" for f in found)
        raise FamilyError(f"{source}: this {found[0].group or found[0].name} checkpoint holds {len(found)} models ({listed}); choose one with {choices}")
    return found[0]


#: How tf.train.Checkpoint (TF2) names what it saves: by object path, not by variable name.
TF2_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def refuse_object_based(names: Iterable[str], source: str) -> None:
    """A TF2 object-based checkpoint that no family claims gets its own explanation."""
    names = list(names)
    if not any(n.endswith(TF2_SUFFIX) for n in names):
        return
    instead = "convert a TF1 name-based checkpoint (tf.compat.v1.train.Saver) of the model instead"
    # Families that read TF2 names are those whose renames strip the suffix.
    readers = [f.group or f.name for f in families().values() if normalise(f, "x" + TF2_SUFFIX)[1]]
    if not readers:
        raise FamilyError(
            f"{source}: this is a TF2 object-based checkpoint (tf.train.Checkpoint, names ending in {TF2_SUFFIX}), "
            f"which tf2hf cannot convert yet; {instead}"
        )
    sample = ", ".join(sorted(names)[:3])
    raise FamilyError(
        f"{source}: a TF2 object-based checkpoint (tf.train.Checkpoint) that matches no known family; of TF2 "
        f"checkpoints tf2hf converts only {', '.join(dict.fromkeys(readers))}; first variables: {sample}; {instead}"
    )


def normalise(family: Family, name: str) -> tuple[str, tuple[Rename, ...]]:
    """One name after the family's renames, and the renames that made it. The root prefix in
    front of the family's names is found per checkpoint, not per name (:mod:`.roots`)."""
    return renamed(family, name)


def strip_name(family: Family, name: str) -> str:
    return normalise(family, name)[0]


def matches(family: Family, names: Iterable[str]) -> bool:
    return has_root(family, names)


def detect(names: Iterable[str]) -> list[Family]:
    """All families whose signature names are all present (under one root)."""
    names = list(names)
    return [family for family in families().values() if matches(family, names)]
