"""Verification: the written folder against an independent NumPy run of the *source* TF graph.

The reference reads the TF variables by their TF names (never the converted tensors), finds them
in the checkpoint by itself (:mod:`tf2hf.verify.references.locate`, not the converter's
renames) and computes the graph the TF code computed. Everything it is told is plain data: the
checkpoint's variable names and a reader, the configs, which heads and outputs to compare and
three sizes for the batch; nothing of the converter's mapping. The converted folder is loaded
by transformers exactly as a user would load it; any missing, unexpected or mismatched key is a
failure. Both run on a fixed batch with padding and two segments; every output present
(sequence, pooled, each head) is compared and the largest absolute difference is reported.

torch and transformers are imported here and only here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tf2hf.errors import VerificationError
from tf2hf.offline import work_offline
from tf2hf.verify.references import layout_of
from tf2hf.verify.references.heads import NotModelled
from tf2hf.verify.references.locate import Ambiguous, Layout, Missing, locate

Reader = Callable[[str], np.ndarray]

# Largest absolute difference accepted, by stored dtype. float32 must be exact up to float32
# round-off; half precision is compared relative to the size of the outputs.
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
RELATIVE = {"float32": False, "float16": True, "bfloat16": True}

# The erf and tanh GELU formulas move the outputs by 1e-4 to 1e-3 (measured on the BERT and
# ALBERT fixtures and the upstream checkpoints): a larger difference has another cause, and the
# advice to try the other --gelu would send the user the wrong way.
GELU_GAP = 1e-2

# transformers activation name -> the formula the reference computes.
REFERENCE_ACT = {"gelu": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "relu": "relu"}


@dataclass
class Verification:
    passed: bool
    tolerance: float
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    inputs_shape: tuple[int, int] = (0, 0)
    # output -> "<converted> <reference>", each NaN, Inf or finite, where either is not finite
    non_finite: dict[str, str] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return worst_of(self.max_abs_diff)[1]


def worst_of(diffs: Mapping[str, float]) -> tuple[str | None, float]:
    """The output that differs most, and by how much. A NaN difference is the worst of all:
    ``max()`` compares NaN as smaller than nothing and would pass it over."""
    if not diffs:
        return None, 0.0
    name = max(diffs, key=lambda k: (diffs[k] != diffs[k], diffs[k] if diffs[k] == diffs[k] else 0.0))
    return name, diffs[name]


def kind_of(array: np.ndarray) -> str:
    """``"NaN"``, ``"Inf"`` or ``"finite"``: the worst an array holds."""
    if np.isfinite(array).all():
        return "finite"
    return "NaN" if np.isnan(array).any() else "Inf"


def failure_message(check, source: str, gelu_advice: str | None) -> str:
    """The line a failed verification raises. ``check`` has ``max_abs_diff``, ``tolerance`` and
    ``non_finite`` (a :class:`Verification`, or its copy from another process). ``gelu_advice``:
    the other ``--gelu`` value, when the config's activation is one that option chooses and the
    differences are finite: only then can the GELU formula explain them."""
    broken = getattr(check, "non_finite", None) or {}
    if broken:
        name = sorted(broken)[0]
        converted, reference = broken[name].split()
        if converted != "finite" and reference != "finite":
            return (f"{source}: the converted model produced {converted} in {name}, and so does the TF graph: the checkpoint's "
                    "weights give non-finite outputs; nothing was written")
        if converted != "finite":
            half = check.tolerance > TOLERANCE["float32"]  # half precision has the wider tolerances
            return (f"{source}: the converted model produced {converted} in {name}, where the TF graph's outputs are finite; "
                    "nothing was written. " + ("Half precision overflows inside this model: convert with --dtype float32" if half else "Please report it"))
        return f"{source}: the TF graph produced {reference} in {name}, the converted model did not; nothing was written. Please report it"
    worst, diff = worst_of(check.max_abs_diff)
    line = f"{source}: the converted model differs from the TF graph by {diff:.3g} in {worst} (tolerance {check.tolerance:.3g}); nothing was written."
    if gelu_advice is None:
        return f"{line} The activation is not a GELU that --gelu chooses, so the formula is not the cause; please report it"
    if not diff <= GELU_GAP:
        return f"{line} That is more than the GELU formula changes (about 1e-3 at most); please report it"
    return f"{line} If the model was trained with the other GELU formula, try --gelu {gelu_advice}"


@dataclass(frozen=True)
class OutputSpec:
    """A head output to compare: the reference's name, the transformers output field, and
    ``select``: ``"all"`` or ``"positions"`` (gathered at the MLM positions, as TF does)."""

    reference: str
    field: str
    select: str = "all"


def as_choices(inputs: dict) -> dict:
    """The batch as one example whose sequences are its choices: ``[1, choices, seq]``."""
    return {k: (v[None] if k != "positions" else v) for k, v in inputs.items()}


def output_spec(out: Any) -> OutputSpec:
    """A tuple ``(reference, field[, select])``, or any object with those three attributes."""
    if isinstance(out, tuple):
        return OutputSpec(*out)
    return OutputSpec(out.reference, out.field, getattr(out, "select", "all"))


def fixed_batch(vocab_size: int, max_positions: int | None = None, type_vocab_size: int | None = None, seed: int = 20181011) -> dict[str, np.ndarray]:
    """Two sequences, the second padded, each with two segments when the model has them."""
    rng = np.random.default_rng(seed)
    seq = max(4, min(8 if max_positions is None else max_positions, 9))
    input_ids = rng.integers(0, vocab_size, size=(2, seq), dtype=np.int64)
    input_mask = np.ones((2, seq), dtype=np.int64)
    input_mask[1, seq - 2:] = 0
    token_type_ids = np.zeros((2, seq), dtype=np.int64)
    if (2 if type_vocab_size is None else type_vocab_size) >= 2:
        token_type_ids[:, seq // 2:] = 1
    positions = np.array([[1, seq - 3], [2, seq - 4]], dtype=np.int64)
    return {"input_ids": input_ids, "input_mask": input_mask, "token_type_ids": token_type_ids, "positions": positions}


def load_reference(dotted: str) -> tuple[Callable, Layout]:
    """The ``forward`` function named ``module:function`` and its module's layout."""
    module_name, _, name = dotted.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, name), layout_of(module)


