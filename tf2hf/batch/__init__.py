"""Many checkpoints at once: zoo discovery, per-entry jobs, executors, progress and reports."""
