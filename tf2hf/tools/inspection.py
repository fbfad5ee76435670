"""``tf2hf inspect``: where a checkpoint's size comes from, from its index alone.

No tensor data is read (the data shards may be absent) and neither torch nor transformers is
imported. Every variable of the index lands in exactly one group:

- the model's own weights, by the part of the family table that names them: ``embeddings``,
  each ``encoder layer N`` (ALBERT: each ``encoder group N``), ``pooler``, each head;
- optimizer slots, by kind (``adam_m``, ``Adam_1``, ``beta1_power`` …) and bookkeeping
  (``global_step`` …), as :mod:`tf2hf.engine.nonweights` classifies them;
- ``unmapped: <scope>`` for anything else (a checkpoint of no known family, or weights the
  family's table does not know).

The family, the heads, the transformers class and the size of the converted file come from the
same planner ``tf2hf convert`` uses (``make_plan``), run on names and shapes.

This module is not called ``inspect``: importing a submodule binds its name on the package, which
would replace the function ``tf2hf.inspect``.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections import Counter
from pathlib import Path

from tf2hf.engine.nonweights import BOOKKEEPING, OPTIMIZER, classify
from tf2hf.engine.table import Family
from tf2hf.engine.templates import fill_all, loop_letters, matcher
from tf2hf.errors import Tf2hfError
from tf2hf.tfckpt import open_checkpoint
from tf2hf.tools.inspection_report import (  # the report's types live there; callers import them from here
    BOOKKEEPING_KIND,
    HEAD,
    MODEL,
    OPTIMIZER_KIND,
    UNMAPPED,
    CheckpointReport,
    Group,
    format_report,
)

__all__ = ["CheckpointReport", "Group", "format_report", "inspect"]

#: Words for the loop letters of family tables, as group names show them.
LOOP_WORDS = {"i": "layer", "g": "group", "j": "inner group"}
#: Bytes per parameter of the converted file (float32, the default).
CONVERTED_ITEMSIZE = 4


def inspect(
    path: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    family: str = "auto",
    variant: str | None = None,
    target: str | None = None,
) -> CheckpointReport:
    """Inspect the checkpoint at ``path`` (any form ``convert --tf`` takes); reads the index only.

    ``family`` and ``variant`` (brightmart's ``albert``/``bert``, an ELECTRA tower; ``target`` is
    another name of it) are those of ``tf2hf convert``; when the checkpoint needs a choice that
    is not given, the first family that matches is used and the report says so.
    """
    started = time.perf_counter()
    if variant is not None and target is not None:
        raise Tf2hfError(f"{path}: pass either variant or target, not both (they name one choice)")
    with open_checkpoint(path) as ckpt:
        source = str(ckpt.prefix)
        variables = dict(ckpt.variables)
        index_bytes = ckpt.index_path.stat().st_size
        shard_paths = list(ckpt.shard_paths)
    notes: list[str] = []
    problems: list[str] = []
    fam = _choose_family(family, variables, variant if variant is not None else target, source, notes, problems)
    plan, config_path, tf_config = _plan(fam, variables, ckpt.prefix.parent, config, source, notes, problems) if fam else (None, None, {})
    grouping = _group_variables(fam, variables, plan, _sizes(fam, plan, tf_config, variables, source))
    report = _report(source, variables, index_bytes, shard_paths, fam, plan, config_path, grouping)
    report.notes, report.problems = notes, problems
    report.graph = _graph_line(fam, ckpt.prefix, tf_config, problems) if fam else ""
    report.seconds = time.perf_counter() - started
    return report


def _graph_line(fam: Family, prefix: Path, tf_config: dict, problems: list[str]) -> str:
    """What the training graph beside the checkpoint shows, next to what the config says."""
    from tf2hf.engine.graph_config import epsilon_differs
    from tf2hf.engine.graph_facts import read_facts

    try:
        facts = read_facts(fam, prefix, None)
    except Tf2hfError as exc:
        problems.append(str(exc))
        return ""
    if facts.path is None:
        return "none beside the checkpoint (activation and heads come from the config or defaults)"
    shown = []
    if facts.activation:
        shown.append(f"activation {facts.activation} (config: hidden_act {tf_config.get('hidden_act', 'not given')})")
    if facts.heads:
        shown.append(f"{facts.heads} heads (config: num_attention_heads {tf_config.get('num_attention_heads', 'not given')})")
    said = tf_config.get("layer_norm_eps")
    # Shown where it is news, as the conversion judges it: against the config, or upstream's
    # 1e-12 (every family's default) when the config says nothing.
    if facts.epsilon is not None and epsilon_differs(facts.epsilon, float(said if said is not None else 1e-12)):
        shown.append(f"LayerNorm epsilon {facts.epsilon:g} (config: layer_norm_eps {said if said is not None else 'not given'})")
    if facts.norm_order and fam.graph is not None and fam.graph.order_key:
        key = fam.graph.order_key
        shown.append(f"{facts.norm_order}-LN (config: {key} {tf_config.get(key, 'not given')})")
    return f"{facts.path}: {'; '.join(shown) if shown else 'shows neither the activation nor the heads'}"


def _choose_family(family: str, variables: dict, variant: str | None, source: str, notes: list[str], problems: list[str]) -> Family | None:
    """The family as ``convert`` chooses it; else the first that matches (said in a note)."""
    from tf2hf.engine.registry import detect, in_group, matches, select

    try:
        return select(family, variables, variant, source)
    except Tf2hfError as exc:
        try:
            candidates = detect(variables) if family == "auto" else [f for f in in_group(family) if matches(f, variables)]
        except Tf2hfError:
            candidates = []
        if candidates:
            notes.append(f"{exc}; grouped as {candidates[0].name} ({candidates[0].description})")
            return candidates[0]
        problems.append(str(exc))
        return None


def _plan(fam: Family, variables: dict, folder: Path, config, source: str, notes: list[str], problems: list[str]):
    """(plan or None, config path or None, TF config): the planner of ``convert``, on names and shapes."""
    from tf2hf.engine.plan import make_plan

    config_path, tf_config = None, {}
    try:
        tf_config, config_path, note = _read_config(fam, folder, config)
        if note:
            notes.append(note)
        plan = make_plan(fam, variables, tf_config, source=source, config_label=config_path or source)
        notes.extend(plan.notes)
        return plan, config_path, tf_config
    except Tf2hfError as exc:
        problems.append(str(exc))
        return None, config_path, tf_config


def _read_config(family: Family, folder: Path, given: str | os.PathLike[str] | None) -> tuple[dict, str | None, str | None]:
    """(TF config, its path, a note): without a config the sizes come from the shapes alone."""
    from tf2hf.sources import load_config, locate_config

    found, candidates = locate_config(folder, family.config_names, given)
    if found is None:
        what = f"several configs ({', '.join(p.name for p in candidates)})" if candidates else "no config"
        return {}, None, f"{what} beside the checkpoint: sizes taken from the shapes alone (pass --config)"
    # A given path is reported as it was given (the user's spelling, not a normalised Path).
    return load_config(found), str(given if given is not None else found), None


def _sizes(fam: Family | None, plan, tf_config: dict, variables: dict, source: str) -> dict[str, int]:
    """The plan's sizes; when planning failed, what the config and shapes still tell."""
    from tf2hf.engine.dims import resolve_dims
    from tf2hf.engine.roots import read_all

    if plan is not None:
        return dict(plan.dims)
    if fam is None:
        return {}
    try:
        table = read_all(fam, variables)
        shapes = {table[n]: tuple(i.shape) for n, i in variables.items()}
        return resolve_dims(fam, tf_config, shapes, source)[0]
    except Exception:  # the sizes are only a help for grouping here
        return {}


