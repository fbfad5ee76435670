"""Planning: decide the fate of every source variable and every target key before reading data.

Order of work, written down once:

1. find the root prefix in front of the family's signature (``module/``, an Estimator scope, a
   TF2 object path at any depth, a renamed root scope: :mod:`tf2hf.engine.roots`), read every
   name relative to it, then apply the family's renames (TF2's ``/.ATTRIBUTES/VARIABLE_VALUE``,
   Keras' ``layer_normalization_N``); two names that read as one are refused;
2. refuse a checkpoint that lacks the family's signature, layouts the family names as
   impossible to hold in transformers, and config values it cannot compute;
3. resolve the sizes (dims) from the config and the checkpoint, and check they agree;
4. find the parts present (by marker variables) and choose the target class;
5. expand the chosen parts' rules over their loops (layers, groups ...);
6. classify every variable: mapped, dropped (optimizer slot / bookkeeping), discarded (a part
   the target class cannot hold, reported), or unknown; an unknown variable outside the
   family's scopes is a head no class holds: refused under ``--task auto``, kept aside in
   ``extra_weights.safetensors`` with an explicit task (:mod:`tf2hf.engine.extras`);
7. check every target: all its sources exist, and the transform yields the expected shape.

Unknown variables, unfilled targets and wrong shapes are collected and raised together as one
:class:`~tf2hf.errors.MappingError`, folded by layer.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple

from tf2hf.engine import transforms
from tf2hf.engine.dims import resolve_dims
from tf2hf.engine.extras import kept_aside_note, set_aside
from tf2hf.engine.folding import fold
from tf2hf.engine.nonweights import Drop, classify
from tf2hf.engine.screen import MAX_LISTED, VariableInfo, refuse_layouts, table_names
from tf2hf.engine.table import Family, Part, Target
from tf2hf.engine.targets import choose_target, servable_tasks, task_notes
from tf2hf.engine.templates import fill, loop_letters, placeholders
from tf2hf.errors import ConfigError, MappingError

FLOAT_DTYPES = {"float32", "float16", "bfloat16", "float64"}


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
        return math.prod(self.shape)


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
    left_out: list[str] = field(default_factory=list)  # heads present but not written (the task chose)
    # Variables outside the model kept aside (explicit --task): (checkpoint name, shape).
    extras: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    root: str = ""  # the prefix stripped from the model's names
    assumptions: list[str] = field(default_factory=list)  # what a config did not say and the plan took

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


class Row(NamedTuple):
    """One rule expanded at one loop index: a target key and the table names it is made of."""

    key: str
    sources: tuple[str, ...]  # names as the table spells them (prefix stripped, renamed)
    op: str
    shape: tuple[int, ...]
    why: str
    part: str


def make_plan(family: Family, variables: Mapping[str, VariableInfo], tf_config: Mapping, *, source: str, config_label: str,
              task: str | None = None) -> Plan:
    """Plan a conversion; reads shapes and dtypes only. One call per step of the module docstring."""
    original, notes, root = table_names(family, variables, source)
    names = set(original)
    # A config check's absent key is assumed (e.g. brightmart's ln_type): said as an assumption.
    assumed = refuse_layouts(family, variables, original, tf_config, source=source, config_label=config_label)
    shapes = {n: tuple(variables[original[n]].shape) for n in names}
    dims, dim_notes = resolve_dims(family, tf_config, shapes, config_label)
    notes += dim_notes
    if family.notes is not None:
        notes += family.notes(dict(tf_config), dims)
    present, target, left_out = _choose_parts(family, names, dims, tf_config, source=source, config_label=config_label, task=task)
    notes += task_notes(family, target, present, left_out)
    rows, tied, absent_notes = _expand_parts(family, target, names, dims)
    notes += absent_notes
    # Step 7 runs before 6 only so that a broken table fails on its target parts first, as it
    # always has; both steps' findings are raised together below.
    tensors, unfilled, mismatched = _check_targets(rows, shapes, variables, original)
    dropped, discarded, unknown = _classify(family, target, present, rows, names, dims, original, left_out)
    extras: list[tuple[str, tuple[int, ...]]] = []
    if not unfilled and not mismatched:  # refused or kept aside only once the rest converts
        unknown, extras = set_aside(family, root, unknown, variables, original, task, servable_tasks(family, present), source)
        notes += [kept_aside_note(root, [name for name, _ in extras])] if extras else []
    _raise_problems(source, target, [original[n] for n in unknown], unfilled, mismatched)
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
        assumptions=assumed,
        parts=sorted(n for n in present if _present(family.part(n), names, dims) or family.part(n).when_absent),
        variables=variables,
        original=original,
        left_out=list(dict.fromkeys(family.part(p).label or p for p in left_out)),  # one Dense, two readings: once
        extras=extras,
        root=root.prefix,
    )


# --- step 4: the parts present and the target class ---------------------------------------------


def _choose_parts(family: Family, names: set[str], dims: Mapping[str, int], tf_config: Mapping, *, source: str, config_label: str,
                  task: str | None = None) -> tuple[set[str], Target, dict[str, str]]:
    """The parts that count as present, the target class and the parts it leaves out; every
    size the class needs is known."""
    present = {part.name for part in family.parts if _present(part, names, dims) or part.when_absent or part.optional}
    target, left_out = choose_target(family, present, source, task, config_architectures(tf_config))
    missing_dims = sorted(_needed_dims(family, set(target.parts), names, dims) - set(dims))
    if missing_dims:
        keys = [d.config_key or d.symbol for d in family.dims if d.symbol in missing_dims]
        raise ConfigError(f"{config_label}: cannot tell {', '.join(keys)} from the config or the checkpoint; add it to the config")
    return present, target, left_out


def config_architectures(tf_config: Mapping) -> tuple[str, ...]:
    """The class names a config's ``architectures`` lists (transformers' configs have it; a TF
    config has not, and anything but a list of names counts as none)."""
    named = tf_config.get("architectures")
    return tuple(n for n in named if isinstance(n, str)) if isinstance(named, list) else ()


def _present(part: Part, names: set[str], dims: Mapping[str, int]) -> bool:
    """Whether the part's marker is in the checkpoint (a marker may name a dimension: ``{L+4}``)."""
    return fill(part.marker, dims) in names


