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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tf2hf.tfckpt import open_checkpoint
from tf2hf.errors import Tf2hfError
from tf2hf.engine.nonweights import BOOKKEEPING, OPTIMIZER, classify
from tf2hf.engine.table import Family

#: Words for the loop letters of family tables, as group names show them.
LOOP_WORDS = {"i": "layer", "g": "group", "j": "inner group"}
#: Bytes per parameter of the converted file (float32, the default).
CONVERTED_ITEMSIZE = 4

MODEL, HEAD, OPTIMIZER_KIND, BOOKKEEPING_KIND, UNMAPPED = "model", "head", "optimizer", "bookkeeping", "unmapped"


@dataclass
class Group:
    """Variables of one kind: a part of the model, a kind of optimizer slot, bookkeeping ..."""

    name: str
    kind: str  # model | head | optimizer | bookkeeping | unmapped
    variables: int = 0
    parameters: int = 0
    bytes: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)
    converted: bool = False  # some of it goes into the converted file
    index: int | None = None  # layer or group number, for encoder groups

    def add(self, numel: int, size: int, dtype: str) -> None:
        self.variables += 1
        self.parameters += numel
        self.bytes += size
        self.dtypes[dtype] = self.dtypes.get(dtype, 0) + 1


@dataclass
class CheckpointReport:
    """What ``inspect`` found; ``to_dict()`` is JSON-serialisable.

    Parameter counts are element counts of the stored tensors. ``model_parameters`` counts every
    weight of the checkpoint (base model and heads); ``base_parameters`` only the embeddings,
    encoder and pooler, which is what the base transformers class (``BertModel``) holds and the
    figure model cards usually quote.
    """

    source: str
    index_bytes: int
    data_bytes: int  # as the index records them (sum of the shards' extents)
    data_on_disk: int  # what exists on disk (0 for an index-only checkpoint)
    shards: int
    shards_present: int
    family: str | None
    family_description: str | None
    config_path: str | None
    heads: list[str]
    target_class: str | None
    converted_tensors: int
    converted_parameters: int
    converted_bytes: int  # float32 weights of the converted file
    groups: list[Group]
    variables: int
    parameters: int
    bytes: int
    model_parameters: int
    model_bytes: int
    base_parameters: int
    unmapped_parameters: int
    unmapped_bytes: int
    optimizer_parameters: int
    optimizer_bytes: int
    bookkeeping_bytes: int
    ratio: float | None  # checkpoint (index + data) / weights (model, heads and unmapped variables)
    dtypes: dict[str, int]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: ``{i}``, ``{i+4}``, ``{L+4}``: a loop letter or a dimension, with an optional offset.
_PLACEHOLDER = re.compile(r"\{([A-Za-z]\w*)([+-]\d+)?\}")


def _fill(template: str, values: dict[str, int]) -> str | None:
    """The template with every placeholder filled, or None when one has no value."""
    missing = False

    def value(match: re.Match) -> str:
        nonlocal missing
        if match.group(1) not in values:
            missing = True
            return ""
        return str(values[match.group(1)] + int(match.group(2) or 0))

    filled = _PLACEHOLDER.sub(value, template)
    return None if missing else filled


def _sources(family: Family) -> list[tuple[str, str, list[str]]]:
    """(part name, source template, loop letters in it) for every rule of the family."""
    found = []
    for part in family.parts:
        for rule in (*part.rules, *part.when_absent):
            for source in rule.sources:
                used = {m.group(1) for m in _PLACEHOLDER.finditer(source)}
                found.append((part.name, source, [l for l in family.loops if l in used]))
    return found


def _expanded(family: Family, dims: dict[str, int]) -> dict[str, tuple[str, dict[str, int]]]:
    """Every source name the family's rules produce at these sizes -> (part, loop values)."""
    names: dict[str, tuple[str, dict[str, int]]] = {}
    for part, template, letters in _sources(family):
        if any(family.loops[l] not in dims for l in letters):
            continue
        for combo in itertools.product(*(range(dims[family.loops[l]]) for l in letters)):
            loops = dict(zip(letters, combo))
            name = _fill(template, {**dims, **loops})
            if name is not None:
                names.setdefault(name, (part, loops))
    return names


def _matchers(family: Family) -> list[tuple[str, re.Pattern[str], dict[str, int]]]:
    """Regexes of the source templates, for when the sizes are unknown (the plan failed):
    loop letters become named groups (their offsets returned beside), dimensions any number."""
    found = []
    for part, template, letters in _sources(family):
        pattern, offsets, last = "", {}, 0
        for match in _PLACEHOLDER.finditer(template):
            pattern += re.escape(template[last : match.start()])
            letter = match.group(1)
            if letter in letters and letter not in offsets:
                pattern += f"(?P<{letter}>\\d+)"
                offsets[letter] = int(match.group(2) or 0)
            else:
                pattern += r"\d+"
            last = match.end()
        pattern += re.escape(template[last:])
        found.append((part, re.compile(pattern), offsets))
    return found


