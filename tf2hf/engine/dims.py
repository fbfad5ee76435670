"""Step 3 of planning: the sizes a family's shapes are written in, from config and checkpoint."""

from __future__ import annotations

from typing import Mapping

from tf2hf.engine.folding import fold
from tf2hf.engine.table import Dim, Family
from tf2hf.engine.templates import count_indices, fill
from tf2hf.errors import ConfigError, MappingError
from tf2hf.output.config_check import shorten


def resolve_dims(
    family: Family, tf_config: Mapping, shapes: Mapping[str, tuple[int, ...]], config_label: str
) -> tuple[dict[str, int], list[str]]:
    """Sizes from the config, checked against (or, where allowed, taken from) the checkpoint."""
    dims: dict[str, int] = {}
    notes: list[str] = []
    conflicts: list[str] = []
    names = set(shapes)
    for dim in family.dims:
        from_config = _from_config(dim, tf_config, config_label)
        from_ckpt, evidence = _from_checkpoint(dim, family, shapes, names, config_label)
        if from_config is not None and from_ckpt is not None and from_config != from_ckpt:
            if dim.on_conflict == "error":
                conflicts.append(f"{dim.config_key}={shorten(from_config)} but {evidence}")
            else:
                notes.append(f"{dim.config_key or dim.symbol}: config says {from_config}, using {from_ckpt} from the checkpoint ({evidence})")
        value = from_ckpt if from_ckpt is not None else from_config if from_config is not None else dim.default
        if value is not None:
            dims[dim.symbol] = value
    if conflicts:
        raise ConfigError(f"{config_label}: the config contradicts the checkpoint: {'; '.join(conflicts)}; pass the config that belongs to this checkpoint")
    return dims, notes


def _from_config(dim: Dim, tf_config: Mapping, config_label: str) -> int | None:
    value = tf_config.get(dim.config_key) if dim.config_key else None
    # bool is an int to Python; a config saying ``true`` for a size is still wrong.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigError(f"{config_label}: {dim.config_key} must be a positive integer, not {shorten(value)}; fix the config")
    return value


def _from_checkpoint(
    dim: Dim, family: Family, shapes: Mapping[str, tuple[int, ...]], names: set[str], config_label: str
) -> tuple[int | None, str]:
    """The size the checkpoint shows, and the evidence quoted when it disagrees with the config."""
    if dim.shape_of and dim.shape_of[0] in shapes and len(shapes[dim.shape_of[0]]) > dim.shape_of[1]:
        name, axis = dim.shape_of
        return shapes[name][axis], f"{name} is {list(shapes[name])}"
    if not dim.count_of:
        return None, ""
    found = count_indices(dim.count_of, family.loops, names)
    if not found:
        return None, ""
    listed = fold([fill(dim.count_of, {letter: i for letter in family.loops}) for i in sorted(found)])[0]
    if found != set(range(max(found) + 1)):
        raise MappingError(f"{config_label}: the checkpoint has gaps in {listed}; it is incomplete")
    count = max(found) + 1
    return count, f"the checkpoint has {count} ({listed})"
