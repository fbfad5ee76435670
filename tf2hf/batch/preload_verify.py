"""Imported by the fork server of ``tf2hf batch`` when conversions are verified.

Verification needs torch and transformers' model machinery, seconds of CPU to import. Loaded
here, in the server that forks the workers, they are imported once and shared copy-on-write,
instead of once per worker. Importing starts no thread, so forking afterwards is safe.
"""

from __future__ import annotations

import os

# The offline settings verification uses; the hub client reads them when it is imported.
for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_key, "1")

import torch  # noqa: E402,F401
import transformers.modeling_utils  # noqa: E402,F401