def _slot_kind(name: str) -> str:
    """``…/kernel/adam_m`` -> ``adam_m``; ``beta1_power_2`` -> ``beta1_power``."""
    last = name.rsplit("/", 1)[-1]
    return re.sub(r"_\d+$", "", last) if "power" in last else last


def _find_config(family: Family, folder: Path, given: str | os.PathLike[str] | None) -> tuple[dict, str | None, str | None]:
    from tf2hf.sources import find_beside, load_config

    if given is not None:
        return load_config(Path(given)), str(given), None
    found, candidates = find_beside(folder, family.config_names)
    if found is None:
        what = f"several configs ({', '.join(p.name for p in candidates)})" if candidates else "no config"
        return {}, None, f"{what} beside the checkpoint: sizes taken from the shapes alone (pass --config)"
    return load_config(found), str(found), None


def inspect(
    path: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    family: str = "auto",
    target: str | None = None,
) -> CheckpointReport:
    """Inspect the checkpoint at ``path`` (any form ``convert --tf`` takes); reads the index only.

    ``family`` and ``target`` (a family's variant: brightmart's ``albert``/``bert``, an ELECTRA
    tower) are those of ``tf2hf convert``; when the checkpoint needs a choice that is not given,
    the first family that matches is used and the report says so.
    """
    from tf2hf.engine.plan import make_plan, resolve_dims
    from tf2hf.engine.registry import detect, in_group, matches, select, strip_name

    started = time.perf_counter()
    with open_checkpoint(path) as ckpt:
        source = str(ckpt.prefix)
        variables = dict(ckpt.variables)
        index_bytes = ckpt.index_path.stat().st_size
        shard_paths = list(ckpt.shard_paths)

    extents: dict[int, int] = {}
    for info in variables.values():
        extents[info.shard] = max(extents.get(info.shard, 0), info.offset + info.size)
    present = [p for p in shard_paths if p.is_file()]

    notes: list[str] = []
    problems: list[str] = []
    fam: Family | None = None
    try:
        fam = select(family, variables, target, source)
    except Tf2hfError as exc:
        try:
            candidates = detect(variables) if family == "auto" else [f for f in in_group(family) if matches(f, variables)]
        except Tf2hfError:
            candidates = []
        if candidates:
            fam = candidates[0]
            notes.append(f"{exc}; grouped as {fam.name} ({fam.description})")
        else:
            problems.append(str(exc))

    plan = None
    config_path = None
    tf_config: dict = {}
    if fam is not None:
        try:
            tf_config, config_path, note = _find_config(fam, ckpt.prefix.parent, config)
            if note:
                notes.append(note)
            plan = make_plan(fam, variables, tf_config, source=source, config_label=config_path or source)
            notes.extend(plan.notes)
        except Tf2hfError as exc:
            problems.append(str(exc))

    written = {s for t in plan.tensors for s in t.sources} if plan else set()
    dims: dict[str, int] = dict(plan.dims) if plan else {}
    if fam is not None and plan is None:
        try:
            shapes = {strip_name(fam, n): tuple(i.shape) for n, i in variables.items()}
            dims, _ = resolve_dims(fam, tf_config, shapes, source)
        except Exception:  # the sizes are only a help for grouping here
            dims = {}
    expanded = _expanded(fam, dims) if fam else {}
    matchers = _matchers(fam) if fam else []
    labels = {p.name: (p.label or p.name) for p in fam.parts} if fam else {}
    base = set(fam.base_parts) | {"pooler"} if fam else set()
    part_order = {p.name: k for k, p in enumerate(fam.parts)} if fam else {}

    groups: dict[str, Group] = {}
    order: dict[str, tuple] = {}

    def group(key: str, kind: str, rank: tuple, index: int | None = None) -> Group:
        if key not in groups:
            groups[key] = Group(key, kind, index=index)
            order[key] = rank
        return groups[key]

    for name, info in variables.items():
        stripped = strip_name(fam, name) if fam else name
        # Slots and bookkeeping first (a slot of a weight the family drops is still a slot).
        drop = classify(stripped) or (classify(stripped, fam.extra_drops) if fam else None)
        if drop is not None and name not in written:
            if drop.kind == OPTIMIZER:
                kind = _slot_kind(stripped)
                g = group(f"optimizer: {kind}", OPTIMIZER_KIND, (3, kind))
            elif drop.kind == BOOKKEEPING:
                g = group(BOOKKEEPING, BOOKKEEPING_KIND, (4, drop.kind))
            else:  # weights the family leaves out of this conversion (e.g. ELECTRA's other tower)
                g = group(f"not converted: {drop.kind}", UNMAPPED, (2, drop.kind))
            g.add(info.numel, info.size, info.dtype)
            continue
        found = expanded.get(stripped)
        if found is None:
            for part, regex, offsets in matchers:
                match = regex.fullmatch(stripped)
                if match is not None:
                    found = (part, {l: int(match.group(l)) - offsets[l] for l in offsets})
                    break
        if found is not None:
            part, loops = found
            letter = next((l for l in fam.loops if l in loops), None)
            if letter is not None:
                word = LOOP_WORDS.get(letter, letter)
                key = f"{part} {word} {loops[letter]}"
                g = group(key, MODEL, (0, part_order[part], loops[letter]), index=loops[letter])
            else:
                kind = MODEL if part in base else HEAD
                key = part if kind == MODEL else f"head: {labels[part]}"
                g = group(key, kind, (0 if kind == MODEL else 1, part_order[part], 0))
        else:
            scope = stripped.split("/", 1)[0] if "/" in stripped else stripped
            g = group(f"unmapped: {scope}", UNMAPPED, (2, scope))
        g.add(info.numel, info.size, info.dtype)
        g.converted = g.converted or name in written

    ordered = [groups[k] for k in sorted(groups, key=lambda k: order[k])]
    weights = [g for g in ordered if g.kind in (MODEL, HEAD)]
    model_bytes = sum(g.bytes for g in weights)
    unmapped_bytes = sum(g.bytes for g in ordered if g.kind == UNMAPPED)
    data_bytes = sum(extents.values())
    heads = []
    if plan is not None:
        heads = [labels[p] for p in plan.parts if p not in base]
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
        notes=notes,
        problems=problems,
        seconds=time.perf_counter() - started,
    )


