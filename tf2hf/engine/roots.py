"""Step 1 of planning, the root: where in the checkpoint the family's names start.

The same encoder is saved under many roots: at the top (``bert/…``), inside a TF-Hub module
(``module/bert/…``), an Estimator name scope (``my_model/bert/…``), a TF2 object path at any
depth (``model/layer_with_weights-0/layer_with_weights-0/…``), or with its root scope itself
renamed (``AlbertModel(scope="albert")``: ``albert/…``). Rather than a list of known prefixes,
the engine looks for the one prefix in front of *all* of the family's signature names
(after the family's renames, and its ``root_aliases``) and reads every name relative to it:

* a name under the prefix loses it (and a root alias is read as the table spells it);
* a name beside the prefix's last object (``model/layer_with_weights-1/…`` next to an encoder at
  ``model/layer_with_weights-0/``) reads as ``../layer_with_weights-1/…``, as a relative path
  would, so a table can name a head saved beside a nested encoder;
* any other name (a run_classifier head beside a TF-Hub module, optimizer state) is read as is.

Nothing here knows a family: the signature, renames and aliases are the table's data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from tf2hf.engine.table import Family, Rename

#: How a name beside the root's last object is spelled in a table.
UP = "../"


@dataclass(frozen=True)
class Root:
    """The prefix in front of the family's names, and the root scope alias used (if any)."""

    prefix: str = ""
    alias: tuple[str, str] | None = None  # (checkpoint spelling, table spelling)

    @property
    def parent(self) -> str:
        """The prefix without its last object (``model/`` for ``model/layer_with_weights-0/``)."""
        head = self.prefix[:-1].rpartition("/")[0]
        return f"{head}/" if head else ""

    def under(self, name: str) -> bool:
        return name.startswith(self.prefix)

    def read(self, family: Family, name: str) -> tuple[str, tuple[Rename, ...]]:
        """The table's spelling of checkpoint name ``name``, and the renames that made it."""
        if name.startswith(self.prefix):
            tail = name[len(self.prefix):]
            if self.alias is not None and tail.startswith(self.alias[0]):
                tail = self.alias[1] + tail[len(self.alias[0]):]
            return renamed(family, tail)
        if self.parent and name.startswith(self.parent):
            tail, applied = renamed(family, name[len(self.parent):])
            return UP + tail, applied
        return renamed(family, name)

    def note(self) -> str | None:
        """What was stripped, for the plan's notes (none for names read as they are)."""
        said = []
        if self.prefix:
            said.append(f"the model's variables are under {self.prefix!r} in this checkpoint; that prefix was stripped")
        if self.alias is not None:
            said.append(f"its root scope {self.alias[0]!r} was read as {self.alias[1]!r}")
        return "; ".join(said) or None


def renamed(family: Family, name: str) -> tuple[str, tuple[Rename, ...]]:
    """Each of the family's renames, in order, applied to the result of the previous."""
    applied: list[Rename] = []
    for rename in family.renames:
        match = re.fullmatch(rename.pattern, name)
        if match:
            name = match.expand(rename.replacement)
            applied.append(rename)
    return name, tuple(applied)


def candidates(family: Family, names: Iterable[str]) -> list[Root]:
    """Every root in front of all of the family's signature names, shortest prefix first."""
    signature = set(family.signature)
    leaves = {s.rpartition("/")[2] for s in signature}
    found: dict[str, set[Root]] = {s: set() for s in signature}
    for name in names:
        if not any(leaf in name for leaf in leaves):  # most names hold no signature leaf
            continue
        cuts = [0] + [i + 1 for i, c in enumerate(name) if c == "/"]
        for cut in cuts:
            prefix, tail = name[:cut], name[cut:]
            spellings = [(None, tail)] + [
                ((seen, table), table + tail[len(seen):]) for seen, table in family.root_aliases.items() if tail.startswith(seen)
            ]
            for alias, spelled in spellings:
                read = renamed(family, spelled)[0]
                if read in signature:
                    found[read].add(Root(prefix, alias))
    common = set.intersection(*found.values()) if found else set()
    return sorted(common, key=lambda r: (len(r.prefix), r.alias is not None, r.prefix))


def matches(family: Family, names: Iterable[str]) -> bool:
    """Whether the family's signature is in the checkpoint under some root, and none of the
    names of its ``unless`` under the first such root."""
    names = list(names)
    found = candidates(family, names)
    if not found or not family.unless:
        return bool(found)
    read = {found[0].read(family, name)[0] for name in names}
    return not any(name in read for name in family.unless)


def read_all(family: Family, names: Iterable[str]) -> dict[str, str]:
    """Checkpoint name -> table name, under the first root found (none: names as they are).
    For grouping and help texts; planning refuses a checkpoint with several roots instead."""
    names = list(names)
    found = candidates(family, names)
    root = found[0] if found else Root()
    return {name: root.read(family, name)[0] for name in names}