def _sources(family: Family) -> list[tuple[str, str, list[str]]]:
    """(part name, source template, loop letters in it) for every rule of the family."""
    return [
        (part.name, source, loop_letters(source, family.loops))
        for part in family.parts
        for rule in (*part.rules, *part.when_absent)
        for source in rule.sources
    ]


def _expanded(family: Family, dims: dict[str, int]) -> dict[str, tuple[str, dict[str, int]]]:
    """Every source name the family's rules produce at these sizes -> (part, loop values)."""
    names: dict[str, tuple[str, dict[str, int]]] = {}
    for part, template, letters in _sources(family):
        if any(family.loops[l] not in dims for l in letters):
            continue
        for combo in itertools.product(*(range(dims[family.loops[l]]) for l in letters)):
            loops = dict(zip(letters, combo))
            name = fill_all(template, {**dims, **loops})
            if name is not None:
                names.setdefault(name, (part, loops))
    return names


def _slot_kind(name: str) -> str:
    """``…/kernel/adam_m`` -> ``adam_m``; ``beta1_power_2`` -> ``beta1_power``."""
    last = name.rsplit("/", 1)[-1]
    return re.sub(r"_\d+$", "", last) if "power" in last else last


class _Grouping:
    """Puts each variable in its group, in report order: model parts, heads, unmapped, slots, bookkeeping."""

    def __init__(self, fam: Family | None, dims: dict[str, int]):
        self.fam = fam
        self.expanded = _expanded(fam, dims) if fam else {}
        # When the sizes are unknown (the plan failed), names are matched against the templates.
        self.matchers = [(part, *matcher(template, letters)) for part, template, letters in _sources(fam)] if fam else []
        self.labels = {p.name: (p.label or p.name) for p in fam.parts} if fam else {}
        self.base = set(fam.base_parts) | {fam.pooler_part} if fam else set()
        self.part_order = {p.name: k for k, p in enumerate(fam.parts)} if fam else {}
        self.groups: dict[str, Group] = {}
        self.order: dict[str, tuple] = {}

    def group(self, key: str, kind: str, rank: tuple, index: int | None = None) -> Group:
        if key not in self.groups:
            self.groups[key] = Group(key, kind, index=index)
            self.order[key] = rank
        return self.groups[key]

    def dropped(self, stripped: str, drop) -> Group:
        if drop.kind == OPTIMIZER:
            kind = _slot_kind(stripped)
            return self.group(f"optimizer: {kind}", OPTIMIZER_KIND, (3, kind))
        if drop.kind == BOOKKEEPING:
            return self.group(BOOKKEEPING, BOOKKEEPING_KIND, (4, drop.kind))
        # weights the family leaves out of this conversion (e.g. ELECTRA's other tower)
        return self.group(f"not converted: {drop.kind}", UNMAPPED, (2, drop.kind))

    def weight(self, stripped: str) -> Group:
        found = self.expanded.get(stripped)
        if found is None:
            for part, regex, offsets in self.matchers:
                match = regex.fullmatch(stripped)
                if match is not None:
                    found = (part, {l: int(match.group(l)) - offsets[l] for l in offsets})
                    break
        if found is None:
            scope = stripped.split("/", 1)[0] if "/" in stripped else stripped
            return self.group(f"unmapped: {scope}", UNMAPPED, (2, scope))
        part, loops = found
        letter = next((l for l in self.fam.loops if l in loops), None)
        if letter is not None:
            key = f"{part} {LOOP_WORDS.get(letter, letter)} {loops[letter]}"
            return self.group(key, MODEL, (0, self.part_order[part], loops[letter]), index=loops[letter])
        kind = MODEL if part in self.base else HEAD
        key = part if kind == MODEL else f"head: {self.labels[part]}"
        return self.group(key, kind, (0 if kind == MODEL else 1, self.part_order[part], 0))

    def ordered(self) -> list[Group]:
        return [self.groups[k] for k in sorted(self.groups, key=lambda k: self.order[k])]


