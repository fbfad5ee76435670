"""Verification: the written folder against an independent NumPy run of the *source* TF graph.

The reference reads the TF variables by their TF names (never the converted tensors) and
computes the graph the TF code computed. The converted folder is loaded by transformers exactly
as a user would load it; any missing, unexpected or mismatched key is a failure. Both run on a
fixed batch with padding and two segments; every output present (sequence, pooled, each head)
is compared and the largest absolute difference is reported.

torch and transformers are imported here and only here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tf2hf.errors import VerificationError
from tf2hf.engine.plan import Plan

# Largest absolute difference accepted, by stored dtype. float32 must be exact up to float32
# round-off; half precision is compared relative to the size of the outputs.
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
RELATIVE = {"float32": False, "float16": True, "bfloat16": True}

# transformers activation name -> the formula the reference computes.
REFERENCE_ACT = {"gelu": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "relu": "relu"}


@dataclass
class Verification:
    passed: bool
    tolerance: float
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    inputs_shape: tuple[int, int] = (0, 0)

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)


def fixed_batch(dims: dict[str, int], seed: int = 20181011) -> dict[str, np.ndarray]:
    """Two sequences, the second padded, each with two segments when the model has them."""
    rng = np.random.default_rng(seed)
    seq = max(4, min(dims.get("P", 8), 9))
    vocab = dims["V"]
    input_ids = rng.integers(0, vocab, size=(2, seq), dtype=np.int64)
    input_mask = np.ones((2, seq), dtype=np.int64)
    input_mask[1, seq - 2:] = 0
    token_type_ids = np.zeros((2, seq), dtype=np.int64)
    if dims.get("T", 2) >= 2:
        token_type_ids[:, seq // 2:] = 1
    positions = np.array([[1, seq - 3], [2, seq - 4]], dtype=np.int64)
    return {"input_ids": input_ids, "input_mask": input_mask, "token_type_ids": token_type_ids, "positions": positions}


def load_reference(dotted: str) -> Callable:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def reference_outputs(plan: Plan, read: Callable[[str], np.ndarray], hf_config: dict, inputs: dict) -> dict[str, np.ndarray]:
    forward = load_reference(plan.family.reference)
    act = hf_config.get("hidden_act", "gelu")
    if act not in REFERENCE_ACT:
        raise VerificationError(f"{plan.source}: no reference for activation {act!r}; convert with --no-verify")
    config = {**plan.tf_config, **{k: v for k, v in hf_config.items() if not isinstance(v, (dict, list))}}

    def get(name: str) -> np.ndarray:
        return read(plan.original.get(name, name))

    heads = frozenset(set(plan.target.parts) - plan.family.base_parts)
    return forward(get, config, inputs, gelu=REFERENCE_ACT[act], heads=heads)


def _quiet_transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
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


def converted_outputs(model, plan: Plan, inputs: dict) -> dict[str, np.ndarray]:
    import torch

    tensors = {
        "input_ids": torch.from_numpy(inputs["input_ids"]),
        "attention_mask": torch.from_numpy(inputs["input_mask"]),
        "token_type_ids": torch.from_numpy(inputs["token_type_ids"]),
    }
    outputs: dict[str, np.ndarray] = {}
    # Two short sequences: one thread runs them as fast as several, and several only spin-wait
    # on each other when anything else wants the cores (6x slower on a loaded 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run_model(model, plan, inputs, tensors, outputs)
    finally:
        torch.set_num_threads(threads)
    return outputs


def _run_model(model, plan: Plan, inputs: dict, tensors: dict, outputs: dict[str, np.ndarray]) -> None:
    import torch

    with torch.no_grad():
        base = model.base_model(**tensors)
        outputs["sequence_output"] = base.last_hidden_state.double().numpy()
        pooled = getattr(base, "pooler_output", None)
        if pooled is not None and "pooler" in plan.target.parts:
            outputs["pooled_output"] = pooled.double().numpy()
        if plan.target.outputs:
            full = model(**tensors)
            for out in plan.target.outputs:
                value = getattr(full, out.field).double().numpy()
                if out.select == "positions":
                    rows = np.arange(value.shape[0])[:, None]
                    value = value[rows, inputs["positions"]].reshape(-1, value.shape[-1])
                outputs[out.reference] = value


def compare(reference: dict[str, np.ndarray], converted: dict[str, np.ndarray], dtype: str) -> Verification:
    diffs = {}
    scale = 1.0
    for name, value in converted.items():
        if name not in reference:
            continue
        ref = np.asarray(reference[name], dtype=np.float64)
        if ref.shape != value.shape:
            raise VerificationError(f"verification: {name} has shape {list(value.shape)} after conversion but {list(ref.shape)} in the source graph")
        diffs[name] = float(np.max(np.abs(ref - value))) if ref.size else 0.0
        scale = max(scale, float(np.max(np.abs(ref))) if ref.size else 0.0)
    tolerance = TOLERANCE[dtype] * (scale if RELATIVE[dtype] else 1.0)
    return Verification(passed=all(d <= tolerance for d in diffs.values()), tolerance=tolerance, max_abs_diff=diffs)


def verify(plan: Plan, read: Callable[[str], np.ndarray], folder: Path, hf_config: dict, dtype: str) -> Verification:
    inputs = fixed_batch(plan.dims)
    reference = reference_outputs(plan, read, hf_config, inputs)
    model = load_converted(folder, plan.target.cls)
    result = compare(reference, converted_outputs(model, plan, inputs), dtype)
    result.inputs_shape = tuple(inputs["input_ids"].shape)
    return result
