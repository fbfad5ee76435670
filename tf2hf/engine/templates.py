"""The template grammar of family tables, implemented once.

A template is an exact name with placeholders (see :mod:`tf2hf.engine.table`): ``{i}`` a loop
letter, ``{p}`` the base-model prefix, ``{L}`` a dimension, and any of these plus a constant
offset, ``{i+4}`` or ``{L+4}`` (TF2 numbers embeddings, layers and pooler in one sequence).
The planner fills templates from known values; ``tf2hf inspect`` also matches names against
them when the sizes are unknown.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

# ``{i}``, ``{i+4}``, ``{L+4}``, ``{p}``: a loop letter, a dimension or the prefix, plus an offset.
PLACEHOLDER = re.compile(r"\{([A-Za-z]\w*)([+-]\d+)?\}")


def fill(template: str, values: Mapping[str, object]) -> str:
    """The template with the placeholders ``values`` names filled; the others are left as written
    (a rule's target is filled in two passes: loops and dims, then the prefix)."""

    def value(match: re.Match) -> str:
        name, offset = match.group(1), match.group(2)
        if name not in values:
            return match.group(0)
        return str(values[name] + int(offset)) if offset else str(values[name])

    return PLACEHOLDER.sub(value, template)


def fill_all(template: str, values: Mapping[str, int]) -> str | None:
    """The template with every placeholder filled, or None when one has no value."""
    if any(name not in values for name in placeholders(template)):
        return None
    return fill(template, values)


def placeholders(template: str) -> list[str]:
    """The names of the template's placeholders, in the order they appear."""
    return [m.group(1) for m in PLACEHOLDER.finditer(template)]


def loop_letters(template: str, loops: Mapping[str, str]) -> list[str]:
    """The loop letters the template uses, in the family's order of loops."""
    used = placeholders(template)
    return [letter for letter in loops if letter in used]


def count_indices(template: str, loops: Mapping[str, str], names: Iterable[str]) -> set[int]:
    """The loop indices for which ``names`` holds the template (one loop letter, offset undone)."""
    (letter,) = loop_letters(template, loops)
    (match,) = [m for m in PLACEHOLDER.finditer(template) if m.group(1) == letter]
    head, tail = template[: match.start()], template[match.end():]
    offset = int(match.group(2) or 0)
    pattern = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    return {int(m.group(1)) - offset for n in names if (m := pattern.fullmatch(n))}


def matcher(template: str, letters: Iterable[str]) -> tuple[re.Pattern[str], dict[str, int]]:
    """A regex for the template at unknown sizes, and the offset of each loop letter.

    Loop letters become named groups (the first occurrence of each; a repeat only has to be a
    number), every other placeholder any number: a dimension's value is what is unknown.
    """
    letters = set(letters)
    pattern, offsets, last = "", {}, 0
    for match in PLACEHOLDER.finditer(template):
        pattern += re.escape(template[last: match.start()])
        letter = match.group(1)
        if letter in letters and letter not in offsets:
            pattern += f"(?P<{letter}>\\d+)"
            offsets[letter] = int(match.group(2) or 0)
        else:
            pattern += r"\d+"
        last = match.end()
    pattern += re.escape(template[last:])
    return re.compile(pattern), offsets
