"""Variables outside the model: a head no transformers class holds (BiLSTM-CRF, TextCNN, extra
Dense layers), and where they go.

An unknown variable *inside* the family's scopes (``bert/encoder/layer_0/adapter/kernel``) would
change what the encoder computes, so it stays an error with every task. One *outside* them —
beside the encoder, in a scope of its own — is a head trained on top of the model. By default
that is refused, listing those variables by scope, because converting would lose the head
silently; with an explicit ``--task`` the user has said what to write, so the model is written
and every such variable is kept, under its TF name, in ``extra_weights.safetensors`` beside
``model.safetensors`` (never in it: no class would load it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from tf2hf.engine.roots import UP, Root
from tf2hf.engine.table import Family
from tf2hf.errors import MappingError

#: The file the kept-aside variables are written to, in the output folder.
EXTRA_WEIGHTS = "extra_weights.safetensors"
#: Stored as float32: TF's own values bit for bit (float16 widens exactly). Other dtypes are not
#: kept aside (bfloat16 is read as raw bits; an integer or string is no weight of a head) and
#: stay unknown variables.
EXTRA_DTYPE = "float32"
KEPT_DTYPES = {"float32", "float16"}


def outside_scopes(family: Family, root: Root, unknown: Iterable[str], original: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(inside, outside) among unknown table names: outside is beside the root, beside its last
    object (``../…``), or under it but in none of the family's ``scopes``."""
    inside: list[str] = []
    outside: list[str] = []
    for name in unknown:
        under = root.under(original[name]) and not name.startswith(UP)
        within = under and (not family.scopes or name.startswith(tuple(family.scopes)))
        (inside if within else outside).append(name)
    return inside, outside


def scope_of(root: Root, checkpoint_name: str) -> str:
    """The scope a kept-aside variable is listed under: its first object below the root (or
    below the root's parent, or the top), as the checkpoint spells it."""
    base = root.prefix if root.under(checkpoint_name) else root.parent if root.parent and checkpoint_name.startswith(root.parent) else ""
    rest = checkpoint_name[len(base):]
    first, slash, _ = rest.partition("/")
    return base + first + slash


def by_scope(root: Root, checkpoint_names: Iterable[str]) -> str:
    """``bi-lstm0/ (4 variables), crf_loss/ (1 variable)``."""
    counts: dict[str, int] = {}
    for name in sorted(checkpoint_names):
        scope = scope_of(root, name)
        counts[scope] = counts.get(scope, 0) + 1
    return ", ".join(f"{scope} ({n} variable{'s' if n != 1 else ''})" for scope, n in sorted(counts.items()))


def refuse_head(family: Family, root: Root, checkpoint_names: list[str], source: str, servable: list[str]) -> None:
    """The default (``--task auto``) for variables outside the model: refuse, saying what they
    look like and what converts the rest."""
    others = [t for t in servable if t != "feature-extraction"]
    also = f" (or another task it can serve: {', '.join(others)})" if others else ""
    raise MappingError(
        f"{source}: {len(checkpoint_names)} variable(s) outside the {family.name} model look like a head that no "
        f"transformers class holds: {by_scope(root, checkpoint_names)}; convert with --task feature-extraction{also} "
        f"to write the model and keep these variables, under their TF names, in {EXTRA_WEIGHTS}; nothing was written",
        details=sorted(checkpoint_names),
    )


def set_aside(family: Family, root: Root, unknown: list[str], variables: Mapping, original: Mapping[str, str], task: str | None,
              servable: list[str], source: str) -> tuple[list[str], list[tuple[str, tuple[int, ...]]]]:
    """(the unknown table names left, the kept-aside variables as (checkpoint name, shape)).

    Only when every unknown variable is outside the model: one inside it is an error whatever
    else there is, so the outside ones are then listed with it rather than set aside."""
    inside, outside = outside_scopes(family, root, unknown, original)
    aside = [n for n in outside if variables[original[n]].dtype in KEPT_DTYPES]
    if not aside or inside:
        return unknown, []
    if task in (None, "auto"):
        refuse_head(family, root, [original[n] for n in aside], source, servable)
    kept = set(aside)
    extras = sorted((original[n], tuple(variables[original[n]].shape)) for n in aside)
    return [n for n in unknown if n not in kept], extras


def kept_aside_note(root: Root, checkpoint_names: list[str]) -> str:
    return (
        f"kept aside in {EXTRA_WEIGHTS} under their TF names (no transformers class holds them): "
        f"{by_scope(root, checkpoint_names)}"
    )


def write_extra_weights(extras: list[tuple[str, tuple[int, ...]]], read: Callable[[str], np.ndarray], path: Path) -> int:
    """Write the kept-aside variables to ``path``, streamed one tensor at a time like the model
    file; its size."""
    from tf2hf.output.safetensors_stream import SafetensorsStreamWriter

    writer = SafetensorsStreamWriter(path, extras, EXTRA_DTYPE, {"format": "tf2hf-extra", "names": "TF variable names"})
    try:
        for name in writer.order:
            writer.write(name, np.ascontiguousarray(read(name), dtype=np.float32))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return path.stat().st_size
