"""Work overlapped for speed (issue 17), with nothing it proves or writes changed.

- The safetensors writer starts the disk's write-out every few MiB (output/writeback.py): the
  ranges asked for are consecutive and the file is the same.
- A verified conversion computes the NumPy reference in its own process while the verification
  process loads the model: a model that differs from the TF graph still fails there.
"""

from __future__ import annotations

import numpy as np
import pytest

import tf2hf.api
from support import edit_rules, fixture
from tf2hf import convert
from tf2hf.engine.registry import families
from tf2hf.errors import VerificationError
from tf2hf.output import writeback
from tf2hf.output.safetensors_stream import SafetensorsStreamWriter
from tf2hf.verify import prewarm
from test_honest_verification import swap_sources


def test_the_write_out_is_started_behind_the_writing_over_consecutive_ranges(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(writeback, "STEP", 1 << 12)
    monkeypatch.setattr(writeback, "_call", lambda fd, start, length, flags: calls.append((start, length, flags)) or 0)
    rng = np.random.default_rng(4)
    tensors = {f"t{i}": rng.standard_normal((64, 33)).astype(np.float32) for i in range(6)}
    writer = SafetensorsStreamWriter(tmp_path / "m.safetensors", [(k, v.shape) for k, v in tensors.items()], "float32", {})
    for key in writer.order:
        writer.write(key, tensors[key])
    writer.close()
    size = (tmp_path / "m.safetensors").stat().st_size
    assert len(calls) >= 4 and all(flags == 2 for _, _, flags in calls)  # SYNC_FILE_RANGE_WRITE: start, not wait
    assert calls[0][0] == 0 and all(a[0] + a[1] == b[0] for a, b in zip(calls, calls[1:]))
    assert calls[-1][0] + calls[-1][1] <= size
    from safetensors.numpy import load_file

    loaded = load_file(str(tmp_path / "m.safetensors"))
    assert all(np.array_equal(loaded[k], v) for k, v in tensors.items())


def test_a_wrong_model_fails_when_the_reference_is_computed_beside_the_verification_process(tmp_path, monkeypatch):
    # Query and key swapped in BERT's table: every shape fits, the numbers do not. The model is
    # run in the child process and the reference here, as in every verified CLI conversion.
    monkeypatch.setattr(prewarm, "already_warm", lambda: False)
    family = families()["bert"]
    broken = edit_rules(family, swap_sources("attention.self.query.weight", "attention.self.key.weight"))
    monkeypatch.setattr(tf2hf.api, "select", lambda *args, **kwargs: broken)
    with pytest.raises(VerificationError, match="differs from the TF graph"):
        convert("bert", tf=fixture("bert_pretrain"), out=tmp_path / "out", gelu="tanh")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(tf2hf.api, "select", lambda *args, **kwargs: family)
    result = convert("bert", tf=fixture("bert_pretrain"), out=tmp_path / "out", gelu="tanh")
    assert result.verification["passed"] and result.verification["worst"] < 1e-5
