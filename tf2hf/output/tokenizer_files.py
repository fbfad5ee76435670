"""The vocabulary beside a checkpoint, read and written as the output folder's tokenizer files."""

from __future__ import annotations

from pathlib import Path

from tf2hf.engine.table import Family
from tf2hf.output.vocab import infer_lowercase, read_vocab
from tf2hf.sources import find_beside


def find_vocab(family: Family, folder: Path, given: str | Path | None, warnings: list[str]) -> Path | None:
    if given is not None:
        return Path(given)
    found, candidates = find_beside(folder, family.vocab_names)
    if found is None:
        what = f"several vocabularies ({', '.join(p.name for p in candidates)})" if candidates else "no vocabulary"
        warnings.append(f"{folder}: {what} found beside the checkpoint; no tokenizer written (pass --vocab)")
    return found


def read_vocabulary(path: Path):
    """A WordPiece token list, or a SentencePiece model (English ALBERT's ``*.model``)."""
    if path.suffix == ".model":
        from tf2hf.output.spiece import read_model

        return read_model(path).pieces
    return read_vocab(path)


def write_tokenizer(folder: Path, vocab_path: Path, vocabulary: list, lowercase: bool | None, hint: str, max_length: int, result) -> None:
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
