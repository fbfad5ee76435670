"""The conversion, start to finish: resolve → plan → write (streamed) → verify → rename.

``convert()`` is the library entry point and what the CLI calls. It raises only
:class:`~tf2hf.errors.Tf2hfError` subclasses for problems with the input or the destination.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from tf2hf import __version__
from tf2hf.engine.plan import Plan, make_plan
from tf2hf.engine.registry import select
from tf2hf.engine.stream import Progress, check_shards, write_weights
from tf2hf.engine.table import TASKS, Family
from tf2hf.errors import ConfigError, OutputError, Tf2hfError, VerificationError, VocabError
from tf2hf.output.dtypes import ITEMSIZE, OUTPUT_DTYPES
from tf2hf.output.model_card import write_model_card
from tf2hf.output.staging import Staging, output_error
from tf2hf.output.vocab import infer_lowercase, read_vocab
from tf2hf.sources import BackgroundHashes, find_beside, find_config, load_config
from tf2hf.tfckpt import open_checkpoint

FORMATS = ("safetensors", "bin")
GELUS = ("erf", "tanh")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _find_vocab(family: Family, folder: Path, given: str | Path | None, warnings: list[str]) -> Path | None:
    if given is not None:
        return Path(given)
    found, candidates = find_beside(folder, family.vocab_names)
    if found is None:
        what = f"several vocabularies ({', '.join(p.name for p in candidates)})" if candidates else "no vocabulary"
        warnings.append(f"{folder}: {what} found beside the checkpoint; no tokenizer written (pass --vocab)")
    return found


def _read_vocabulary(path: Path):
    """A WordPiece token list, or a SentencePiece model (English ALBERT's ``*.model``)."""
    if path.suffix == ".model":
        from tf2hf.output.spiece import read_model

        return read_model(path).pieces
    return read_vocab(path)


def _write_tokenizer(folder: Path, vocab_path: Path, vocabulary: list, lowercase: bool | None, hint: str, max_length: int, result) -> None:
    if vocab_path.suffix == ".model":
        from tf2hf.output.spiece import read_model, write_sentencepiece

        # ALBERT's SentencePiece vocabulary was trained on lower-cased text.
        do_lower = True if lowercase is None else lowercase
        write_sentencepiece(folder, vocab_path, read_model(vocab_path), do_lower_case=do_lower, model_max_length=max_length)
        result.notes.append(f"tokenizer: SentencePiece, {len(vocabulary)} pieces, do_lower_case={do_lower}")
        return
    from tf2hf.output.tokenizer import write_wordpiece

    do_lower, why = (lowercase, "set by the user") if lowercase is not None else infer_lowercase(vocabulary, hint)
    summary = write_wordpiece(folder, vocab_path, vocabulary, do_lower_case=do_lower, lowercase_reason=why, model_max_length=max_length)
    result.notes.append(f"tokenizer: {summary.vocab_size} tokens, do_lower_case={do_lower} ({why})")
    if summary.missing_special:
        result.warnings.append(f"{vocab_path}: no {', '.join(summary.missing_special)} in the vocabulary")


def _refuse_replacing_inputs(dest: Path, inputs: list[Path]) -> None:
    """--force replaces the whole destination folder: never one that holds an input."""
    target = Path(os.path.realpath(dest))
    for path in inputs:
        real = Path(os.path.realpath(path))
        if real == target or target in real.parents:
            raise OutputError(f"{os.path.abspath(dest)}: holds {path}, which this conversion reads; choose another --out")


def hf_config_for(plan: Plan, options: dict) -> dict:
    """config.json: the family's translation plus what every transformers config needs."""
    config = plan.family.hf_config(plan.tf_config, plan.dims, options)
    config.update(plan.target.config)
    # A family may derive the head count (ELECTRA's generator, TF2's 3-D kernels); else the config's.
    heads = config.get("num_attention_heads", plan.tf_config.get("num_attention_heads"))
    if not isinstance(heads, int) or heads <= 0:
        raise ConfigError(f"{options['config_label']}: num_attention_heads is missing or not a positive integer; fix the config")
    if config["hidden_size"] % heads:
        raise ConfigError(f"{options['config_label']}: hidden_size {config['hidden_size']} is not a multiple of num_attention_heads {heads}; fix the config")
    config["num_attention_heads"] = heads
    if "num_labels" in config:
        labels = {str(i): f"LABEL_{i}" for i in range(int(config.pop("num_labels")))}
        config["id2label"] = labels
        config["label2id"] = {v: int(k) for k, v in labels.items()}
    config["model_type"] = plan.family.model_type
    config["architectures"] = [plan.target.cls]
    config["dtype"] = options["dtype"]
    return config


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
    variant: str | None = None,
    target: str | None = None,
    tower: str | None = None,
    task: str = "auto",
    tokenizer: bool = True,
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
    ``"gelu"`` (default: the family's). ``lowercase``: override the inferred ``do_lower_case``.
    ``task`` (one of :data:`~tf2hf.engine.table.TASKS`, or ``"auto"``: from the heads present)
    picks the class written; heads it does not take are left out and reported. ``tokenizer``
    ``False`` writes no tokenizer files. ``dry_run`` plans and returns without writing anything. ``verify`` (default) runs the
    converted model against a NumPy run of the source graph and fails above tolerance.
    ``before_commit(staging_folder, result)`` runs when the folder is complete, just before it
    is renamed into place: files it writes there become part of the output, atomically.
    """
    started = time.perf_counter()
    _check_options(format, dtype, gelu, out, dry_run, task)
    with open_checkpoint(tf) as ckpt:
        source = str(ckpt.prefix)
        fam = select(family, ckpt.variables, _one_variant(variant, target, tower, source), source)
        prepared = _prepare(fam, ckpt, config, vocab, gelu, dtype, task, tokenizer)
        result = _new_result(fam, prepared, source, out, dry_run, dtype, format)
        result.task = task
        if not dry_run:
            _write_folder(ckpt, prepared, result, Path(out), format, dtype, lowercase, force, verify, progress, before_commit)
        result.seconds = time.perf_counter() - started
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
             task: str = "auto", tokenizer: bool = True) -> _Prepared:
    """Plan the conversion and read what comes with the checkpoint; writes nothing."""
    warnings: list[str] = []
    config_path = find_config(ckpt.prefix.parent, fam.config_names, config)
    tf_config = load_config(config_path)
    plan = make_plan(fam, ckpt.variables, tf_config, source=str(ckpt.prefix), config_label=str(config_path), task=task)
    options = {"gelu": gelu or fam.default_gelu, "dtype": dtype, "config_label": str(config_path)}
    hf_config = hf_config_for(plan, options)
    vocab_path = _find_vocab(fam, ckpt.prefix.parent, vocab, warnings) if tokenizer else None
    vocabulary = _read_vocabulary(vocab_path) if vocab_path else None
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
        config_path=str(prepared.config_path),
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
        notes=list(plan.notes),
        warnings=prepared.warnings,
    )
    result.plan = plan  # type: ignore[attr-defined]  # for --dry-run display; not serialised
    return result


def _write_folder(ckpt, prepared: _Prepared, result: ConversionResult, dest: Path, format: str, dtype: str, lowercase: bool | None,
                  force: bool, verify: bool, progress: Progress | None, before_commit) -> None:
    """Write the folder beside ``dest``, verify it, and rename it into place."""
    plan, hf_config, options, vocab_path = prepared.plan, prepared.hf_config, prepared.options, prepared.vocab_path
    source = result.source
    check_shards(ckpt, plan)
    _refuse_replacing_inputs(dest, [*ckpt.files, prepared.config_path, *([vocab_path] if vocab_path else [])])
    with Staging(dest, force=force) as staging:
        # The model card's sha256 of every source file is computed beside the conversion.
        hashes = BackgroundHashes([p for p in ckpt.files if p.exists()] + [Path(p) for p in (prepared.config_path, vocab_path) if p is not None])
        try:
            model_file = staging.path / ("model.safetensors" if format == "safetensors" else "pytorch_model.bin")
            result.output_bytes = write_weights(plan, ckpt.read, model_file, format, dtype, progress)
            (staging.path / "config.json").write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if prepared.vocabulary is not None:
                max_length = plan.dims.get(plan.family.positions_dim, 512)
                _write_tokenizer(staging.path, vocab_path, prepared.vocabulary, lowercase, ckpt.prefix.parent.name, max_length, result)
            if verify:
                _verify_folder(plan, ckpt, staging, hf_config, dtype, options, source, result)
            write_model_card(staging.path / "README.md", result, hashes.result(), __version__)
            if before_commit is not None:
                before_commit(staging.path, result)
            result.files = sorted(p.name for p in staging.path.iterdir())
        except OSError as exc:
            raise output_error(dest, exc) from None
        finally:
            hashes.cancel()  # a no-op once finished; stops the reading when this failed
        staging.commit()


def _verify_folder(plan: Plan, ckpt, staging: Staging, hf_config: dict, dtype: str, options: dict, source: str, result: ConversionResult) -> None:
    """Run the written folder against the source graph; record the outcome, raise above tolerance."""
    from tf2hf.verify.compare import verify as run_verification

    # Plain data only: the reference finds its variables among the checkpoint's own names.
    check = run_verification(
        plan.family.reference, list(ckpt.variables), ckpt.read, staging.path,
        source=source, tf_config=plan.tf_config, hf_config=hf_config, target_class=plan.target.cls,
        heads=frozenset(plan.target.parts) - plan.family.base_parts, outputs=plan.target.outputs,
        vocab_size=plan.dims[plan.family.vocab_dim], max_positions=plan.dims.get(plan.family.positions_dim),
        type_vocab_size=plan.dims.get(plan.family.token_types_dim), dtype=dtype,
    )
    result.verification = {
        "passed": check.passed,
        "tolerance": check.tolerance,
        "max_abs_diff": check.max_abs_diff,
        "worst": check.worst,
        "gelu": hf_config.get("hidden_act"),
    }
    if not check.passed:
        worst = max(check.max_abs_diff, key=check.max_abs_diff.get)
        raise VerificationError(
            f"{source}: the converted model differs from the TF graph by {check.max_abs_diff[worst]:.3g} in {worst} "
            f"(tolerance {check.tolerance:.3g}); nothing was written. If the model was trained with the other GELU formula, try --gelu {'tanh' if options['gelu'] == 'erf' else 'erf'}"
        )
