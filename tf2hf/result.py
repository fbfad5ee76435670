"""What one conversion did: :class:`ConversionResult`, returned by :func:`tf2hf.convert`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ConversionResult:
    """What a conversion did; ``to_dict()`` is JSON-serialisable."""

    family: str
    target_class: str
    source: str
    config_path: str
    vocab_path: str | None
    out: str | None
    dry_run: bool
    files: list[str] = field(default_factory=list)
    tensors: int = 0
    parameters: int = 0
    output_bytes: int = 0
    dtype: str = "float32"
    format: str = "safetensors"
    tensors_per_part: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    discarded: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    seconds: float = 0.0
    task: str = "auto"
    left_out: list[str] = field(default_factory=list)
    # Variables outside the model kept aside under their TF names (explicit --task): name, shape.
    extra_weights: list[tuple[str, list[int]]] = field(default_factory=list)
    # What identifies the sources (index, config, vocabulary: sha256; data shards: size and
    # mtime, or sha256 with hash_sources) and the sha256 of every file written.
    provenance: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)  # the head's id2label, in order (none without a classifier)
    # Settings no file showed (no config, no training graph): one sentence each (docs/GRAPH.md).
    assumptions: list[str] = field(default_factory=list)
    hf_config: dict[str, Any] = field(default_factory=dict)  # the config.json written (or, dry run, that would be)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
