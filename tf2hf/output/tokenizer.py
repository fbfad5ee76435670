"""Tokenizer files for a WordPiece vocabulary, loadable by ``AutoTokenizer`` offline.

Written: ``vocab.txt`` (the tokens as TF BERT read them, one a line, for older readers), ``tokenizer.json`` (built with
the ``tokenizers`` library: BERT normaliser and pre-tokeniser, WordPiece, ``[CLS] … [SEP]``
template), ``tokenizer_config.json`` and ``special_tokens_map.json``.

``tokenizer_class`` is always written: without it transformers 5 picks the tokenizer from
``model_type`` and, for ALBERT, silently builds a 5-token SentencePiece stand-in that maps every
Chinese character to ``<unk>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


@dataclass
class TokenizerSummary:
    vocab_size: int
    do_lower_case: bool
    lowercase_reason: str
    missing_special: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def build_wordpiece(tokens: list[str], do_lower_case: bool):
    """A ``tokenizers.Tokenizer`` equivalent to TF BERT's FullTokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {}
    for index, token in enumerate(tokens):
        vocab.setdefault(token, index)  # first occurrence wins, as in TF's load_vocab order
    unk = SPECIAL_TOKENS["unk_token"] if SPECIAL_TOKENS["unk_token"] in vocab else tokens[0]
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token=unk, max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=do_lower_case
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    cls, sep = SPECIAL_TOKENS["cls_token"], SPECIAL_TOKENS["sep_token"]
    if cls in vocab and sep in vocab:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
        )
    tokenizer.add_special_tokens([t for t in SPECIAL_TOKENS.values() if t in vocab])
    return tokenizer


def write_wordpiece(
    out_dir: Path,
    vocab_path: Path,
    tokens: list[str],
    *,
    do_lower_case: bool,
    lowercase_reason: str,
    model_max_length: int,
) -> TokenizerSummary:
    out_dir = Path(out_dir)
    # The tokens as TF read them, not the file's bytes: transformers' own vocab.txt reader only
    # drops the "\n", so a BOM, a "\r" or trailing spaces would otherwise become part of tokens.
    (out_dir / "vocab.txt").write_text("".join(token + "\n" for token in tokens), encoding="utf-8", newline="\n")
    present = {name: tok for name, tok in SPECIAL_TOKENS.items() if tok in set(tokens)}
    missing = [tok for name, tok in SPECIAL_TOKENS.items() if name not in present]
    # Written by Python, not Tokenizer.save: a full disk then raises OSError (ENOSPC), which
    # becomes a clear message, instead of the library's untyped exception.
    (out_dir / "tokenizer.json").write_text(build_wordpiece(tokens, do_lower_case).to_str(pretty=True), encoding="utf-8")
    config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": do_lower_case,
        "tokenize_chinese_chars": True,
        "strip_accents": None,
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        **present,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(present, indent=2) + "\n", encoding="utf-8")
    return TokenizerSummary(
        vocab_size=len(tokens),
        do_lower_case=do_lower_case,
        lowercase_reason=lowercase_reason,
        missing_special=missing,
        files=["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"],
    )
