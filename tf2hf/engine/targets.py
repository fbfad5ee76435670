"""Step 4 of planning, the class written: from the parts present and the task asked for.

``auto`` takes the class the source config's ``architectures`` names, when a target declares
that name (classes whose weights are the same differ only there); otherwise the class whose
parts are exactly those present; when the checkpoint holds more
heads than one class takes, the task head wins and the rest is left out and reported; a head
that only a named task takes (one Dense layer that may be a span head or a classifier) is not
guessed: ``auto`` refuses and names those tasks. A named task (``--task``) takes that task's
class whatever else is present. The task names are those of
transformers pipelines (:data:`~tf2hf.engine.table.TASKS`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from tf2hf.engine.table import Family, Target
from tf2hf.errors import MappingError

# When a checkpoint holds more heads than one class takes (a run_classifier fine-tune that kept
# its trained MLM head is real), the task head wins over pre-training heads.
TASK_PREFERENCE = ("text-classification", "question-answering", "token-classification", "pretraining", "fill-mask", "feature-extraction")


def choose_target(family: Family, present: set[str], source: str, task: str | None = None,
                  architectures: Sequence[str] = ()) -> tuple[Target, dict[str, str]]:
    """The class to write and the present parts it leaves out (part → why).

    ``task`` ``None``/``"auto"``: the class whose :attr:`~Target.architectures` the config's
    ``architectures`` name; else the first class that takes exactly the parts present (its
    ``discards`` aside); failing that, the preferred task among the classes whose parts are
    all present, the rest left out. A named task: that task's first class whose parts are all
    present."""
    if task in (None, "auto"):
        named = _named_by_config(family, present, architectures, source)
        if named is not None:
            return named, {}
        _refuse_unrecorded_task(family, present, source)
        for target in family.targets:
            if target.auto and target.parts <= present and present - target.parts <= set(target.discards):
                return target, {}
        fitting = [t for t in family.targets if t.auto and t.task and t.parts <= present]
        if fitting:
            best = min(fitting, key=lambda t: (_preference(t.task), -len(t.parts)))
            return best, _left_out(family, best, present, "the task head wins")
        labels = ", ".join(family.part(p).label or p for p in sorted(present))
        raise MappingError(
            f"{source}: no transformers class takes this combination of parts: {labels}; "
            f"supported: {'; '.join(t.cls + ' (' + ', '.join(sorted(t.parts)) + ')' for t in family.targets)}"
        )
    for target in family.targets:
        if target.task == task and target.parts <= present:
            return target, _left_out(family, target, present, f"task {task}")
    servable = servable_tasks(family, present)
    wanted = [t for t in family.targets if t.task == task]
    if not wanted:
        lacks = f"{family.name} checkpoints have no {task} class"
    else:
        missing = sorted(wanted[0].parts - present)
        lacks = f"it has no {', '.join(family.part(p).label or p for p in missing)} for {wanted[0].cls}"
    raise MappingError(f"{source}: cannot serve task {task}: {lacks}; tasks it can serve: {', '.join(servable) or 'none'}")


def _named_by_config(family: Family, present: set[str], architectures: Sequence[str], source: str) -> Target | None:
    """The target the config's ``architectures`` names, if any declares one of them. Its parts
    must be exactly those present: a config naming a class whose heads the checkpoint does not
    hold describes other weights, and writing another class would mislabel these."""
    named = [t for t in family.targets if set(t.architectures) & set(architectures)]
    for target in named:
        if target.parts <= present and present - target.parts <= set(target.discards):
            return target
    if not named:
        return None
    labels = ", ".join(dict.fromkeys(family.part(p).label or p for p in sorted(present)))  # one Dense, two readings: once
    raise MappingError(
        f"{source}: the config's architectures name {named[0].cls}, but the checkpoint holds {labels}, "
        f"not the parts of {named[0].cls} ({', '.join(sorted(named[0].parts))}); pass the config saved with these weights, or choose a --task"
    )


def servable_tasks(family: Family, present: set[str]) -> list[str]:
    """The tasks some class of the family serves with the parts present, preferred first."""
    return sorted({t.task for t in family.targets if t.task and t.parts <= present}, key=_preference)


def _refuse_unrecorded_task(family: Family, present: set[str], source: str) -> None:
    """A head only explicit tasks take (a bare Dense layer beside a TF2 encoder: a span head, a
    sequence or a per-token classifier store the same kernel) is not guessed: ``auto`` refuses,
    naming the tasks that would write it."""
    heads = [p for p in sorted(present) if p not in family.base_parts
             and not any(p in t.parts or p in t.discards for t in family.targets if t.auto)
             and not (family.part(p).when_absent or family.part(p).optional)]
    tasks = [t for t in servable_tasks(family, present) if any(h in u.parts for h in heads for u in family.targets if u.task == t)]
    if not heads or not tasks:  # no class could write it: the plan lists its variables as unknown
        return
    labels = " and ".join(dict.fromkeys(family.part(h).label or h for h in heads))
    raise MappingError(
        f"{source}: the checkpoint has a {labels}, and nothing in it records which task it was trained for; "
        f"choose one with {', '.join(f'--task {t}' for t in tasks[:-1])}{' or ' if len(tasks) > 1 else ''}--task {tasks[-1]}, "
        "or --task feature-extraction to convert the encoder without it"
    )


def _preference(task: str) -> int:
    return TASK_PREFERENCE.index(task) if task in TASK_PREFERENCE else len(TASK_PREFERENCE)


def _left_out(family: Family, target: Target, present: set[str], why: str) -> dict[str, str]:
    """The present parts the class does not take and has no discard reason for."""
    extra = present - target.parts - set(target.discards)
    # Parts that are always "present" (substituted or optional) are not heads being left out.
    return {p: f"left out ({why}: {target.cls} has no place for it)" for p in sorted(extra)
            if not (family.part(p).when_absent or family.part(p).optional)}


def task_notes(family: Family, target: Target, present: set[str], left_out: Mapping[str, str]) -> list[str]:
    """What the choice of class left out, and the per-token alternative to a sequence head."""
    notes = [f"left out: {family.part(p).label or p} — {why}; its variables are listed as discarded" for p, why in left_out.items()]
    # A part the class has no place for by design (a masked-LM class and the TF pooler) is said
    # once too, so that nobody wonders where its weights went.
    notes += [f"not used: {family.part(p).label or p} — {why}; its variables are listed as discarded"
              for p, why in target.discards.items() if p in present and p not in left_out and _unused(family, target, p)]
    per_token = [t for t in family.targets if not t.auto and t.task == "token-classification" and t.parts <= present]
    if target.auto and target.task == "text-classification" and per_token:
        notes.append(
            f"the classifier head is written as {target.cls} (applied to the pooled output); if it was trained "
            f"per token (tagging, NER, word segmentation), convert with --task token-classification ({per_token[0].cls})"
        )
    return list(dict.fromkeys(notes))  # parts that are one layer read two ways share a label


def _unused(family: Family, target: Target, name: str) -> bool:
    """A real part of the checkpoint (not one always 'present': substituted or optional) whose
    variables the class does not read through another part (one Dense layer, two readings)."""
    part = family.part(name)
    read = {s for p in family.parts if p.name in target.parts for r in p.rules for s in r.sources}
    return not (part.when_absent or part.optional) and part.marker not in read
