"""Settings for every test, whichever modules it imports: no test may reach the network."""

from __future__ import annotations

import os

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}

# Set at import, before any test module (and so transformers or huggingface_hub) is imported.
os.environ.update(OFFLINE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
