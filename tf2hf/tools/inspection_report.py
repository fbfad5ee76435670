"""The report of ``tf2hf inspect``: its data (:class:`CheckpointReport`) and its text.

Kept apart from :mod:`tf2hf.tools.inspection`, which fills the report from a checkpoint's index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
    # What the training graph (P.meta) shows beside what the config says (docs/GRAPH.md).
    graph: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_report(report: CheckpointReport, *, layers: bool = False) -> list[str]:
    """The text ``tf2hf inspect`` prints; encoder layers fold into one row unless ``layers``."""
    return [*_header(report), "", *_table(_rows(report, layers), report), "", *_summary(report)]


def _header(report: CheckpointReport) -> list[str]:
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
    if report.graph:
        lines.append(f"graph:      {report.graph}")
    lines.append(f"heads:      {', '.join(report.heads) if report.heads else '(none)'}")
    if report.target_class:
        lines.append(
            f"converts to {report.target_class}: {report.converted_tensors} tensors, {report.converted_parameters:,} parameters, "
            f"{human(report.converted_bytes)} as float32 ({human(report.converted_bytes // 2)} as float16)"
        )
    lines.append(f"dtypes:     {', '.join(f'{d} {n}' for d, n in report.dtypes.items())}")
    return lines


Row = tuple[str, int, int, int, str]  # name, variables, parameters, bytes, note


def _rows(report: CheckpointReport, layers: bool) -> list[Row]:
    """One row per group; consecutive numbered groups of one stem fold into one unless ``layers``."""
    rows: list[Row] = []
    pending: list[Group] = []
    for g in report.groups:
        if g.index is not None and not layers:
            if pending and _stem(pending[0]) != _stem(g):
                rows.append(_folded(pending))
                pending = []
            pending.append(g)
            continue
        if pending:
            rows.append(_folded(pending))
            pending = []
        note = "" if g.kind not in (MODEL, HEAD) or g.converted else "not converted"
        rows.append((g.name, g.variables, g.parameters, g.bytes, note))
    if pending:
        rows.append(_folded(pending))
    return rows


def _stem(group: Group) -> str:
    """``encoder layer 3`` -> ``encoder layer``."""
    return group.name.rsplit(" ", 1)[0]


def _folded(pending: list[Group]) -> Row:
    if len(pending) == 1:
        g = pending[0]
        return (g.name, g.variables, g.parameters, g.bytes, "")
    first, last = pending[0], pending[-1]
    sizes = {g.parameters for g in pending}
    each = f"{len(pending)} × {pending[0].parameters:,}" if len(sizes) == 1 else f"{len(pending)} groups"
    return (f"{_stem(first)}s {first.index}…{last.index}", sum(g.variables for g in pending), sum(g.parameters for g in pending), sum(g.bytes for g in pending), each)


def _table(rows: list[Row], report: CheckpointReport) -> list[str]:
    from tf2hf.sizes import human

    width = max([len(r[0]) for r in rows] + [24])
    lines = [f"{'group':<{width}}  {'variables':>9}  {'parameters':>14}  {'bytes':>10}"]
    for name, count, params, size, note in rows:
        lines.append(f"{name:<{width}}  {count:>9}  {params:>14,}  {human(size):>10}" + (f"  {note}" if note else ""))
    lines.append(f"{'total':<{width}}  {report.variables:>9}  {report.parameters:>14,}  {human(report.bytes):>10}")
    return lines


def _summary(report: CheckpointReport) -> list[str]:
    from tf2hf.sizes import human

    lines = []
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
