"""Planning: decide the fate of every source variable and every target key before reading data.

Order of work, written down once:

1. strip a hub prefix (``module/``) from every name, then apply the family's renames (TF2's
   ``/.ATTRIBUTES/VARIABLE_VALUE``, Keras' ``layer_normalization_N``); two names that read as
   one are refused;
2. refuse layouts the family names as impossible to hold in transformers;
3. resolve the sizes (dims) from the config and the checkpoint, and check they agree;
4. find the parts present (by marker variables) and choose the target class;
5. expand the chosen parts' rules over their loops (layers, groups ...);
6. classify every variable: mapped, dropped (optimizer slot / bookkeeping), discarded (a part
   the target class cannot hold, reported), or unknown;
7. check every target: all its sources exist, and the transform yields the expected shape.

Unknown variables, unfilled targets and wrong shapes are collected and raised together as one
:class:`~tf2hf.errors.MappingError`, folded by layer.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from tf2hf.engine import transforms
from tf2hf.errors import ConfigError, FamilyError, MappingError, UnsupportedModelError
from tf2hf.engine.folding import fold
from tf2hf.engine.nonweights import Drop, classify
from tf2hf.engine.registry import detect, normalise, strip_name
from tf2hf.engine.table import Family, Part, Rename, Target

FLOAT_DTYPES = {"float32", "float16", "bfloat16", "float64"}
MAX_LISTED = 12


class VariableInfo(Protocol):
    dtype: str
    shape: tuple[int, ...]
    size: int


@dataclass(frozen=True)
class PlannedTensor:
    """One tensor of the output file."""

    key: str
    sources: tuple[str, ...]  # names as they are in the checkpoint (prefix kept)
    op: str
    shape: tuple[int, ...]
    part: str
    why: str = ""

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class Plan:
    family: Family
    target: Target
    source: str
    tf_config: dict
    dims: dict[str, int]
    tensors: list[PlannedTensor]
    tied: dict[str, str]
    dropped: list[Drop]
    discarded: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    variables: Mapping[str, VariableInfo] = field(default_factory=dict)
    original: Mapping[str, str] = field(default_factory=dict)  # stripped name -> checkpoint name

    def dropped_summary(self) -> dict[str, dict[str, int]]:
        """{kind: {"count": n, "bytes": b}} for everything not written (drops and discards)."""
        summary: dict[str, dict[str, int]] = {}
        for drop in self.dropped:
            entry = summary.setdefault(drop.kind, {"count": 0, "bytes": 0})
            entry["count"] += 1
            entry["bytes"] += self.variables[drop.name].size
        for name, _why in self.discarded:
            entry = summary.setdefault("discarded weight", {"count": 0, "bytes": 0})
            entry["count"] += 1
            entry["bytes"] += self.variables[name].size
        return summary

    def tensors_per_part(self) -> Counter:
        return Counter(t.part for t in self.tensors)


# ``{i}``, ``{i+4}``, ``{L+4}``, ``{p}``: a loop letter, a dimension or the prefix, plus an offset.
_PLACEHOLDER = re.compile(r"\{([A-Za-z]\w*)([+-]\d+)?\}")


def _fill(template: str, values: Mapping[str, object]) -> str:
    def value(match: re.Match) -> str:
        name, offset = match.group(1), match.group(2)
        if name not in values:
            return match.group(0)
        return str(values[name] + int(offset)) if offset else str(values[name])

    return _PLACEHOLDER.sub(value, template)


def _placeholders(template: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(template)]


def _letters(template: str, loops: Mapping[str, str]) -> list[str]:
    used = _placeholders(template)
    return [letter for letter in loops if letter in used]


def _count(template: str, loops: Mapping[str, str], names: set[str]) -> set[int]:
    (letter,) = _letters(template, loops)
    (match,) = [m for m in _PLACEHOLDER.finditer(template) if m.group(1) == letter]
    head, tail = template[: match.start()], template[match.end():]
    offset = int(match.group(2) or 0)
    pattern = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    return {int(m.group(1)) - offset for n in names if (m := pattern.fullmatch(n))}


def resolve_dims(
    family: Family, tf_config: Mapping, shapes: Mapping[str, tuple[int, ...]], config_label: str
) -> tuple[dict[str, int], list[str]]:
    """Sizes from the config, checked against (or, where allowed, taken from) the checkpoint."""
    dims: dict[str, int] = {}
    notes: list[str] = []
    conflicts: list[str] = []
    names = set(shapes)
    for dim in family.dims:
        from_config = tf_config.get(dim.config_key) if dim.config_key else None
        if from_config is not None and (isinstance(from_config, bool) or not isinstance(from_config, int) or from_config <= 0):
            raise ConfigError(f"{config_label}: {dim.config_key} must be a positive integer, not {from_config!r}; fix the config")
        from_ckpt: int | None = None
        evidence = ""
        if dim.shape_of and dim.shape_of[0] in shapes and len(shapes[dim.shape_of[0]]) > dim.shape_of[1]:
            name, axis = dim.shape_of
            from_ckpt = shapes[name][axis]
            evidence = f"{name} is {list(shapes[name])}"
        elif dim.count_of:
            found = _count(dim.count_of, family.loops, names)
            if found:
                if found != set(range(max(found) + 1)):
                    raise MappingError(
                        f"{config_label}: the checkpoint has gaps in {fold([_fill(dim.count_of, {l: i for l in family.loops}) for i in sorted(found)])[0]}; it is incomplete"
                    )
                from_ckpt = max(found) + 1
                evidence = f"the checkpoint has {from_ckpt} ({fold([_fill(dim.count_of, {l: i for l in family.loops}) for i in sorted(found)])[0]})"
        if from_config is not None and from_ckpt is not None and from_config != from_ckpt:
            if dim.on_conflict == "error":
                conflicts.append(f"{dim.config_key}={from_config} but {evidence}")
            else:
                notes.append(f"{dim.config_key or dim.symbol}: config says {from_config}, using {from_ckpt} from the checkpoint ({evidence})")
        value = from_ckpt if from_ckpt is not None else from_config if from_config is not None else dim.default
        if value is not None:
            dims[dim.symbol] = value
    if conflicts:
        raise ConfigError(f"{config_label}: the config contradicts the checkpoint: {'; '.join(conflicts)}; pass the config that belongs to this checkpoint")
    return dims, notes


def choose_target(family: Family, present: set[str], source: str) -> Target:
    for target in family.targets:
        if target.parts <= present and present - target.parts <= set(target.discards):
            return target
    labels = ", ".join(family.part(p).label or p for p in sorted(present))
    raise MappingError(
        f"{source}: no transformers class takes this combination of parts: {labels}; "
        f"supported: {'; '.join(t.cls + ' (' + ', '.join(sorted(t.parts)) + ')' for t in family.targets)}"
    )


def _present(part: Part, names: set[str], dims: Mapping[str, int]) -> bool:
    """Whether the part's marker is in the checkpoint (a marker may name a dimension: ``{L+4}``)."""
    return _fill(part.marker, dims) in names


