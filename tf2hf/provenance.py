"""Provenance of a conversion, from what it reads anyway: what identifies its sources, and the
sha256 of what it wrote.

The promise for a fine-tuned checkpoint is that its optimizer slots (two thirds of its bytes)
are never read. A sha256 of each data shard would read them all, so by default a shard is
identified by its size and modification time, beside the sha256 of the index: the index pins
every tensor's offset, size and crc32c, and every tensor converted is checked against its
crc32c as it is read. Full hashes of the shards are computed only when asked
(``hash_sources``), and the record says which was done (``"hashing"``: ``"index"`` or
``"full"``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Sequence

from tf2hf.sources import BackgroundHashes, sha256


def file_stat(path: Path) -> dict:
    """Size and modification time of a file: what identifies a data shard without reading it."""
    info = Path(path).stat()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.st_mtime))
    return {"bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "mtime": stamp}


def source_provenance(index: Path, shards: Sequence[Path], side: Sequence[tuple[str, Path | None]],
                      shard_hashes: dict[str, str] | None) -> dict:
    """What identifies the sources of a conversion, from what the conversion reads anyway.

    The index pins every tensor (offset, size, and a crc32c checked as the tensor is read), so
    its sha256 identifies the checkpoint's weights; config and vocabulary are small and hashed
    whole. A data shard is recorded by size and mtime (hashing it would read the optimizer
    slots, two thirds of a fine-tuned checkpoint) unless ``shard_hashes`` (``hash_sources``)
    holds its full sha256. ``side``: (role, path) of the config and the vocabulary.
    """
    files = [{"file": index.name, "role": "index", **file_stat(index), "sha256": sha256(index)}]
    for shard in shards:
        record = {"file": shard.name, "role": "data", **(file_stat(shard) if shard.exists() else {"bytes": None})}
        record["sha256"] = (shard_hashes or {}).get(str(shard))
        files.append(record)
    for role, path in side:
        if path is not None:
            files.append({"file": Path(path).name, "role": role, **file_stat(Path(path)), "sha256": sha256(Path(path))})
    return {"hashing": "full" if shard_hashes is not None else "index", "sources": files}


class FollowingHash:
    """sha256 of a file that this process is writing, front to back, meanwhile.

    A thread hashes what has been written so far (from the page cache, on the second core) and
    catches up once :meth:`result` says the writer is done, so the digest of a 1.3 GB weights
    file costs almost no wall time after the file is written. It relies on the writer only
    appending: the writers of ``tf2hf.output`` write their file once, front to back
    (safetensors: the header, then each tensor in order; ``torch.save``: one stream).
    """

    def __init__(self, path: Path, chunk: int = 4 << 20):
        self.path = Path(path)
        self._chunk = chunk
        self._done = threading.Event()
        self._stop = threading.Event()
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tf2hf-sha256-out", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self.path.exists():
                if self._stop.is_set():
                    return
                if self._done.wait(0.01) and not self.path.exists():
                    raise FileNotFoundError(f"{self.path} was never written")
            digest = hashlib.sha256()
            with open(self.path, "rb", buffering=0) as handle:
                buffer = bytearray(self._chunk)
                view = memoryview(buffer)
                while not self._stop.is_set():
                    finished = self._done.is_set()  # taken before reading: nothing is written after it
                    count = handle.readinto(buffer)
                    if count:
                        digest.update(view[:count])
                    elif finished:
                        self._digest = digest.hexdigest()
                        return
                    else:
                        self._done.wait(0.005)  # caught up with the writer
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> str:
        """The digest of the whole file; call once the writer has closed it."""
        self._done.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._digest is None:
            raise RuntimeError(f"{self.path}: hashing was cancelled")
        return self._digest

    def cancel(self) -> None:
        self._stop.set()
        self._done.set()
        self._thread.join()


def output_digests(folder: Path, known: dict[Path, str]) -> dict[str, str]:
    """sha256 of every file in ``folder`` (just written, so read from the page cache), by name;
    ``known`` digests (the weights, hashed as they were written) are not computed again."""
    digests = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            digests[path.name] = known.get(path) or sha256(path)
    return digests


class Provenance:
    """The provenance of one conversion, gathered beside it: started before the weights file
    ``weights`` is written (hashed as it grows), recorded once the folder is complete.

    ``ckpt``: the opened checkpoint (its index and shard paths); ``side``: (role, path) of the
    config and vocabulary; ``hash_sources``: hash the data shards in full, on a thread.
    """

    def __init__(self, ckpt, side: Sequence[tuple[str, Path | None]], weights: Path, hash_sources: bool):
        self._index, self._shards, self._side, self._weights = ckpt.index_path, list(ckpt.shard_paths), side, Path(weights)
        self._shard_hashes = BackgroundHashes([p for p in self._shards if p.exists()]) if hash_sources else None
        # Hashed as it is written only where the writer is known to append only (our own
        # safetensors writer); torch.save's file is hashed once it is complete.
        self._weights_hash = FollowingHash(self._weights) if self._weights.suffix == ".safetensors" else None
        self._record: dict | None = None

    def record(self, folder: Path) -> dict:
        """Sources and outputs (every file now in ``folder``); computed on the first call."""
        if self._record is None:
            full = dict(self._shard_hashes.result()) if self._shard_hashes is not None else None
            record = source_provenance(self._index, self._shards, self._side, full)
            known = {self._weights: self._weights_hash.result()} if self._weights_hash is not None else {}
            record["outputs"] = output_digests(folder, known)
            self._record = record
        return self._record

    def cancel(self) -> None:
        for running in (self._shard_hashes, self._weights_hash):
            if running is not None:
                running.cancel()


def provenance_lines(record: dict) -> list[str]:
    """The model card's account of ``record``: which hashing was done, each source, each output."""
    if record.get("hashing") == "full":
        how = "Every source file was hashed in full (`--hash-sources`)."
    else:
        how = ("The index, config and vocabulary were hashed (sha256); the data shards were not read "
               "beyond the converted tensors, each checked against the crc32c the index records, so "
               "they are identified by size and modification time (`--hash-sources` hashes them in full).")
    lines = [how, "", "| file | role | bytes | modified (UTC) | sha256 |", "|---|---|---|---|---|"]
    for f in record.get("sources", []):
        digest = f"`{f['sha256']}`" if f.get("sha256") else "not hashed"
        size = f"{f['bytes']:,}" if f.get("bytes") is not None else "missing"
        lines.append(f"| `{f['file']}` | {f['role']} | {size} | {f.get('mtime', '')} | {digest} |")
    lines += ["", "Written (sha256):", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in sorted(record.get("outputs", {}).items())]
    return lines
