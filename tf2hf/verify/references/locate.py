"""How a reference finds its variables in a checkpoint, by itself.

A reference graph asks for variables by the names the TF code created (``bert/embeddings/...``).
A checkpoint may hold them under a root scope (``module/`` for a TF-Hub module, ``model/`` or
``encoder/`` for a TF2 object checkpoint), with a suffix (TF2's ``/.ATTRIBUTES/VARIABLE_VALUE``),
or with Keras' LayerNorm names. The converter's rename rules read those layouts too; this module
reads them again, its own way, so that a rename that placed the wrong variable is not mirrored
by the reference but shows up as a difference between the two models:

* the root is the prefix before the graph's own anchor names (:class:`Layout`), at any depth
  (``model/layer_with_weights-0/`` for an encoder nested in a TF2 Keras model); a graph whose
  top scope its builder may rename (``AlbertModel(scope="albert")``) declares the other
  spellings, and the anchor found says which one this checkpoint uses;
* a variable beside the root's last object (the Dense layer next to a nested TF2 encoder) is
  read by :meth:`Variables.beside`;
* a LayerNorm is looked for where the graph puts it: the one that follows the dense layer of
  scope ``S`` lives in ``S`` (``S/LayerNorm``, or the single Keras ``S/layer_normalization[_N]``
  there). The Keras counter ``_N`` is never used: it only says in which order layers were built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

#: A name the graph asks for as a LayerNorm variable: ``<scope>/LayerNorm/<gamma|beta>``.
_LAYER_NORM = re.compile(r"(?P<scope>.+)/LayerNorm/(?P<leaf>gamma|beta)")
#: A Keras LayerNormalization variable: ``<scope>/layer_normalization[_N]/<gamma|beta>``.
_KERAS_LAYER_NORM = re.compile(r"(?P<scope>.+)/(?P<layer>layer_normalization(?:_\d+)?)/(?P<leaf>gamma|beta)")


class Missing(KeyError):
    """The graph needs a variable the checkpoint does not have (a ``KeyError``, so that
    probing for an optional variable, as ALBERT's group layout does, sees it as absent)."""


class Ambiguous(LookupError):
    """Several variables of the checkpoint could be the one the graph needs."""


@dataclass(frozen=True)
class Layout:
    """What a reference module declares (as ``LAYOUT``) to find its variables.

    ``anchors``: names (without root) the graph reads from every checkpoint of its family, or
    of which at least one is present; the prefix in front of them is the checkpoint's root
    scope. ``suffix``: what the saver appended to every variable name.
    """

    anchors: tuple[str, ...] = ()
    suffix: str = ""
    #: graph scope -> other spellings a checkpoint may use for it (``{"bert/": ("albert/",)}``).
    scope_spellings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Variables:
    """``get(name)`` over a checkpoint's variables, for a reference graph."""

    def __init__(self, layout: Layout, names: Iterable[str], read: Callable[[str], np.ndarray]):
        self._names = frozenset(names)
        self._read = read
        self.suffix = layout.suffix
        self.root, self._spelling = _find_root(layout, self._names)
        self._keras: dict[tuple[str, str], list[str]] | None = None

    def __call__(self, name: str) -> np.ndarray:
        return self._read(self.where(name))

    def where(self, name: str) -> str:
        """The checkpoint name of the graph's variable ``name``."""
        # A task head built around a TF-Hub module (run_classifier_with_tfhub) is created
        # outside the module's scope: look at the top level when the root does not have it.
        for spelled in (f"{self.root}{self._respelled(name)}{self.suffix}", f"{name}{self.suffix}"):
            if spelled in self._names:
                return spelled
        norm = _LAYER_NORM.fullmatch(name)
        if norm:
            candidates = self._keras_layer_norms().get((norm["scope"], norm["leaf"]), [])
            if len(candidates) > 1:
                raise Ambiguous(f"{len(candidates)} LayerNorms in {norm['scope']} ({', '.join(sorted(candidates))}), where the graph has one")
            if candidates:
                return candidates[0]
        raise Missing(name)

    def beside(self, name: str) -> np.ndarray:
        """A variable of an object beside the root's last one: ``name`` under the root's parent
        (``model/`` for the root ``model/layer_with_weights-0/``)."""
        head = self.root[:-1].rpartition("/")[0]
        spelled = f"{head}/{name}{self.suffix}" if head else f"{name}{self.suffix}"
        if not self.root or spelled not in self._names:
            raise Missing(name)
        return self._read(spelled)

    def _respelled(self, name: str) -> str:
        """``name`` with its top scope as this checkpoint spells it."""
        for scope, spelling in self._spelling.items():
            if name.startswith(scope):
                return spelling + name[len(scope):]
        return name

    def _keras_layer_norms(self) -> dict[tuple[str, str], list[str]]:
        """(scope, gamma|beta) -> the checkpoint's Keras LayerNorm variables in that scope."""
        if self._keras is None:
            self._keras = {}
            for spelled in sorted(self._names):
                name = self._unrooted(spelled)
                match = _KERAS_LAYER_NORM.fullmatch(name) if name is not None else None
                if match:
                    self._keras.setdefault((match["scope"], match["leaf"]), []).append(spelled)
        return self._keras

    def _unrooted(self, spelled: str) -> str | None:
        if not (spelled.startswith(self.root) and spelled.endswith(self.suffix)):
            return None
        return spelled[len(self.root) : len(spelled) - len(self.suffix)]


def find_root(layout: Layout, names: Iterable[str]) -> str:
    """The one prefix (``""`` or ending in ``/``) in front of the layout's anchors; ``""`` when
    no anchor is found (the graph then reports the first variable it misses)."""
    return _find_root(layout, names)[0]


def _find_root(layout: Layout, names: Iterable[str]) -> tuple[str, dict[str, str]]:
    """The root, and the spelling of each renamed top scope the anchor was found under."""
    roots: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    tails: dict[str, tuple[tuple[str, str], ...]] = {}
    for anchor in layout.anchors:
        tails[f"{anchor}{layout.suffix}"] = ()
        for scope, spellings in layout.scope_spellings.items():
            if anchor.startswith(scope):
                for other in spellings:
                    tails[f"{other}{anchor[len(scope):]}{layout.suffix}"] = ((scope, other),)
    ends = tuple(tails)
    for spelled in names:
        if not spelled.endswith(ends):  # one test per name: most names end in no anchor
            continue
        for tail, spelling in tails.items():
            root = spelled[: len(spelled) - len(tail)]
            if spelled.endswith(tail) and (root == "" or root.endswith("/")):
                roots.add((root, spelling))
    if len(roots) > 1:
        shown = ", ".join(repr(r + "".join(o for _, o in s)) for r, s in sorted(roots))
        raise Ambiguous(f"the graph's variables are in the checkpoint under several roots ({shown}): several copies of the model")
    if not roots:
        return "", {}
    root, spelling = roots.pop()
    return root, dict(spelling)


def locate(layout: Layout, names: Iterable[str], read: Callable[[str], np.ndarray]) -> Variables:
    """A ``get`` for a reference's ``forward``, finding its variables among ``names``."""
    return Variables(layout, names, read)
