"""The names of a classification head's outputs: ``id2label`` / ``label2id`` of config.json."""

from __future__ import annotations

from typing import Sequence

from tf2hf.errors import ConfigError

#: The tasks whose head's outputs are labels.
LABELLED_TASKS = ("text-classification", "token-classification")


def label_names(given: Sequence[str] | None, count: int, *, source: str, cls: str, task: str) -> list[str]:
    """The user's names (as many as the head has outputs, none repeated), else ``LABEL_i``: a TF
    checkpoint does not record what its classes mean."""
    if not given:
        return [f"LABEL_{i}" for i in range(count)]
    names = list(given)
    if task not in LABELLED_TASKS:
        raise ConfigError(f"{source}: labels were given, but {cls} has no classification head; leave them out")
    if len(names) != count:
        raise ConfigError(f"{source}: {len(names)} labels given ({', '.join(names)}) but the classifier head has {count} outputs; "
                          f"give {count} labels, in the order of the head's outputs")
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: the labels {', '.join(names)} repeat a name; give {count} different labels")
    return names
