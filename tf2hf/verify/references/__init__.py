"""Independent NumPy implementations of the source TF graphs, used to verify conversions.

Each family module exposes::

    forward(get, config, inputs, *, gelu, heads) -> dict[str, np.ndarray]
    LAYOUT: locate.Layout

``get(tf_name)`` returns a checkpoint variable by the name the TF code created (no root scope
such as ``module/``, no saver suffix) and raises ``KeyError`` for a name the checkpoint lacks
(ALBERT's group layout is found by probing names). During a conversion ``get`` comes from
:func:`locate.locate`, which finds those names in the checkpoint from the module's ``LAYOUT``
by itself, never through the converter's renames. ``config`` is the TF config dict; sizes that
variable shapes determine are taken from the shapes. ``inputs`` holds ``input_ids``,
``input_mask`` and ``token_type_ids`` ``[B, S]`` and, for the MLM head, ``positions``
``[B, K]``. ``gelu`` names the activation the checkpoint's code used: ``"erf"``, ``"tanh"``
(the formula every upstream TF codebase computes since 2019) or ``"relu"``; it applies to the
FFN and the MLM transform. ``heads`` selects outputs among ``pooler``, ``mlm``, ``nsp``,
``sop``, ``classifier`` and ``squad``; ``sequence_output`` is always returned. All results are
float64.

The modules they are built from: :mod:`.numerics` (erf, activations, softmax, layer norm),
:mod:`.weights` (reading variables and config), :mod:`.blocks` (embeddings, attention, the
post-LN block), :mod:`.heads` (pooler, MLM, sentence pair, classifier, squad) and
:mod:`.locate` (finding the variables in a checkpoint).
"""

from __future__ import annotations

from types import ModuleType

from tf2hf.verify.references import albert, bert, brightmart, electra, tf2_bert
from tf2hf.verify.references.locate import Layout

#: Family name -> module with a ``forward`` function.
FAMILIES = {"google_bert": bert, "google_albert": albert, "brightmart": brightmart}

_BUILT_IN = (bert, albert, brightmart, electra, tf2_bert)


def layout_of(module: ModuleType) -> Layout:
    """The module's ``LAYOUT``. A plugin's graph that declares none is most likely one of these
    with a head added, so its root is looked for by their anchors."""
    declared = getattr(module, "LAYOUT", None)
    if declared is not None:
        return declared
    anchors = dict.fromkeys(a for m in _BUILT_IN if not m.LAYOUT.suffix for a in m.LAYOUT.anchors)
    return Layout(anchors=tuple(anchors))


__all__ = ["FAMILIES", "Layout", "albert", "bert", "brightmart", "electra", "layout_of", "tf2_bert"]
