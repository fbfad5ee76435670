"""Keep the Hugging Face libraries off the network while tf2hf loads what it wrote.

Verification loads the converted folder with transformers; nothing in it needs the hub, and a
conversion must work (and not wait on time-outs) without a network. The hub client reads these
variables when it is imported, so they are set before transformers is; a value the user set wins.
"""

from __future__ import annotations

import os

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "HF_DATASETS_OFFLINE")


def work_offline() -> None:
    """Set every variable of :data:`OFFLINE_VARIABLES` to ``1`` unless it is set already."""
    for key in OFFLINE_VARIABLES:
        os.environ.setdefault(key, "1")
