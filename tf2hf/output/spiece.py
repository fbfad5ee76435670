"""English ALBERT's SentencePiece model (``30k-clean.model``) as transformers files.

Written: ``spiece.model`` (the original bytes, the name transformers expects) and a
``tokenizer.json`` built here with the ``tokenizers`` library from the model's pieces, so that
``AutoTokenizer`` loads it without the ``sentencepiece`` package (whose absence transformers 5
reports with a misleading error).

The ``.model`` file is a serialised ``ModelProto``: ``pieces = 1`` (each ``piece = 1``,
``score = 2`` float, ``type = 3``: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
6 byte), ``trainer_spec = 2`` (``model_type = 3``: 1 unigram), ``normalizer_spec = 3``
(``precompiled_charsmap = 3``). It is decoded with the same wire-format reader as the
checkpoint index.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from tf2hf.errors import CheckpointFormatError, VocabError

UNKNOWN, CONTROL = 2, 3
UNIGRAM = 1
MAX_MODEL_BYTES = 64 * 1024 * 1024

SPECIAL = {
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
    "bos_token": "[CLS]",
    "eos_token": "[SEP]",
}


@dataclass
class SentencePieceModel:
    pieces: list[tuple[str, float, int]]
    model_type: int
    charsmap: bytes

    @property
    def unk_id(self) -> int:
        for index, (_, _, kind) in enumerate(self.pieces):
            if kind == UNKNOWN:
                return index
        return 0


def read_model(path: Path) -> SentencePieceModel:
    from tf2hf.tfckpt.bundle import iter_fields  # the shared wire-format reader

    from tf2hf.sources import read_limited

    path = Path(path)
    data = read_limited(path, MAX_MODEL_BYTES, VocabError, "a SentencePiece model", "--vocab")
    pieces: list[tuple[str, float, int]] = []
    model_type, charsmap = UNIGRAM, b""
    try:
        for field, _wire, value in iter_fields(data):
            if field == 1 and isinstance(value, bytes):
                piece, score, kind = "", 0.0, 1
                for f, _w, v in iter_fields(value):
                    if f == 1 and isinstance(v, bytes):
                        piece = v.decode("utf-8")
                    elif f == 2 and isinstance(v, int):
                        score = struct.unpack("<f", v.to_bytes(4, "little"))[0]
                    elif f == 3 and isinstance(v, int):
                        kind = v
                pieces.append((piece, score, kind))
            elif field == 2 and isinstance(value, bytes):
                for f, _w, v in iter_fields(value):
                    if f == 3 and isinstance(v, int):
                        model_type = v
            elif field == 3 and isinstance(value, bytes):
                for f, _w, v in iter_fields(value):
                    if f == 3 and isinstance(v, bytes):
                        charsmap = v
    except (CheckpointFormatError, UnicodeDecodeError):
        raise VocabError(f"{path}: not a SentencePiece model; pass the model's 30k-clean.model or vocab.txt") from None
    if not pieces:
        raise VocabError(f"{path}: a SentencePiece model with no pieces; pass the model's 30k-clean.model or vocab.txt")
    if model_type != UNIGRAM:
        raise VocabError(f"{path}: SentencePiece model type {model_type} is not unigram, which ALBERT uses; pass the model's own 30k-clean.model")
    return SentencePieceModel(pieces, model_type, charsmap)


def build_unigram(model: SentencePieceModel, do_lower_case: bool):
    """ALBERT's tokenizer: quote and accent clean-up, lower case, metaspace, unigram."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.Unigram([(p, s) for p, s, _ in model.pieces], unk_id=model.unk_id, byte_fallback=False))
    steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"'), normalizers.NFKD(), normalizers.StripAccents()]
    if do_lower_case:
        steps.append(normalizers.Lowercase())
    if model.charsmap:
        steps.append(normalizers.Precompiled(model.charsmap))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    ids = {p: i for i, (p, _, _) in enumerate(model.pieces)}
    if "[CLS]" in ids and "[SEP]" in ids:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0",
            pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
        )
    tokenizer.add_special_tokens([p for p, _, kind in model.pieces if kind in (UNKNOWN, CONTROL)] + (["[MASK]"] if "[MASK]" in ids else []))
    return tokenizer


def write_sentencepiece(out_dir: Path, model_path: Path, model: SentencePieceModel, *, do_lower_case: bool, model_max_length: int) -> list[str]:
    out_dir = Path(out_dir)
    shutil.copyfile(model_path, out_dir / "spiece.model")
    # Written by Python so that a full disk raises OSError (see tokenizer.write_wordpiece).
    (out_dir / "tokenizer.json").write_text(build_unigram(model, do_lower_case).to_str(pretty=True), encoding="utf-8")
    present = {name: tok for name, tok in SPECIAL.items() if tok in {p for p, _, _ in model.pieces}}
    config = {
        "tokenizer_class": "AlbertTokenizer",
        "do_lower_case": do_lower_case,
        "keep_accents": False,
        "remove_space": True,
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        **present,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(present, indent=2) + "\n", encoding="utf-8")
    return ["spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
