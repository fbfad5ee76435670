"""The conversion, start to finish: resolve → plan → write (streamed) → verify → rename.

``convert()`` is the library entry point and what the CLI calls. It raises only
:class:`~tf2hf.errors.Tf2hfError` subclasses for problems with the input or the destination.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tf2hf import __version__
from tf2hf.engine.graph_config import gather, settings_source
from tf2hf.engine.plan import Plan, make_plan
from tf2hf.engine.registry import select
from tf2hf.engine.extras import EXTRA_WEIGHTS, write_extra_weights
from tf2hf.engine.stream import Progress, check_shards, write_weights
from tf2hf.engine.table import TASKS, Family
from tf2hf.errors import OutputError, Tf2hfError, VerificationError, VocabError
from tf2hf.messages import logger
from tf2hf.output.dtypes import ITEMSIZE, OUTPUT_DTYPES
from tf2hf.output.model_card import write_model_card
from tf2hf.output.staging import Staging, check_out, output_error
from tf2hf.output.tokenizer_files import find_vocab, read_vocabulary, write_tokenizer
from tf2hf.provenance import Provenance
from tf2hf.result import ConversionResult
from tf2hf.hf_config import hf_config_for
from tf2hf.tfckpt import open_checkpoint
from tf2hf.verify.prewarm import Verifier, verifier as start_verifier

FORMATS = ("safetensors", "bin")
GELUS = ("erf", "tanh")


def _refuse_replacing_inputs(dest: Path, inputs: list[Path]) -> None:
    """--force replaces the whole destination folder: never one that holds an input."""
    target = Path(os.path.realpath(dest))
    for path in inputs:
        real = Path(os.path.realpath(path))
        if real == target or target in real.parents:
            raise OutputError(f"{os.path.abspath(dest)}: holds {path}, which this conversion reads; choose another --out")


@dataclass
class _Prepared:
    """What planning found: the files beside the checkpoint, the plan and the config.json."""

    config_path: Path
    plan: Plan
    hf_config: dict
    options: dict
    vocab_path: Path | None
    vocabulary: list | None
    warnings: list[str]


def convert(
    family: str,
    *,
    tf: str | Path,
    out: str | Path | None = None,
    config: str | Path | None = None,
    vocab: str | Path | None = None,
    format: str = "safetensors",
    dtype: str = "float32",
    gelu: str | None = None,
    lowercase: bool | None = None,
    force: bool = False,
    dry_run: bool = False,
    verify: bool = True,
    allow_non_finite: bool = False,
    variant: str | None = None,
    target: str | None = None,
    tower: str | None = None,
    task: str = "auto",
    tokenizer: bool = True,
    hash_sources: bool = False,
    labels: Sequence[str] | None = None,
    progress: Progress | None = None,
    before_commit: Callable[[Path, ConversionResult], None] | None = None,
) -> ConversionResult:
    """Convert one TF checkpoint into a transformers folder at ``out``.

    ``family``: a family name (``tf2hf architectures`` lists them) or ``"auto"``; ``variant``
    chooses between the layouts a family offers: brightmart ALBERT's output classes
    (``"albert"``, the default, or ``"bert"``), the model of an ELECTRA checkpoint
    (``"discriminator"`` or ``"generator"``). ``target`` and ``tower`` are other names of
    ``variant``, as the command line spells it per family (``--target``, ``--tower``). ``tf``: the
    checkpoint folder, prefix, or any of its files. ``config``/``vocab`` are looked up beside
    the checkpoint when not given. ``gelu``: ``"erf"`` or ``"tanh"`` for configs that say
    ``"gelu"`` (default: what the training graph beside the checkpoint computes, else the family's; docs/GRAPH.md). ``lowercase``: override the inferred ``do_lower_case``.
    ``task`` (one of :data:`~tf2hf.engine.table.TASKS`, or ``"auto"``: from the heads present)
    picks the class written; heads it does not take are left out and reported. ``tokenizer``
    ``False`` writes no tokenizer files. ``dry_run`` plans and returns without writing anything. ``verify`` (default) runs the
    converted model against a NumPy run of the source graph and fails above tolerance.
    A weight holding NaN or Inf is refused, naming it; ``allow_non_finite`` writes it anyway, with
    a warning in the result and the model card. A value the ``dtype`` cannot hold is always refused.
    ``labels``: a classifier's output names in order (``id2label``), as many as it has outputs.
    ``progress(done, total, phase)``: ``"planning"`` (0, 0); ``"writing"`` (bytes of the weights
    file written, its size; reading and writing are one streamed step); ``"verifying"`` (total,
    total). Notes and warnings are also records of the logger ``tf2hf``, at INFO and WARNING.
    ``hash_sources`` adds the full sha256 of every data shard to the provenance (it reads the
    optimizer slots too); by default the shards are identified by size and mtime, beside the
    index's sha256, which pins every tensor's offset, size and crc32c.
    ``before_commit(staging_folder, result)`` runs when the folder is complete, just before it
    is renamed into place: files it writes there become part of the output, atomically.
    """
    started = time.perf_counter()
    _check_options(format, dtype, gelu, out, dry_run, task)
    # Verification's process starts first, so torch is imported while this one plans and writes.
    with start_verifier(verify and not dry_run) as verifier, open_checkpoint(tf) as ckpt:
        source = str(ckpt.prefix)
        fam = select(family, ckpt.variables, _one_variant(variant, target, tower, source), source)
        if family == "auto":
            logger.info("%s: detected family %s", source, fam.name)
        if progress is not None:
            progress(0, 0, "planning")
        prepared = _prepare(fam, ckpt, config, vocab, gelu, dtype, task, tokenizer, labels)
        result = _new_result(fam, prepared, source, out, dry_run, dtype, format)
        result.task = task
        prepared.options["allow_non_finite"] = allow_non_finite
        result.labels = list(prepared.hf_config.get("id2label", {}).values())
        logger.info("%s: planned %s, %d tensors", source, result.target_class, result.tensors)
        if not dry_run:
            _write_folder(ckpt, prepared, result, Path(out), format, dtype, lowercase, force, verify, progress, before_commit,
                          verifier=verifier, hash_sources=hash_sources)
        result.seconds = time.perf_counter() - started
        # Once the result holds them all; marked, for an application that prints the lists itself.
        for note in result.notes:
            logger.info("%s", note, extra={"tf2hf_result": True})
        for warning in result.warnings:
            logger.warning("%s", warning, extra={"tf2hf_result": True})
        return result


def _check_options(format: str, dtype: str, gelu: str | None, out: str | Path | None, dry_run: bool, task: str = "auto") -> None:
    """Options refused before the checkpoint is opened."""
    if format not in FORMATS:
        raise Tf2hfError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if dtype not in OUTPUT_DTYPES:
        raise Tf2hfError(f"unknown dtype {dtype!r}; choose one of {', '.join(OUTPUT_DTYPES)}")
    if gelu is not None and gelu not in GELUS:
        raise Tf2hfError(f"unknown gelu {gelu!r}; choose one of {', '.join(GELUS)}")
    if task != "auto" and task not in TASKS:
        raise Tf2hfError(f"unknown task {task!r}; choose one of auto, {', '.join(TASKS)}")
    check_out(out)
    if out is None and not dry_run:
        raise OutputError("no output folder given; pass --out")


def _one_variant(variant: str | None, target: str | None, tower: str | None, source: str) -> str | None:
    """The variant asked for, under whichever of its names it was given (at most one)."""
    if tower is not None and target is not None:
        raise Tf2hfError(f"{source}: pass either --tower or --target, not both")  # as the command line spells them
    alias, alias_name = (tower, "tower") if tower is not None else (target, "target")
    if variant is not None and alias is not None:
        raise Tf2hfError(f"{source}: pass either variant or {alias_name}, not both (they name one choice)")
    return variant if variant is not None else alias


def _prepare(fam: Family, ckpt, config: str | Path | None, vocab: str | Path | None, gelu: str | None, dtype: str,
             task: str = "auto", tokenizer: bool = True, labels: Sequence[str] | None = None) -> _Prepared:
    """Plan the conversion and read what comes with the checkpoint; writes nothing."""
    warnings: list[str] = []
    gathered = gather(fam, ckpt.prefix, config, gelu)  # config (or none) and the training graph
    config_path, settled = gathered.config_path, gathered.settled
    plan = make_plan(fam, ckpt.variables, settled.tf_config, source=str(ckpt.prefix), config_label=gathered.config_label, task=task)
    options = {"gelu": settled.gelu, "dtype": dtype, "config_label": gathered.config_label, "labels": labels, "graph": gathered}
    hf_config = hf_config_for(plan, options)
    warnings.extend(settled.warnings)  # the graph's disagreements, the heads' among them
    vocab_path = find_vocab(fam, ckpt.prefix.parent, vocab, warnings) if tokenizer else None
    vocabulary = read_vocabulary(vocab_path) if vocab_path else None
    rows = plan.dims[fam.vocab_dim]
    if vocabulary is not None and len(vocabulary) > rows:
        raise VocabError(
            f"{vocab_path}: {len(vocabulary)} tokens but the checkpoint's word embeddings have {rows} rows; pass the vocabulary that belongs to this checkpoint"
        )
    if vocabulary is not None and len(vocabulary) < rows:
        # Padded embedding matrices are common (rows rounded up, or a vocabulary trimmed after
        # training): every token has its row; the rows beyond the vocabulary are never looked up.
        warnings.append(
            f"{vocab_path}: {len(vocabulary)} tokens, fewer than the {rows} rows of the checkpoint's word embeddings; "
            "the tokenizer is written as it is (ids beyond it are never produced) — check that this is the vocabulary the model was trained with"
        )
    return _Prepared(config_path, plan, hf_config, options, vocab_path, vocabulary, warnings)


def _new_result(fam: Family, prepared: _Prepared, source: str, out, dry_run: bool, dtype: str, format: str) -> ConversionResult:
    plan = prepared.plan
    result = ConversionResult(
        family=fam.name,
        target_class=plan.target.cls,
        source=source,
        config_path=str(prepared.config_path) if prepared.config_path else "",
        vocab_path=str(prepared.vocab_path) if prepared.vocab_path else None,
        out=str(Path(out).absolute()) if out is not None else None,
        dry_run=dry_run,
        tensors=len(plan.tensors),
        parameters=sum(t.numel for t in plan.tensors),
        output_bytes=sum(t.numel for t in plan.tensors) * ITEMSIZE[dtype],
        dtype=dtype,
        format=format,
        tensors_per_part=dict(plan.tensors_per_part()),
        dropped=plan.dropped_summary(),
        discarded=plan.discarded,
        left_out=list(plan.left_out),
        extra_weights=[(name, list(shape)) for name, shape in plan.extras],
        notes=list(plan.notes) + prepared.options["graph"].settled.notes,
        warnings=prepared.warnings,
        assumptions=list(prepared.options["graph"].settled.assumptions) + list(plan.assumptions),
        hf_config=prepared.hf_config,
    )
    result.plan = plan  # type: ignore[attr-defined]  # for --dry-run display; not serialised
    return result


def _write_folder(ckpt, prepared: _Prepared, result: ConversionResult, dest: Path, format: str, dtype: str, lowercase: bool | None,
                  force: bool, verify: bool, progress: Progress | None, before_commit,
                  verifier: Verifier | None = None, hash_sources: bool = False) -> None:
    """Write the folder beside ``dest``, verify it, and rename it into place."""
    plan, hf_config, options, vocab_path = prepared.plan, prepared.hf_config, prepared.options, prepared.vocab_path
    source = result.source
    check_shards(ckpt, plan)
    _refuse_replacing_inputs(dest, [*ckpt.files, *(p for p in (prepared.config_path, vocab_path) if p)])
    with Staging(dest, force=force) as staging:
        model_file = staging.path / ("model.safetensors" if format == "safetensors" else "pytorch_model.bin")
        provenance = Provenance(ckpt, [("config", prepared.config_path), ("vocabulary", vocab_path)], model_file, hash_sources)
        if verifier is not None:
            verifier.warm(plan.target.cls)
        try:
            writing = None if progress is None else (lambda done, total, _key: progress(done, total, "writing"))
            result.output_bytes = write_weights(plan, ckpt.read, model_file, format, dtype, writing,
                                                allow_non_finite=options.get("allow_non_finite", False), warnings=result.warnings)
            if plan.extras:  # never into the model file: no class would load them (engine/extras.py)
                write_extra_weights(plan.extras, ckpt.read, staging.path / EXTRA_WEIGHTS)
            (staging.path / "config.json").write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if prepared.vocabulary is not None:
                max_length = plan.dims.get(plan.family.positions_dim, 512)
                write_tokenizer(staging.path, vocab_path, prepared.vocabulary, lowercase, ckpt.prefix.parent.name, max_length, result)
            if verify:
                logger.info("%s: verifying the written folder against the TF graph", source)
                if progress is not None:
                    progress(result.output_bytes, result.output_bytes, "verifying")
                _verify_folder(plan, ckpt, staging, hf_config, dtype, options, source, result, verifier, lambda: provenance.record(staging.path))
            result.provenance = provenance.record(staging.path)  # computed once, while verifying
            write_model_card(staging.path / "README.md", result, [], __version__)
            if before_commit is not None:
                before_commit(staging.path, result)
            result.files = sorted(p.name for p in staging.path.iterdir())
        except OSError as exc:
            raise output_error(dest, exc) from None
        finally:
            provenance.cancel()  # a no-op once finished; stops the hashing when this failed
        staging.commit()


def _verify_folder(plan: Plan, ckpt, staging: Staging, hf_config: dict, dtype: str, options: dict, source: str, result: ConversionResult,
                   verifier: Verifier | None = None, meanwhile: Callable[[], None] | None = None) -> None:
    """Run the written folder against the source graph; record the outcome, raise above tolerance.

    ``verifier`` runs it (in the process that imported torch while this one wrote; in-process
    when None); ``meanwhile`` runs here in the meantime."""
    # Plain data only: the reference finds its variables among the checkpoint's own names,
    # read by the same reader from the checkpoint's prefix.
    job = {
        "reference": plan.family.reference, "names": list(ckpt.variables), "prefix": str(ckpt.prefix),
        "folder": str(staging.path), "source": source, "tf_config": plan.tf_config, "hf_config": hf_config,
        "target_class": plan.target.cls, "heads": sorted(frozenset(plan.target.parts) - plan.family.base_parts),
        "outputs": [(o.reference, o.field, o.select) for o in plan.target.outputs],
        "vocab_size": plan.dims[plan.family.vocab_dim], "max_positions": plan.dims.get(plan.family.positions_dim),
        "type_vocab_size": plan.dims.get(plan.family.token_types_dim), "dtype": dtype,
    }
    check = (verifier or Verifier(in_process=True)).verify(job, meanwhile)
    result.verification = {
        "passed": check.passed,
        "tolerance": check.tolerance,
        "max_abs_diff": check.max_abs_diff,
        "worst": check.worst,
        "gelu": hf_config.get("hidden_act"),
        "settings": settings_source(options.get("graph")),  # the reference's activation and heads: graph or assumed
    }
    if not check.passed:
        from tf2hf.verify.compare import failure_message

        # --gelu can explain a difference only where the config's activation is the "gelu" it chooses.
        # A transformers config's "gelu" names its formula (Family.activation_named): --gelu does not apply.
        chooses = plan.tf_config.get("hidden_act", "gelu") == "gelu" and not options["graph"].settled.named
        other = "tanh" if options["gelu"] == "erf" else "erf"
        raise VerificationError(failure_message(check, source, other if chooses else None))