def _group_variables(fam: Family | None, variables: dict, plan, dims: dict[str, int]) -> _Grouping:
    from tf2hf.engine.roots import read_all

    table = read_all(fam, variables) if fam else {}
    written = {s for t in plan.tensors for s in t.sources} if plan else set()
    grouping = _Grouping(fam, dims)
    for name, info in variables.items():
        stripped = table.get(name, name)
        # Slots and bookkeeping first (a slot of a weight the family drops is still a slot).
        drop = classify(stripped) or (classify(stripped, fam.extra_drops) if fam else None)
        if drop is not None and name not in written:
            grouping.dropped(stripped, drop).add(info.numel, info.size, info.dtype)
            continue
        g = grouping.weight(stripped)
        g.add(info.numel, info.size, info.dtype)
        g.converted = g.converted or name in written
    return grouping


def _report(source: str, variables: dict, index_bytes: int, shard_paths: list[Path], fam: Family | None, plan, config_path, grouping: _Grouping) -> CheckpointReport:
    ordered = grouping.ordered()
    weights = [g for g in ordered if g.kind in (MODEL, HEAD)]
    model_bytes = sum(g.bytes for g in weights)
    unmapped_bytes = sum(g.bytes for g in ordered if g.kind == UNMAPPED)
    extents: dict[int, int] = {}
    for info in variables.values():
        extents[info.shard] = max(extents.get(info.shard, 0), info.offset + info.size)
    data_bytes = sum(extents.values())
    present = [p for p in shard_paths if p.is_file()]
    heads = []
    if plan is not None:
        heads = [grouping.labels[p] for p in plan.parts if p not in grouping.base]
    elif fam is not None:
        heads = [g.name.removeprefix("head: ") for g in ordered if g.kind == HEAD]
    converted_parameters = sum(t.numel for t in plan.tensors) if plan else 0
    return CheckpointReport(
        source=source,
        index_bytes=index_bytes,
        data_bytes=data_bytes,
        data_on_disk=sum(p.stat().st_size for p in present),
        shards=len(shard_paths),
        shards_present=len(present),
        family=fam.name if fam else None,
        family_description=fam.description if fam else None,
        config_path=config_path,
        heads=heads,
        target_class=plan.target.cls if plan else None,
        converted_tensors=len(plan.tensors) if plan else 0,
        converted_parameters=converted_parameters,
        converted_bytes=converted_parameters * CONVERTED_ITEMSIZE,
        groups=ordered,
        variables=len(variables),
        parameters=sum(g.parameters for g in ordered),
        bytes=sum(g.bytes for g in ordered),
        model_parameters=sum(g.parameters for g in weights),
        model_bytes=model_bytes,
        base_parameters=sum(g.parameters for g in weights if g.kind == MODEL),
        unmapped_parameters=sum(g.parameters for g in ordered if g.kind == UNMAPPED),
        unmapped_bytes=unmapped_bytes,
        optimizer_parameters=sum(g.parameters for g in ordered if g.kind == OPTIMIZER_KIND),
        optimizer_bytes=sum(g.bytes for g in ordered if g.kind == OPTIMIZER_KIND),
        bookkeeping_bytes=sum(g.bytes for g in ordered if g.kind == BOOKKEEPING_KIND),
        ratio=(index_bytes + data_bytes) / (model_bytes + unmapped_bytes) if model_bytes + unmapped_bytes else None,
        dtypes=dict(sorted(Counter(info.dtype for info in variables.values()).items())),
    )
