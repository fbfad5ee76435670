"""The README.md model card written into every output folder: where it came from, what was
left out, and how well it reproduces the source graph."""

from __future__ import annotations

import datetime
from pathlib import Path

from tf2hf.provenance import provenance_lines
from tf2hf.sizes import human


#: The end of a transformers class name -> (its Auto class, the Hub's pipeline_tag). Longest
#: first. ``ForPreTraining`` of BERT and ALBERT carries the masked-LM head (fill-mask runs on
#: it); ELECTRA's discriminator does not, so it gets no pipeline tag (see _pipeline_tag).
CLASS_KINDS = (
    ("ForSequenceClassification", "AutoModelForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "AutoModelForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "AutoModelForQuestionAnswering", "question-answering"),
    ("ForMultipleChoice", "AutoModelForMultipleChoice", "multiple-choice"),
    ("ForMaskedLM", "AutoModelForMaskedLM", "fill-mask"),
    ("ForPreTraining", "AutoModelForPreTraining", "fill-mask"),
    ("Model", "AutoModel", "feature-extraction"),
)


def auto_class(cls: str) -> tuple[str, str | None]:
    """The Auto class that loads ``cls`` with no unexpected key, and the Hub's pipeline tag."""
    for suffix, auto, tag in CLASS_KINDS:
        if cls.endswith(suffix):
            if cls == "ElectraForPreTraining":  # replaced-token detection: no pipeline serves it
                tag = None
            return auto, tag
    return "AutoModel", None


def _front_matter(result, tag: str | None) -> list[str]:
    """YAML the Hub reads: the library, the pipeline the model serves, tags to find it by."""
    tags = ["tf2hf", result.family, "tensorflow-checkpoint-conversion"]
    return ["---", "library_name: transformers", *([f"pipeline_tag: {tag}"] if tag else []), "tags:", *[f"- {t}" for t in tags], "---"]


def _labels_lines(result) -> list[str]:
    labels = list(getattr(result, "labels", None) or [])
    if not labels:
        return []
    if labels == [f"LABEL_{i}" for i in range(len(labels))]:
        return ["", f"The {len(labels)} labels are generic (`LABEL_0` …): a TF checkpoint does not record their names. "
                "Convert again with the label names in the head's order (`--labels`; `labels=` in Python) or set `id2label` in `config.json`."]
    return ["", "Labels: " + ", ".join(f"{i} = `{name}`" for i, name in enumerate(labels)) + "."]


def write_model_card(path: Path, result, sources: list[tuple[str, str]], version: str) -> None:
    name = Path(result.out).name if result.out else "model"
    auto, tag = auto_class(result.target_class)
    lines = [
        *_front_matter(result, tag),
        "",
        f"# {name}",
        "",
        f"Converted from a TensorFlow checkpoint by tf2hf {version} on {datetime.date.today().isoformat()}.",
        "",
        f"- Family: `{result.family}`; class: `{result.target_class}`",
        f"- Tensors written: {result.tensors} ({result.parameters:,} parameters, {result.dtype}, {result.format})",
        "",
        "## Source files",
        "",
        # What identifies the sources and what was written (tf2hf.provenance); ``sources``:
        # (path, sha256) pairs, for a result that has no provenance record.
        *(provenance_lines(result.provenance) if getattr(result, "provenance", None) else
          ["| file | sha256 |", "|---|---|", *[f"| `{Path(p).name}` | `{digest}` |" for p, digest in sources]]),
        "",
        "## Left out",
        "",
    ]
    if result.dropped:
        lines += ["| kind | variables | bytes |", "|---|---|---|"]
        lines += [f"| {kind} | {v['count']} | {human(v['bytes'])} |" for kind, v in sorted(result.dropped.items())]
    else:
        lines.append("Nothing: every variable of the checkpoint is in the model.")
    for name_, why in result.discarded:
        lines.append(f"- `{name_}`: {why}")
    kept = getattr(result, "extra_weights", [])
    if kept:
        lines += ["", "Kept aside in `extra_weights.safetensors`, under their TF names (no transformers class holds them):", ""]
        lines += [f"- `{name_}` {list(shape)}" for name_, shape in kept]
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in result.notes]]
    if result.warnings:  # e.g. weights converted with NaN in them (--allow-non-finite)
        lines += ["", "## Warnings", "", *[f"- {w}" for w in result.warnings]]
    if getattr(result, "assumptions", None):
        # Settings no file showed (tf2hf.engine.graph_facts): the reader of the card should know.
        lines += ["", "## Assumed", "", *[f"- {a}" for a in result.assumptions]]
    lines += ["", "## Verification", ""]
    check = result.verification
    if check is None:
        lines.append("Skipped (`--no-verify`).")
    else:
        lines.append(
            f"The converted model was run next to an independent NumPy implementation of the source TF graph "
            f"(activation `{check['gelu']}`{'; ' + check['settings'] if check.get('settings') else ''}) on a fixed batch with padding and two segments. "
            f"Largest absolute difference: {check['worst']:.3g} (tolerance {check['tolerance']:.3g}): "
            f"{'passed' if check['passed'] else 'FAILED'}."
        )
        lines += ["", "| output | max abs diff |", "|---|---|"]
        lines += [f"| {k} | {v:.3g} |" for k, v in check["max_abs_diff"].items()]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        f"from transformers import {auto}, AutoTokenizer",
        f'model = {auto}.from_pretrained("{name}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
        "```",
        *_labels_lines(result),
        "",
        f"To publish it on the Hugging Face Hub: `hf upload YOUR-NAME/{name} {name}` (after `hf auth login`).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
