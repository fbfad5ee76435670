"""Write google-research/bert-shaped TF1 checkpoints with random weights, for benchmarks.

    python bench/make_checkpoints.py OUT_DIR [base base-adam large large-adam ...]

Each checkpoint gets the exact variable names of run_pretraining.py (MLM + NSP heads),
``global_step``, and with ``-adam`` the ``adam_m``/``adam_v`` slots of AdamWeightDecay, a
``bert_config.json`` and a 30522-token ``vocab.txt``. Written with TensorFlow's own SaveV2
op, so the files are exactly what TF writes. Needs TensorFlow (``pip install -e .[tf]``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

SIZES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
COMMON = dict(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
              hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)


def variables(config: dict) -> dict[str, tuple[int, ...]]:
    H, I, V = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    shapes = {
        "bert/embeddings/word_embeddings": (V, H),
        "bert/embeddings/position_embeddings": (config["max_position_embeddings"], H),
        "bert/embeddings/token_type_embeddings": (config["type_vocab_size"], H),
        "bert/embeddings/LayerNorm/gamma": (H,),
        "bert/embeddings/LayerNorm/beta": (H,),
        "bert/pooler/dense/kernel": (H, H),
        "bert/pooler/dense/bias": (H,),
        "cls/predictions/transform/dense/kernel": (H, H),
        "cls/predictions/transform/dense/bias": (H,),
        "cls/predictions/transform/LayerNorm/gamma": (H,),
        "cls/predictions/transform/LayerNorm/beta": (H,),
        "cls/predictions/output_bias": (V,),
        "cls/seq_relationship/output_weights": (2, H),
        "cls/seq_relationship/output_bias": (2,),
    }
    for i in range(config["num_hidden_layers"]):
        layer = f"bert/encoder/layer_{i}"
        for name in ("query", "key", "value"):
            shapes[f"{layer}/attention/self/{name}/kernel"] = (H, H)
            shapes[f"{layer}/attention/self/{name}/bias"] = (H,)
        shapes[f"{layer}/attention/output/dense/kernel"] = (H, H)
        shapes[f"{layer}/attention/output/dense/bias"] = (H,)
        shapes[f"{layer}/attention/output/LayerNorm/gamma"] = (H,)
        shapes[f"{layer}/attention/output/LayerNorm/beta"] = (H,)
        shapes[f"{layer}/intermediate/dense/kernel"] = (H, I)
        shapes[f"{layer}/intermediate/dense/bias"] = (I,)
        shapes[f"{layer}/output/dense/kernel"] = (I, H)
        shapes[f"{layer}/output/dense/bias"] = (H,)
        shapes[f"{layer}/output/LayerNorm/gamma"] = (H,)
        shapes[f"{layer}/output/LayerNorm/beta"] = (H,)
    return shapes


def write(out: Path, kind: str, seed: int = 0) -> Path:
    """Write checkpoint ``kind`` (e.g. ``base-adam``) into ``out/kind``; return its prefix."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    size, _, slots = kind.partition("-")
    config = {**COMMON, **SIZES[size]}
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "model.ckpt-1000"
    rng = np.random.default_rng(seed)
    names, tensors = [], []
    for name, shape in variables(config).items():
        value = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        if name.endswith("gamma"):
            value += 1.0
        names.append(name)
        tensors.append(value)
        if slots == "adam":
            names += [f"{name}/adam_m", f"{name}/adam_v"]
            tensors += [rng.standard_normal(shape, dtype=np.float32) * 1e-3, np.abs(rng.standard_normal(shape, dtype=np.float32)) * 1e-6]
    names.append("global_step")
    tensors.append(np.array(1000, dtype=np.int64))
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    (folder / "checkpoint").write_text(f'model_checkpoint_path: "{prefix.name}"\nall_model_checkpoint_paths: "{prefix.name}"\n')
    (folder / "bert_config.json").write_text(json.dumps(config, indent=2))
    specials = ["[PAD]", *[f"[unused{i}]" for i in range(99)], "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + [f"w{i}" for i in range(config["vocab_size"] - len(specials))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return prefix


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    for kind in argv[1:] or ["base", "base-adam", "large", "large-adam"]:
        print(write(out, kind))


if __name__ == "__main__":
    main(sys.argv[1:])