def reference_outputs(
    reference: str,
    names: Iterable[str],
    read: Reader,
    *,
    source: str,
    tf_config: Mapping,
    hf_config: dict,
    heads: frozenset[str],
    inputs: dict,
    outputs: Iterable = (),
) -> dict[str, np.ndarray]:
    """The reference's outputs on ``inputs`` (run as choices when an output of ``outputs`` is
    compared so: the base outputs come out ``[choices, seq, …]`` all the same)."""
    forward, layout = load_reference(reference)
    if any(output_spec(o).select == "choices" for o in outputs):
        inputs = as_choices(inputs)
    act = hf_config.get("hidden_act", "gelu")
    if act not in REFERENCE_ACT:
        raise VerificationError(f"{source}: no reference for activation {act!r}; convert with --no-verify")
    config = {**tf_config, **{k: v for k, v in hf_config.items() if not isinstance(v, (dict, list))}}
    try:
        return forward(locate(layout, names, read), config, inputs, gelu=REFERENCE_ACT[act], heads=heads)
    except (Missing, Ambiguous) as exc:
        detail = f"no {exc.args[0]}" if isinstance(exc, Missing) else exc.args[0]
        raise VerificationError(f"{source}: the reference graph cannot find its variables in the checkpoint ({detail}); convert with --no-verify") from None
    except NotModelled as exc:
        raise VerificationError(f"{source}: {exc.args[0]} (the config asks for it); convert with --no-verify") from None


def _quiet_transformers():
    work_offline()
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def load_converted(folder: Path, cls_name: str):
    """Load the folder as a user would, and refuse any key that does not fit."""
    transformers = _quiet_transformers()
    import torch

    cls = getattr(transformers, cls_name)
    model, info = cls.from_pretrained(str(folder), output_loading_info=True, ignore_mismatched_sizes=True, dtype=torch.float32)
    problems = (
        [f"missing {k}" for k in sorted(info.get("missing_keys", ()))]
        + [f"unexpected {k}" for k in sorted(info.get("unexpected_keys", ()))]
        + [f"mismatched {k[0]}" for k in sorted(info.get("mismatched_keys", ()))]
        + list(info.get("error_msgs", ()))
    )
    if problems:
        raise VerificationError(f"{folder}: transformers does not load the output cleanly: {'; '.join(problems)}", details=problems)
    model.eval()
    return model


def converted_outputs(model, heads: frozenset[str], outputs: Iterable[OutputSpec], inputs: dict) -> dict[str, np.ndarray]:
    import torch

    tensors = {
        "input_ids": torch.from_numpy(inputs["input_ids"]),
        "attention_mask": torch.from_numpy(inputs["input_mask"]),
        "token_type_ids": torch.from_numpy(inputs["token_type_ids"]),
    }
    found: dict[str, np.ndarray] = {}
    # Two short sequences: one thread runs them as fast as several, and several only spin-wait
    # on each other when anything else wants the cores (6x slower on a loaded 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run_model(model, "pooler" in heads, tuple(outputs), inputs, tensors, found)
    finally:
        torch.set_num_threads(threads)
    return found


