"""Reading WordPiece vocabularies the way TF BERT did, and what they tell about casing.

TF BERT's ``tokenization.load_vocab`` reads lines with TensorFlow's ``GFile``, which splits on
``\\n`` only and drops every ``\\r`` (its C++ line reader never keeps one, even inside a line),
then ``str.strip()``\\ s each line. So: real Chinese vocabularies hold tokens with characters that
``str.splitlines`` also treats as line breaks (21128 lines would read as 21130), and a
vocabulary with trailing spaces, CRLF line ends or ``U+2028`` at a token's end means the
stripped tokens. ``fixtures/vocab_cases`` holds TF's own results on such files.

Two deliberate choices where TF gives no usable answer:

- A UTF-8 byte-order mark is removed. TF keeps it as part of the first token
  (``\\ufeff[PAD]``), a token no text ever produces; without it ``[PAD]`` keeps id 0, which is
  what TF's input pipelines pad with, and the casing inference is not misled by it.
- A token that occurs twice is refused. The TF BERT releases disagree on its id:
  google-research/bert keeps the last line's id (``vocab[token] = index``), while
  bert-tensorflow 1.0.4 on PyPI keeps the first and numbers every later token one lower. Which
  embedding rows a token uses therefore depends on which of them trained the model, and
  tf2hf cannot tell.
"""

from __future__ import annotations

import re
from pathlib import Path

from tf2hf.errors import VocabError, shown
from tf2hf.sources import read_limited

MAX_VOCAB_BYTES = 64 * 1024 * 1024
BOM = "\ufeff"
SPECIAL = re.compile(r"\[[^\]]*\]|<[^>]*>")
ASCII_UPPER = re.compile(r"[A-Z]")


def read_vocab(path: Path) -> list[str]:
    """The tokens of a WordPiece ``vocab.txt``, token ``i`` on line ``i + 1``, as TF read them."""
    path = Path(path)
    raw = read_limited(path, MAX_VOCAB_BYTES, VocabError, "a vocabulary", "--vocab")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VocabError(f"{path}: not UTF-8 text (byte {exc.start}); pass a WordPiece vocab.txt") from None
    if text.startswith(BOM):
        text = text[len(BOM):]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a trailing newline ends the last line; it does not start a new token
    tokens = [line.replace("\r", "").strip() for line in lines]
    if not tokens:
        raise VocabError(f"{path}: the vocabulary is empty; pass a WordPiece vocab.txt")
    _refuse_duplicates(path, tokens)
    return tokens


def _refuse_duplicates(path: Path, tokens: list[str]) -> None:
    first: dict[str, int] = {}
    for number, token in enumerate(tokens, start=1):
        if token in first:
            what = "an empty line" if token == "" else f"token {shown(repr(token))}"
            raise VocabError(
                f"{path}: {what} appears twice (lines {first[token]} and {number}, after "
                "stripping spaces as TF BERT does), and TF BERT versions give it different ids; "
                "remove the repeated line so that every token has one id"
            )
        first[token] = number


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
