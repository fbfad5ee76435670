"""Reading WordPiece vocabularies the way TF BERT did, and what they tell about casing.

Lines are split on ``\\n`` only: real Chinese vocabularies hold tokens with characters that
``str.splitlines`` also treats as line breaks (21128 lines would read as 21130).
"""

from __future__ import annotations

import re
from pathlib import Path

from tf2hf.errors import VocabError
from tf2hf.sources import read_limited

MAX_VOCAB_BYTES = 64 * 1024 * 1024
SPECIAL = re.compile(r"\[[^\]]*\]|<[^>]*>")
ASCII_UPPER = re.compile(r"[A-Z]")


def read_vocab(path: Path) -> list[str]:
    path = Path(path)
    raw = read_limited(path, MAX_VOCAB_BYTES, VocabError, "a vocabulary", "--vocab")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VocabError(f"{path}: not UTF-8 text (byte {exc.start}); pass a WordPiece vocab.txt") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a trailing newline ends the last line; it does not start a new token
    tokens = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not tokens:
        raise VocabError(f"{path}: the vocabulary is empty; pass a WordPiece vocab.txt")
    return tokens


def infer_lowercase(tokens: list[str], hint: str = "") -> tuple[bool, str]:
    """(do_lower_case, why). Uncased vocabularies were built from lower-cased text, so an
    ASCII capital in an ordinary (non-bracketed) token means the model is cased."""
    lowered = hint.lower()
    if "uncased" in lowered:
        return True, f"'uncased' in {hint!r}"
    if "cased" in lowered:
        return False, f"'cased' in {hint!r}"
    capitals = [t for t in tokens if ASCII_UPPER.search(t) and not SPECIAL.fullmatch(t)]
    if capitals:
        return False, f"the vocabulary has {len(capitals)} tokens with capitals (e.g. {capitals[0]!r})"
    return True, "the vocabulary has no tokens with capitals"