def _run_model(model, pooled_too: bool, outputs: tuple[OutputSpec, ...], inputs: dict, tensors: dict, found: dict[str, np.ndarray]) -> None:
    import torch

    with torch.no_grad():
        base = model.base_model(**tensors)
        found["sequence_output"] = base.last_hidden_state.double().numpy()
        pooled = getattr(base, "pooler_output", None)
        if pooled is not None and pooled_too:
            found["pooled_output"] = pooled.double().numpy()
        if outputs:
            choices = any(out.select == "choices" for out in outputs)
            full = model(**(as_choices(tensors) if choices else tensors))
            for out in outputs:
                value = getattr(full, out.field).double().numpy()
                if out.select == "positions":
                    rows = np.arange(value.shape[0])[:, None]
                    value = value[rows, inputs["positions"]].reshape(-1, value.shape[-1])
                found[out.reference] = value


def compare(reference: dict[str, np.ndarray], converted: dict[str, np.ndarray], dtype: str) -> Verification:
    diffs = {}
    non_finite: dict[str, str] = {}
    scale = 1.0
    for name, value in converted.items():
        if name not in reference:
            continue
        ref = np.asarray(reference[name], dtype=np.float64)
        if ref.shape != value.shape:
            raise VerificationError(f"verification: {name} has shape {list(value.shape)} after conversion but {list(ref.shape)} in the source graph")
        diffs[name] = float(np.max(np.abs(ref - value))) if ref.size else 0.0
        sides = f"{kind_of(value)} {kind_of(ref)}"
        if sides != "finite finite":
            non_finite[name] = sides
        elif ref.size:
            scale = max(scale, float(np.max(np.abs(ref))))
    tolerance = TOLERANCE[dtype] * (scale if RELATIVE[dtype] else 1.0)
    # NaN <= tolerance is False, so a NaN difference fails too; non_finite says why.
    passed = not non_finite and all(d <= tolerance for d in diffs.values())
    return Verification(passed=passed, tolerance=tolerance, max_abs_diff=diffs, non_finite=non_finite)


def verify(
    reference: str,
    names: Iterable[str],
    read: Reader,
    folder: Path,
    *,
    source: str,
    tf_config: Mapping,
    hf_config: dict,
    target_class: str,
    heads: Iterable[str],
    outputs: Iterable = (),
    vocab_size: int,
    max_positions: int | None = None,
    type_vocab_size: int | None = None,
    dtype: str,
) -> Verification:
    """Run ``reference`` (``module:function``) on the checkpoint whose variables are ``names``
    (read with ``read``) and the transformers ``target_class`` loaded from ``folder`` on one
    fixed batch, and compare the base outputs (the pooled one when ``heads`` has ``pooler``)
    and each of ``outputs`` (see :func:`output_spec`).

    ``heads`` are the reference's head names to compute; ``vocab_size``, ``max_positions`` and
    ``type_vocab_size`` size the batch (a missing size takes the batch's default).
    """
    heads, outputs = frozenset(heads), tuple(outputs)
    inputs = fixed_batch(vocab_size, max_positions, type_vocab_size)
    ref = reference_outputs(reference, names, read, source=source, tf_config=tf_config, hf_config=hf_config, heads=heads, inputs=inputs,
                            outputs=outputs)
    return judge(ref, run_converted(folder, target_class, heads, outputs, inputs), dtype, inputs)


def run_converted(folder: Path, target_class: str, heads: Iterable[str], outputs: Iterable, inputs: dict) -> dict[str, np.ndarray]:
    """The converted half of :func:`verify`: load ``folder`` as ``target_class`` and run it on
    ``inputs``; the outputs by the reference's names. (A verified conversion runs this half in
    the process that imported torch, and the reference in its own: tf2hf/verify/prewarm.py.)"""
    model = load_converted(folder, target_class)
    return converted_outputs(model, frozenset(heads), tuple(output_spec(o) for o in outputs), inputs)


def judge(reference: dict[str, np.ndarray], converted: dict[str, np.ndarray], dtype: str, inputs: dict) -> Verification:
    """:func:`compare` of the two halves, recording the batch's shape."""
    result = compare(reference, converted, dtype)
    result.inputs_shape = tuple(inputs["input_ids"].shape)
    return result
