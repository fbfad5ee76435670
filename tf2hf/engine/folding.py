"""Fold long lists of per-layer names into one line per pattern.

``bert/encoder/layer_0/…/kernel`` … ``layer_11/…/kernel`` becomes
``bert/encoder/layer_{0…11}/…/kernel``: a problem that affects every layer reads as one line.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from typing import Iterable

_NUMBER = re.compile(r"(\d+)")


def _render(values: set[int]) -> str:
    ordered = sorted(values)
    if len(ordered) == 1:
        return str(ordered[0])
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return "{" + f"{ordered[0]}…{ordered[-1]}" + "}"
    return "{" + ",".join(map(str, ordered)) + "}"


def fold(names: Iterable[str]) -> list[str]:
    """Group names that differ only in their numbers; keep first-seen order of the groups."""
    groups: dict[tuple[str, ...], list[tuple[int, ...]]] = defaultdict(list)
    for name in names:
        pieces = _NUMBER.split(name)
        texts = tuple(pieces[0::2])
        numbers = tuple(int(p) for p in pieces[1::2])
        groups[texts].append(numbers)
    lines: list[str] = []
    for texts, tuples in groups.items():
        unique = sorted(set(tuples))
        columns = [set(column) for column in zip(*unique)] if unique and unique[0] else []
        product_size = 1
        for column in columns:
            product_size *= len(column)
        varying = [k for k, column in enumerate(columns) if len(column) > 1]
        linked = len(varying) > 1 and all(len({numbers[k] for k in varying}) == 1 for numbers in unique)
        if linked:
            # The same index in several places (layer_3/… -> layer.3.…): fold them together.
            product_size = len(columns[varying[0]])
            for k in varying[1:]:
                columns[k] = columns[varying[0]]
        if len(unique) == 1 or product_size == len(unique):
            rendered = [_render(column) for column in columns]
            lines.append("".join(itertools.chain.from_iterable(itertools.zip_longest(texts, rendered, fillvalue=""))))
        else:
            for numbers in unique:
                lines.append("".join(itertools.chain.from_iterable(itertools.zip_longest(texts, map(str, numbers), fillvalue=""))))
    return lines
