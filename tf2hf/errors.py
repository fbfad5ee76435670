"""Typed errors of tf2hf.

Every error a user can cause derives from :class:`Tf2hfError`. Its message is one line that
names the file involved and says what to do; the CLI prints exactly that line and exits 1.
"""

from __future__ import annotations

import re


class Tf2hfError(Exception):
    """Base class: a problem with the user's input or environment, explained in one line.

    ``details`` optionally carries the full list behind a summary (e.g. every unknown variable);
    the CLI prints it below the line.
    """

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = list(details or [])


# --- finding and reading checkpoints -------------------------------------------------------


class CheckpointNotFoundError(Tf2hfError):
    """The path given does not lead to a TF checkpoint."""


class AmbiguousCheckpointError(Tf2hfError):
    """A folder holds several checkpoint prefixes and none is clearly meant."""


class CheckpointFormatError(Tf2hfError):
    """The index or a data shard is not a valid TF V2 checkpoint (bad magic, garbled index...)."""


class NotV2CheckpointError(CheckpointFormatError):
    """A TF V1 (single-file) checkpoint or some other file that is not a V2 tensor bundle."""


class MissingShardError(CheckpointFormatError):
    """A data shard named by the index does not exist."""


class ShortShardError(CheckpointFormatError):
    """A data shard is shorter than the index says."""


class CrcMismatchError(CheckpointFormatError):
    """A tensor's bytes do not match the crc32c recorded in the index."""


class UnsupportedDtypeError(CheckpointFormatError):
    """A tensor has a dtype tf2hf cannot read as a weight (e.g. string)."""


# --- configuration, vocabulary, mapping ----------------------------------------------------


class ConfigError(Tf2hfError):
    """The model config is missing, unreadable, or contradicts the checkpoint."""


class VocabError(Tf2hfError):
    """The vocabulary file is unreadable or contradicts the checkpoint."""


class FamilyError(Tf2hfError):
    """The checkpoint does not belong to the requested (or any known) family."""


class MappingError(Tf2hfError):
    """Variables that no rule maps, targets that nothing fills, or shapes that do not fit."""


class UnsupportedModelError(Tf2hfError):
    """A recognised layout that no transformers class can represent exactly."""


# --- output and verification ---------------------------------------------------------------


class OutputError(Tf2hfError):
    """The output folder exists, is not writable, or the disk is full."""


class VerificationError(Tf2hfError):
    """The converted model does not reproduce the source graph, or does not load cleanly."""


class WeightValueError(Tf2hfError):
    """A weight holds NaN or Inf, or a value the output dtype cannot hold."""


# --- model zoos (tf2hf batch) --------------------------------------------------------------


class ZooError(Tf2hfError):
    """A zoo folder or the list of entries of a batch cannot be used as given."""


class ManifestError(ZooError):
    """A batch manifest is unreadable or has an invalid entry."""


class ClusterError(Tf2hfError):
    """The Dask cluster of a batch cannot be used: Dask is not installed, the scheduler cannot be
    reached or has no workers, or a worker does not see the zoo and the output root."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space.

    A failure reason is one line of the batch display and of its report, whatever the exception
    it came from put in its message.
    """
    return " ".join(text.split())


#: A name longer than this is shown with its middle elided; a whole message, beyond
#: ``MAX_SHOWN_MESSAGE``. File names come from the user's disk and may be 200,000 characters.
MAX_SHOWN_NAME = 300
MAX_SHOWN_MESSAGE = 2000
_LONG_RUN = re.compile(r"\S{%d,}" % (MAX_SHOWN_NAME + 1))


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _elided(text: str, limit: int) -> str:
    keep = (limit - 30) // 2
    return f"{text[:keep]}…({len(text) - 2 * keep} characters)…{text[-keep:]}"


def shown(text: str) -> str:
    """``text`` as it may be printed on a terminal, in one line of bounded length.

    Every character that is not printable (control characters, ANSI escapes, line and paragraph
    separators, bidirectional overrides; any whitespace but the space) is written as its escape
    (``\\x1b``, ``\\u2028``), so a file name can neither fake a line of output nor recolour the
    terminal. A run of more than ``MAX_SHOWN_NAME`` non-space characters (a name, in practice)
    keeps its start and end, with the number of characters left out between them; so does the
    whole text beyond ``MAX_SHOWN_MESSAGE``. Printable non-ASCII text (Chinese names) stays as it is.
    """
    text = "".join(c if c.isprintable() or c == " " else _escaped(c) for c in str(text))
    text = _LONG_RUN.sub(lambda match: _elided(match.group(0), MAX_SHOWN_NAME), text)
    return _elided(text, MAX_SHOWN_MESSAGE) if len(text) > MAX_SHOWN_MESSAGE else text
