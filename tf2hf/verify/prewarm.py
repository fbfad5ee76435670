"""Verification in a process of its own, started when the conversion starts.

Importing torch and transformers and the model's class takes about 4 s of one core, longer than
writing BERT-base. Done after the writing (as it was), it is most of a verified conversion's
time. So a verified conversion starts this module as a child process first (:func:`verifier`):
it imports them on the second core while the parent plans and writes, then waits on its stdin
for the one job: load the written folder and run it on the fixed batch. Meanwhile the parent
computes the other half, the NumPy reference of the TF graph (1-2 s of float64 for BERT-base,
which used to follow the model's run in the child), and compares the two when the child answers.

A process, not a thread: an import runs Python code under the GIL, which a thread would take
from the writing for those 4 s; a process uses the other core, and its memory (torch and the
loaded model, ~700 MiB) ends with it. What verification proves is unchanged: the same
functions of :mod:`tf2hf.verify.compare` on the same batch (sent to the child, not recomputed),
the reference opening the checkpoint by its prefix with the same reader, the folder loaded as a
user would load it.

The child writes nothing. It ends when its job is done, when its stdin closes (the parent
failed, or was killed), or when it is killed; the parent then reports one line. When torch and
transformers are already imported here (a batch worker forked warm), the job runs in-process.

Protocol, one JSON object per line: parent → child ``{"op": "warm", "class": name}`` (optional:
import that model's module too), then ``{"op": "run", ...}``; child → parent
``{"ok": {"outputs": {name: array}}}`` (each array an ``.npy`` in base64) or
``{"error": {"type": ..., "message": ...}}``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator

from tf2hf import errors
from tf2hf.errors import VerificationError, one_line

#: The child's command; a test may point it elsewhere. Not ``-m``, which would put the current
#: folder first on the child's path, where a stray ``torch.py`` would be imported instead.
WORKER = [sys.executable, "-c", "import sys; del sys.path[0]; from tf2hf.verify.prewarm import main; main()"]


@dataclass
class Outcome:
    """What verification found, as :class:`tf2hf.verify.compare.Verification` reports it."""

    passed: bool
    tolerance: float
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    non_finite: dict[str, str] = field(default_factory=dict)  # as Verification.non_finite

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)


def already_warm() -> bool:
    """torch and transformers are loaded in this process: a child would only load them again."""
    return "torch" in sys.modules and "transformers" in sys.modules


@contextmanager
def verifier(wanted: bool) -> Iterator[Verifier | None]:
    """The verifier of one conversion (None when not verifying): a child process that starts
    importing torch now, or in-process when this process has them; closed on the way out."""
    if not wanted:
        yield None
        return
    running = Verifier(in_process=already_warm())
    try:
        yield running
    finally:
        running.close()


class Verifier:
    """Runs one verification job; :meth:`close` always, even after an error."""

    def __init__(self, in_process: bool = False):
        self._child: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None
        if not in_process:
            # An unnamed temporary file: it disappears with the last descriptor, whatever happens.
            self._stderr = tempfile.TemporaryFile()
            self._child = subprocess.Popen(WORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)

    def warm(self, target_class: str) -> None:
        """Let the child import the model class's module while the folder is being written."""
        if self._child is not None:
            self._send({"op": "warm", "class": target_class})

    def verify(self, job: dict[str, Any], meanwhile: Callable[[], None] | None = None) -> Outcome:
        """Verify ``job`` (plain data; see :func:`run_job`): the child loads and runs the folder
        while this process computes the reference, then ``meanwhile`` (hashing what was written)."""
        if self._child is None:
            if meanwhile is not None:
                meanwhile()
            return run_job(job)
        from tf2hf.verify.compare import judge

        inputs = _inputs(job)
        self._send({"op": "run", "folder": job["folder"], "target_class": job["target_class"], "heads": job["heads"],
                    "outputs": job["outputs"], "inputs": {k: v.tolist() for k, v in inputs.items()}})
        reference = _reference(job, inputs)
        if meanwhile is not None:
            meanwhile()
        line = self._child.stdout.readline() if self._child.stdout else b""
        if not line:
            raise self._died(job["source"])
        answer = json.loads(line)
        if "error" in answer:
            raise _as_error(answer["error"])
        converted = {name: _decode(text) for name, text in answer["ok"]["outputs"].items()}
        return _outcome(judge(reference, converted, job["dtype"], inputs))

    def close(self) -> None:
        """End the child (if still running) and wait for it: nothing outlives the conversion."""
        child, self._child = self._child, None
        if child is not None:
            for stream in (child.stdin, child.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            if child.poll() is None:
                child.kill()
            child.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _send(self, message: dict[str, Any]) -> None:
        assert self._child is not None and self._child.stdin is not None
        try:
            self._child.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
            self._child.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child is gone; verify() reads the end of its stdout and says so

    def _died(self, source: str) -> VerificationError:
        assert self._child is not None
        try:
            code = self._child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        how = "was killed" if code is not None and code < 0 else f"exited with code {code}"
        last = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = [ln for ln in self._stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            last = f" ({one_line(lines[-1])[:300]})" if lines else ""
        return VerificationError(
            f"{source}: the verification process {how} before answering{last}; nothing was written. "
            "Run again, or pass --no-verify to skip verification"
        )


def _as_error(error: dict[str, str]) -> Exception:
    """The child's exception, raised here as the same tf2hf error (one line), or as internal."""
    cls = getattr(errors, error.get("type", ""), None)
    message = one_line(error.get("message", ""))
    if isinstance(cls, type) and issubclass(cls, errors.Tf2hfError):
        return cls(message)
    return RuntimeError(f"in the verification process: {error.get('type')}: {message}")


def run_job(job: dict[str, Any]) -> Outcome:
    """Verify the folder ``job["folder"]`` against the checkpoint at ``job["prefix"]``, here."""
    from tf2hf.tfckpt import open_checkpoint
    from tf2hf.verify.compare import verify

    with open_checkpoint(job["prefix"]) as ckpt:
        check = verify(
            job["reference"], job["names"], ckpt.read, Path(job["folder"]),
            source=job["source"], tf_config=job["tf_config"], hf_config=job["hf_config"],
            target_class=job["target_class"], heads=frozenset(job["heads"]),
            outputs=[tuple(o) for o in job["outputs"]], vocab_size=job["vocab_size"],
            max_positions=job["max_positions"], type_vocab_size=job["type_vocab_size"], dtype=job["dtype"],
        )
    return _outcome(check)


def _inputs(job: dict[str, Any]) -> dict:
    from tf2hf.verify.compare import fixed_batch

    return fixed_batch(job["vocab_size"], job["max_positions"], job["type_vocab_size"])


def _reference(job: dict[str, Any], inputs: dict) -> dict:
    """The reference half: the TF graph in NumPy, on the checkpoint opened by its prefix."""
    from tf2hf.tfckpt import open_checkpoint
    from tf2hf.verify.compare import reference_outputs

    with open_checkpoint(job["prefix"]) as ckpt:
        return reference_outputs(job["reference"], job["names"], ckpt.read, source=job["source"], tf_config=job["tf_config"],
                                 hf_config=job["hf_config"], heads=frozenset(job["heads"]), inputs=inputs,
                                 outputs=[tuple(o) for o in job["outputs"]])


def _outcome(check) -> Outcome:
    return Outcome(passed=bool(check.passed), tolerance=float(check.tolerance),
                   max_abs_diff={k: float(v) for k, v in check.max_abs_diff.items()}, non_finite=dict(check.non_finite))


def _encode(array) -> str:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode(text: str):
    import numpy as np

    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def _run_in_child(message: dict[str, Any]) -> dict[str, Any]:
    """The child's half: load the folder and run it on the batch the parent sent."""
    import numpy as np

    from tf2hf.verify.compare import run_converted

    inputs = {k: np.asarray(v, dtype=np.int64) for k, v in message["inputs"].items()}
    outputs = run_converted(Path(message["folder"]), message["target_class"], message["heads"],
                            [tuple(o) for o in message["outputs"]], inputs)
    return {"outputs": {name: _encode(value) for name, value in outputs.items()}}


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    from tf2hf.offline import work_offline

    work_offline()  # before transformers is imported: the hub client reads these once
    import torch  # noqa: F401  (the point of this process: imported while the parent writes)
    import transformers

    import tf2hf.verify.compare  # noqa: F401

    for line in stdin:
        message = json.loads(line)
        if message.get("op") == "warm":
            getattr(transformers, message.get("class", ""), None)  # imports the model's module
            continue
        try:
            answer: dict[str, Any] = {"ok": _run_in_child(message)}
        except Exception as exc:  # handed to the parent, which raises it
            answer = {"error": {"type": type(exc).__name__, "message": str(exc)}}
        stdout.write(json.dumps(answer).encode("utf-8") + b"\n")
        stdout.flush()
        return


def main() -> None:
    """The child's entry point: serve one job on stdin/stdout."""
    # The answer goes to a copy of stdout; stdout itself now leads to stderr, so that nothing
    # torch or transformers print can be taken for an answer.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        _serve(sys.stdin.buffer, answers)
    except (KeyboardInterrupt, BrokenPipeError):
        pass  # the parent is gone or interrupted: there is no one to answer


if __name__ == "__main__":
    main()
