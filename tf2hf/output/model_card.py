"""The README.md model card written into every output folder: where it came from, what was
left out, and how well it reproduces the source graph."""

from __future__ import annotations

import datetime
from pathlib import Path

from tf2hf.sizes import human


def write_model_card(path: Path, result, sources: list[tuple[str, str]], version: str) -> None:
    name = Path(result.out).name if result.out else "model"
    lines = [
        "---",
        "library_name: transformers",
        f"tags: [tf2hf, {result.family}]",
        "---",
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
        "| file | sha256 |",
        "|---|---|",
        *[f"| `{Path(p).name}` | `{digest}` |" for p, digest in sources],
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
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in result.notes]]
    lines += ["", "## Verification", ""]
    check = result.verification
    if check is None:
        lines.append("Skipped (`--no-verify`).")
    else:
        lines.append(
            f"The converted model was run next to an independent NumPy implementation of the source TF graph "
            f"(activation `{check['gelu']}`) on a fixed batch with padding and two segments. "
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
        "from transformers import AutoModel, AutoTokenizer",
        f'model = AutoModel.from_pretrained("{name}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