def _rules(part: Part, names: set[str], dims: Mapping[str, int]):
    """The part's rules, or its substitutes when TF omitted it (none for an optional part)."""
    if _present(part, names, dims):
        return part.rules
    return () if part.optional else part.when_absent or part.rules


def _expand(part: Part, family: Family, dims: Mapping[str, int], prefix: str, names: set[str]) -> list[tuple[str, tuple[str, ...], str, tuple, str]]:
    rows = []
    for rule in _rules(part, names, dims):
        letters = sorted({l for t in (rule.target, *rule.sources) for l in _letters(t, family.loops)})
        ranges = [range(dims[family.loops[l]]) for l in letters]
        for combo in itertools.product(*ranges):
            values = {**dims, **dict(zip(letters, combo)), "p": prefix}
            shape = tuple(dims[s] if isinstance(s, str) else s for s in rule.shape)
            rows.append((_fill(rule.target, values), tuple(_fill(s, values) for s in rule.sources), rule.op, shape, rule.why))
    return rows


def _needed_dims(family: Family, parts: set[str], names: set[str], dims: Mapping[str, int]) -> set[str]:
    needed = set()
    for part in family.parts:
        if part.name in parts:
            for rule in _rules(part, names, dims):
                needed.update(s for s in rule.shape if isinstance(s, str))
                for t in (rule.target, *rule.sources):
                    needed.update(family.loops[l] for l in _letters(t, family.loops))
                    needed.update(n for n in _placeholders(t) if n not in family.loops and n != "p")
    return needed


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


