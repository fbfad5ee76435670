"""Independent NumPy implementations of the source TF1 graphs, used to verify conversions.

Each family module exposes::

    forward(get, config, inputs, *, gelu, heads) -> dict[str, np.ndarray]

``get(tf_name)`` returns a checkpoint variable by its TF name (any ``module/`` prefix already
stripped) and raises ``KeyError`` for a name the checkpoint lacks (ALBERT's group layout is
found by probing names). ``config`` is the TF config dict; sizes that variable shapes
determine are taken from the shapes. ``inputs`` holds ``input_ids``, ``input_mask`` and
``token_type_ids`` ``[B, S]`` and, for the MLM head, ``positions`` ``[B, K]``. ``gelu`` names
the activation the checkpoint's code used: ``"erf"``, ``"tanh"`` (the formula every upstream
TF codebase computes since 2019) or ``"relu"``; it applies to the FFN and the MLM transform.
``heads`` selects outputs among ``pooler``, ``mlm``, ``nsp``, ``sop``, ``classifier`` and
``squad``; ``sequence_output`` is always returned. All results are float64.
"""

from __future__ import annotations

from tf2hf.verify.references import albert, bert, brightmart

#: Family name -> module with a ``forward`` function.
FAMILIES = {"google_bert": bert, "google_albert": albert, "brightmart": brightmart}

__all__ = ["FAMILIES", "albert", "bert", "brightmart"]