def _rules(part: Part, names: set[str], dims: Mapping[str, int]):
    """The part's rules, or its substitutes when TF omitted it (none for an optional part)."""
    if _present(part, names, dims):
        return part.rules
    return () if part.optional else part.when_absent or part.rules


def _needed_dims(family: Family, parts: set[str], names: set[str], dims: Mapping[str, int]) -> set[str]:
    needed = set()
    for part in family.parts:
        if part.name in parts:
            for rule in _rules(part, names, dims):
                needed.update(s for s in rule.shape if isinstance(s, str))
                for t in (rule.target, *rule.sources):
                    needed.update(family.loops[l] for l in loop_letters(t, family.loops))
                    needed.update(n for n in placeholders(t) if n not in family.loops and n != "p")
    return needed


# --- step 5: rules expanded over their loops ------------------------------------------------------


def _expand(part: Part, family: Family, dims: Mapping[str, int], prefix: str, names: set[str]) -> list[Row]:
    rows = []
    for rule in _rules(part, names, dims):
        letters = sorted({l for t in (rule.target, *rule.sources) for l in loop_letters(t, family.loops)})
        ranges = [range(dims[family.loops[l]]) for l in letters]
        for combo in itertools.product(*ranges):
            values = {**dims, **dict(zip(letters, combo)), "p": prefix}
            shape = tuple(dims[s] if isinstance(s, str) else s for s in rule.shape)
            rows.append(Row(fill(rule.target, values), tuple(fill(s, values) for s in rule.sources), rule.op, shape, rule.why, part.name))
    return rows