def make_plan(
    family: Family,
    variables: Mapping[str, VariableInfo],
    tf_config: Mapping,
    *,
    source: str,
    config_label: str,
) -> Plan:
    """Plan a conversion; reads shapes and dtypes only."""
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
    names = set(original)
    rename_notes = _rename_notes(family, original)

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
    config_notes: list[str] = []
    for check in family.config_checks:
        if check.key not in tf_config:
            if check.missing:
                config_notes.append(check.missing)
            continue
        value = tf_config[check.key]
        if isinstance(value, (str, int, float, bool)) and value in check.refuse:
            raise UnsupportedModelError(f"{config_label}: {check.key} is {value!r}: {check.refuse[value]}")

    shapes = {n: tuple(variables[original[n]].shape) for n in names}
    dims, notes = resolve_dims(family, tf_config, shapes, config_label)
    notes = rename_notes + config_notes + notes
    if family.notes is not None:
        notes += family.notes(dict(tf_config), dims)

    present = {part.name for part in family.parts if _present(part, names, dims) or part.when_absent or part.optional}
    target = choose_target(family, present, source)
    missing_dims = sorted(_needed_dims(family, set(target.parts), names, dims) - set(dims))
    if missing_dims:
        keys = [d.config_key or d.symbol for d in family.dims if d.symbol in missing_dims]
        raise ConfigError(f"{config_label}: cannot tell {', '.join(keys)} from the config or the checkpoint; add it to the config")

    tensors: list[PlannedTensor] = []
    tied: dict[str, str] = {}
    used: set[str] = set()
    unfilled: list[str] = []
    mismatched: list[str] = []
    for part in family.parts:
        if part.name not in target.parts:
            continue
        if not _present(part, names, dims) and (part.when_absent or part.optional) and part.absent_note:
            notes.append(part.absent_note)
        for key, sources, op_name, shape, why in _expand(part, family, dims, target.prefix, names):
            missing = [s for s in sources if s not in names]
            if missing:
                unfilled.append(f"{key} (needs {', '.join(missing)})")
                continue
            used.update(sources)
            op = transforms.get(op_name)
            produced = op.shape([shapes[s] for s in sources], shape)
            if produced != shape:
                got = " x ".join(f"{s} {list(shapes[s])}" for s in sources)
                mismatched.append(f"{key}: {got} gives {list(produced) if produced else 'no valid shape'} via {op_name}, expected {list(shape)}")
                continue
            bad_dtype = [s for s in sources if variables[original[s]].dtype not in FLOAT_DTYPES]
            if bad_dtype:
                mismatched.append(f"{key}: {bad_dtype[0]} has dtype {variables[original[bad_dtype[0]]].dtype}, expected a float type")
                continue
            tensors.append(PlannedTensor(key, tuple(original[s] for s in sources), op_name, shape, part.name, why))
        for key, to in part.tied.items():
            tied[_fill(key, {"p": target.prefix})] = _fill(to, {"p": target.prefix})

    discarded_parts = present - set(target.parts)
    discard_rules: dict[str, str] = {}
    for part in family.parts:
        if part.name in discarded_parts:
            for _k, sources, *_ in _expand(part, family, dims, target.prefix, names):
                for s in sources:
                    discard_rules.setdefault(s, f"{part.label or part.name}: {target.discards[part.name]}")

    dropped: list[Drop] = []
    discarded: list[tuple[str, str]] = []
    unknown: list[str] = []
    for name in sorted(names):
        if name in used:
            continue
        if name in discard_rules:
            discarded.append((original[name], discard_rules[name]))
            continue
        drop = classify(name, family.extra_drops)
        if drop is not None:
            dropped.append(Drop(original[name], drop.kind, drop.why))
        else:
            unknown.append(original[name])

    problems = (
        [f"unknown variable: {line}" for line in fold(unknown)]
        + [f"unfilled target: {line}" for line in fold(unfilled)]
        + [f"shape mismatch: {line}" for line in mismatched]
    )
    if problems:
        counts = []
        if unknown:
            counts.append(f"{len(unknown)} variable(s) no rule maps")
        if unfilled:
            counts.append(f"{len(unfilled)} target(s) nothing fills")
        if mismatched:
            counts.append(f"{len(mismatched)} shape mismatch(es)")
        shown = problems[:MAX_LISTED]
        more = f"; … and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise MappingError(
            f"{source}: cannot convert to {target.cls}: {', '.join(counts)}: {'; '.join(shown)}{more}",
            details=problems,
        )

    return Plan(
        family=family,
        target=target,
        source=source,
        tf_config=dict(tf_config),
        dims=dims,
        tensors=sorted(tensors, key=lambda t: t.key),
        tied=tied,
        dropped=dropped,
        discarded=discarded,
        notes=notes,
        parts=sorted(n for n in present if _present(family.part(n), names, dims) or family.part(n).when_absent),
        variables=variables,
        original=original,
    )