def format_report(report: CheckpointReport, *, layers: bool = False) -> list[str]:
    """The text ``tf2hf inspect`` prints; encoder layers fold into one row unless ``layers``."""
    from tf2hf.sizes import human

    lines = []
    data = f"data {human(report.data_bytes)} in {report.shards} shard(s)"
    if report.shards_present < report.shards:
        data += f", {report.shards - report.shards_present} absent (index only: nothing was read anyway)"
    lines.append(f"checkpoint: {report.source}")
    lines.append(f"files:      index {human(report.index_bytes)}, {data}")
    if report.family:
        lines.append(f"family:     {report.family} ({report.family_description})")
    else:
        lines.append("family:     none recognised")
    if report.config_path:
        lines.append(f"config:     {report.config_path}")
    lines.append(f"heads:      {', '.join(report.heads) if report.heads else '(none)'}")
    if report.target_class:
        lines.append(
            f"converts to {report.target_class}: {report.converted_tensors} tensors, {report.converted_parameters:,} parameters, "
            f"{human(report.converted_bytes)} as float32 ({human(report.converted_bytes // 2)} as float16)"
        )
    lines.append(f"dtypes:     {', '.join(f'{d} {n}' for d, n in report.dtypes.items())}")
    lines.append("")
    rows: list[tuple[str, int, int, int, str]] = []
    pending: list[Group] = []

    def flush() -> None:
        if not pending:
            return
        if len(pending) == 1:
            g = pending[0]
            rows.append((g.name, g.variables, g.parameters, g.bytes, ""))
        else:
            first, last = pending[0], pending[-1]
            stem = first.name.rsplit(" ", 1)[0]
            sizes = {g.parameters for g in pending}
            each = f"{len(pending)} × {pending[0].parameters:,}" if len(sizes) == 1 else f"{len(pending)} groups"
            rows.append((f"{stem}s {first.index}…{last.index}", sum(g.variables for g in pending), sum(g.parameters for g in pending), sum(g.bytes for g in pending), each))
        pending.clear()

    for g in report.groups:
        if g.index is not None and not layers:
            if pending and pending[0].name.rsplit(" ", 1)[0] != g.name.rsplit(" ", 1)[0]:
                flush()
            pending.append(g)
            continue
        flush()
        note = "" if g.kind not in (MODEL, HEAD) or g.converted else "not converted"
        rows.append((g.name, g.variables, g.parameters, g.bytes, note))
    flush()
    width = max([len(r[0]) for r in rows] + [24])
    lines.append(f"{'group':<{width}}  {'variables':>9}  {'parameters':>14}  {'bytes':>10}")
    for name, count, params, size, note in rows:
        lines.append(f"{name:<{width}}  {count:>9}  {params:>14,}  {human(size):>10}" + (f"  {note}" if note else ""))
    lines.append(f"{'total':<{width}}  {report.variables:>9}  {report.parameters:>14,}  {human(report.bytes):>10}")
    lines.append("")
    if report.model_parameters:
        lines.append(f"model weights: {report.model_parameters:,} parameters ({human(report.model_bytes)}), of which base model "
                     f"(embeddings, encoder, pooler) {report.base_parameters:,}")
    if report.unmapped_parameters:
        lines.append(f"unmapped variables: {report.unmapped_parameters:,} values ({human(report.unmapped_bytes)}), counted as weights in the ratio below")
    if report.optimizer_parameters:
        lines.append(f"optimizer slots: {report.optimizer_parameters:,} values ({human(report.optimizer_bytes)})")
    if report.ratio is not None:
        lines.append(f"checkpoint size / weights size: {report.ratio:.2f}× (index and data files over the bytes of the weights)")
    for note in report.notes:
        lines.append(f"note: {note}")
    for problem in report.problems:
        lines.append(f"cannot convert: {problem}")
    return lines