def _expand_parts(family: Family, target: Target, names: set[str], dims: Mapping[str, int]) -> tuple[list[Row], dict[str, str], list[str]]:
    """The rows of the target's parts, its tied keys, and a note per substituted part."""
    rows: list[Row] = []
    tied: dict[str, str] = {}
    notes: list[str] = []
    for part in family.parts:
        if part.name not in target.parts:
            continue
        if not _present(part, names, dims) and (part.when_absent or part.optional) and part.absent_note:
            notes.append(part.absent_note)
        rows += _expand(part, family, dims, target.prefix, names)
        for key, to in part.tied.items():
            tied[fill(key, {"p": target.prefix})] = fill(to, {"p": target.prefix})
    return rows, tied, notes


# --- step 6: every variable classified ------------------------------------------------------------


def _classify(
    family: Family, target: Target, present: set[str], rows: list[Row], names: set[str], dims: Mapping[str, int], original: Mapping[str, str],
    left_out: Mapping[str, str],
) -> tuple[list[Drop], list[tuple[str, str]], list[str]]:
    """(dropped, discarded, unknown table names) among the variables no complete row uses."""
    used = {s for row in rows if all(s in names for s in row.sources) for s in row.sources}
    reasons = {**target.discards, **left_out}
    discard_rules: dict[str, str] = {}
    for part in family.parts:
        if part.name in present - set(target.parts) and part.name in reasons:
            for row in _expand(part, family, dims, target.prefix, names):
                for s in row.sources:
                    discard_rules.setdefault(s, f"{part.label or part.name}: {reasons[part.name]}")
    dropped: list[Drop] = []
    discarded: list[tuple[str, str]] = []
    unknown: list[str] = []
    for name in sorted(names - used):
        if name in discard_rules:
            discarded.append((original[name], discard_rules[name]))
            continue
        drop = classify(name, family.extra_drops)
        if drop is not None:
            dropped.append(Drop(original[name], drop.kind, drop.why))
        else:
            unknown.append(name)
    return dropped, discarded, unknown


# --- step 7: every target checked -------------------------------------------------------------------


def _check_targets(
    rows: list[Row], shapes: Mapping[str, tuple[int, ...]], variables: Mapping[str, VariableInfo], original: Mapping[str, str]
) -> tuple[list[PlannedTensor], list[str], list[str]]:
    """(tensors, unfilled, mismatched): each row's sources exist, give its shape, are floats."""
    tensors: list[PlannedTensor] = []
    unfilled: list[str] = []
    mismatched: list[str] = []
    for key, sources, op_name, shape, why, part in rows:
        missing = [s for s in sources if s not in shapes]
        if missing:
            unfilled.append(f"{key} (needs {', '.join(missing)})")
            continue
        produced = transforms.get(op_name).shape([shapes[s] for s in sources], shape)
        if produced != shape:
            got = " x ".join(f"{s} {list(shapes[s])}" for s in sources)
            mismatched.append(f"{key}: {got} gives {list(produced) if produced else 'no valid shape'} via {op_name}, expected {list(shape)}")
            continue
        bad_dtype = [s for s in sources if variables[original[s]].dtype not in FLOAT_DTYPES]
        if bad_dtype:
            mismatched.append(f"{key}: {bad_dtype[0]} has dtype {variables[original[bad_dtype[0]]].dtype}, expected a float type")
            continue
        tensors.append(PlannedTensor(key, tuple(original[s] for s in sources), op_name, shape, part, why))
    return tensors, unfilled, mismatched


def _raise_problems(source: str, target: Target, unknown: list[str], unfilled: list[str], mismatched: list[str]) -> None:
    """Everything wrong, raised at once: unknown variables and unfilled targets folded by layer."""
    problems = (
        [f"unknown variable: {line}" for line in fold(unknown)]
        + [f"unfilled target: {line}" for line in fold(unfilled)]
        + [f"shape mismatch: {line}" for line in mismatched]
    )
    if not problems:
        return
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
