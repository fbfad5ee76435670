"""Read Keras HDF5 weight files (transformers' ``tf_model.h5``) without TensorFlow.

:func:`open_h5` presents an ``.h5`` file as the same interface as
:class:`~tf2hf.tfckpt.reader.Checkpoint`: ``variables`` (name → :class:`TensorInfo`, from the
file's metadata alone), ``read(name)`` (one dataset at a time), ``files``, ``prefix`` and
``shard_paths``, so that planning, shard checks, streaming and verification need no change.

A variable's name is the TF variable name Keras recorded for it: a Keras weights file keeps each
layer's weights in the layer's group, listed by the group's ``weight_names`` attribute
(``bert`` → ``tf_bert_for_sequence_classification/bert/embeddings/word_embeddings/weight:0``, stored
at ``bert/tf_bert_…/bert/embeddings/…``). A weight that two layers share (transformers' masked-LM
head holds the input embeddings it decodes with) is stored once per layer under one variable name;
it is one variable here, and :meth:`read` checks that its copies are equal. Datasets no
``weight_names`` lists (an HDF5 file not written by Keras) keep their path as their name. The
family tables read these spellings; nothing else is renamed here.

What the file claims is checked before anything is sized from it, as the index reader does:
the HDF5 signature; every link is a hard link (an external link would make reading this file
read another one, and a soft link could alias a weight); no dataset keeps its data in external
files or is virtual; every declared shape is bounded, and a contiguous dataset's bytes lie inside
the file (so a truncated file is named before anything is written); a dataset whose data was never
written (HDF5 would return zeros) is refused; a chunked dataset stores at least what it declares
or, compressed, no less than 1/:data:`MAX_EXPANSION` of it. dtypes are checked when a dataset is
read: only floating-point datasets are weights.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import TracebackType

import numpy as np

from tf2hf.errors import CheckpointFormatError, CheckpointNotFoundError, ShortShardError, UnsupportedDtypeError
from tf2hf.tfckpt.index import TensorInfo

#: transformers' file name (``TF2_WEIGHTS_NAME``) in a ``save_pretrained`` folder.
H5_NAME = "tf_model.h5"
H5_SUFFIXES = (".h5", ".hdf5", ".keras.h5")
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Any one dataset: 2**34 elements (64 GiB of float32) is far beyond any BERT-family tensor.
MAX_ELEMENTS = 1 << 34
#: A chunked dataset's declared bytes may exceed what it stores by at most this factor (Keras
#: never compresses weights; a larger ratio is a decompression bomb, not a model).
MAX_EXPANSION = 1024
MAX_DATASETS = 1 << 16
_KINDS = {"f": "float", "i": "int", "u": "uint", "b": "bool"}


def is_h5_source(path: Path) -> bool:
    """A path that names an HDF5 weights file: a ``.h5`` file, or a folder with ``tf_model.h5``
    and no TF checkpoint of its own."""
    if path.is_dir():
        return (path / H5_NAME).is_file() and not any(path.glob("*.index"))
    return path.suffix in H5_SUFFIXES or path.name.endswith(H5_SUFFIXES)


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.kind in _KINDS and dtype.fields is None and dtype.subdtype is None:
        return "bool" if dtype.kind == "b" else f"{_KINDS[dtype.kind]}{dtype.itemsize * 8}"
    return f"unsupported({dtype.str})"


class H5Weights:
    """An opened HDF5 weights file: its datasets as variables, and :meth:`read` for one."""

    def __init__(self, path: Path) -> None:
        import h5py  # a runtime dependency, imported only when an .h5 source is opened

        self.prefix = path
        self.index_path = path
        self.shard_paths = [path]
        self.files = [path]
        self._size = path.stat().st_size
        try:
            self._file = h5py.File(path, "r", locking=False)
        except OSError as exc:
            raise CheckpointFormatError(
                f"{path}: not a readable HDF5 file ({_first_line(exc)}); the file is truncated or damaged, copy it again"
            ) from None
        self._h5py = h5py
        self._datasets: dict[str, object] = {}
        self.variables: dict[str, TensorInfo] = {}
        self._copies: dict[str, list[str]] = {}
        try:
            self._walk(self._file, "")
            self._name_by_keras()
        except BaseException:
            self._file.close()
            raise

    def __repr__(self) -> str:
        return f"H5Weights({str(self.prefix)!r}, {len(self.variables)} variables)"

    def __enter__(self) -> H5Weights:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _walk(self, group, path: str) -> None:
        h5py = self._h5py
        try:
            names = list(group.keys())
        except (OSError, RuntimeError, KeyError) as exc:
            raise self._damaged(path or "/", exc) from None
        for key in names:
            name = f"{path}{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise CheckpointFormatError(
                    f"{self.prefix}: '{name}' is an external link to {link.filename}:{link.path}; tf2hf reads only "
                    "weights stored in the file itself — re-save the model with save_pretrained or save_weights"
                )
            if not isinstance(link, h5py.HardLink):
                raise CheckpointFormatError(
                    f"{self.prefix}: '{name}' is a {type(link).__name__}, not a stored group or dataset; "
                    "re-save the model with save_pretrained or save_weights"
                )
            try:
                item = group[key]
            except (OSError, RuntimeError, KeyError) as exc:
                raise self._damaged(name, exc) from None
            if isinstance(item, h5py.Group):
                self._walk(item, name + "/")
            elif isinstance(item, h5py.Dataset):
                self._add(name, item)

    def _add(self, name: str, dataset) -> None:
        if len(self.variables) >= MAX_DATASETS:
            raise CheckpointFormatError(f"{self.prefix}: more than {MAX_DATASETS} datasets; this is not a model's weights file")
        if dataset.is_virtual or dataset.external:
            raise CheckpointFormatError(
                f"{self.prefix}: dataset '{name}' keeps its data outside the file ({'virtual' if dataset.is_virtual else 'external storage'}); "
                "re-save the model with save_pretrained or save_weights"
            )
        shape = tuple(int(n) for n in (dataset.shape or ()))
        numel = math.prod(shape)
        if numel > MAX_ELEMENTS:
            raise CheckpointFormatError(
                f"{self.prefix}: dataset '{name}' declares shape {list(shape)} ({numel} elements), more than any "
                "model weight; the file is damaged or not a weights file"
            )
        nbytes = numel * dataset.dtype.itemsize
        h5d = self._h5py.h5d
        plist = dataset.id.get_create_plist()
        layout = plist.get_layout()
        offset = dataset.id.get_offset() if layout == h5d.CONTIGUOUS else None
        stored = dataset.id.get_storage_size()
        if nbytes and layout != h5d.COMPACT and not stored:
            # HDF5 would read its fill value (zeros) for data never written: a weight it is not.
            raise CheckpointFormatError(
                f"{self.prefix}: dataset '{name}' declares shape {list(shape)} but no data is stored for it; "
                "the file is damaged or was never completely written, re-save the model"
            )
        if offset is not None and offset + nbytes > self._size:
            raise ShortShardError(
                f"{self.prefix}: HDF5 file is truncated ({self._size} bytes, but dataset '{name}' needs bytes "
                f"{offset} to {offset + nbytes}); copy the file again"
            )
        if layout == h5d.CHUNKED:
            unfiltered = plist.get_nfilters() == 0
            if (unfiltered and stored < nbytes) or nbytes > MAX_EXPANSION * stored + (1 << 20):
                raise CheckpointFormatError(
                    f"{self.prefix}: dataset '{name}' declares {nbytes} bytes but stores {stored}; "
                    "the file is damaged or not a weights file"
                )
        # Contiguous data: its place in the file, so shard checks see a truncated file.
        # Chunked or compact data has no single extent; size 0 leaves it to read().
        self.variables[name] = TensorInfo(
            name=name, dtype=_dtype_name(dataset.dtype), shape=shape, shard=0,
            offset=offset or 0, size=nbytes if offset is not None else 0, crc32c=0,
        )
        self._datasets[name] = dataset

    def _name_by_keras(self) -> None:
        """Rename each dataset of a Keras file to the variable name its layer records."""
        layers = _string_list(self._file.attrs, "layer_names")
        if not layers:
            return
        by_path, renamed = dict(self.variables), {}
        for layer in layers:
            group = self._file.get(layer) if layer in self._file else None
            if group is None or not isinstance(group, self._h5py.Group):
                raise CheckpointFormatError(f"{self.prefix}: layer '{layer}' is listed in layer_names but not stored; the file is damaged, copy it again")
            for weight in _string_list(group.attrs, "weight_names"):
                path = f"{layer}/{weight}"
                info = by_path.pop(path, None)
                if info is None:
                    raise CheckpointFormatError(f"{self.prefix}: layer '{layer}' lists weight '{weight}', which is not stored; the file is damaged, copy it again")
                if weight in renamed:
                    if renamed[weight].shape != info.shape or renamed[weight].dtype != info.dtype:
                        raise CheckpointFormatError(
                            f"{self.prefix}: weight '{weight}' is stored twice with different shapes or dtypes "
                            f"({self._copies[weight][0]}, {path}); the file is damaged or holds two models"
                        )
                    self._copies[weight].append(path)
                    continue
                renamed[weight] = TensorInfo(weight, info.dtype, info.shape, info.shard, info.offset, info.size, info.crc32c)
                self._copies[weight] = [path]
        for path, info in by_path.items():  # stored but listed by no layer: kept by path
            renamed.setdefault(path, info)
            self._copies.setdefault(path, [path])
        self.variables = renamed

    def _damaged(self, name: str, exc: BaseException) -> CheckpointFormatError:
        return CheckpointFormatError(f"{self.prefix}: cannot read '{name}' ({_first_line(exc)}); the file is damaged, copy it again")

    def read(self, name: str) -> np.ndarray:
        """Return dataset ``name`` as a C-contiguous array in native byte order."""
        info = self.variables[name]
        if not info.dtype.startswith("float"):
            # Keras saves every weight as a float; an int or string dataset where a weight is
            # expected is a damaged or edited file, and casting it would hide that.
            raise UnsupportedDtypeError(
                f"{self.prefix}: dataset '{name}' has dtype {info.dtype}, but weights are floating-point; "
                "the file is damaged or not this model's weights, re-save the model"
            )
        paths = self._copies.get(name, [name])
        array = self._read_path(paths[0], info)
        for other in paths[1:]:
            # The same variable saved by two layers: equal unless the file was edited.
            if not np.array_equal(self._read_path(other, info), array):
                raise CheckpointFormatError(
                    f"{self.prefix}: weight '{name}' is stored twice ({paths[0]}, {other}) with different values; "
                    "the file was edited or is damaged, re-save the model"
                )
        return array

    def _read_path(self, path: str, info: TensorInfo) -> np.ndarray:
        try:
            array = np.asarray(self._datasets[path][()])
        except (OSError, RuntimeError, ValueError) as exc:
            raise self._damaged(path, exc) from None
        if array.shape != info.shape:
            raise self._damaged(path, ValueError(f"read shape {list(array.shape)}, declared {list(info.shape)}"))
        return np.ascontiguousarray(array.astype(array.dtype.newbyteorder("="), copy=False))


def _string_list(attrs, key: str) -> list[str]:
    """A Keras string-list attribute, which Keras splits into ``key0``, ``key1``, … when long."""
    if key in attrs:
        parts = [attrs[key]]
    else:
        parts, n = [], 0
        while f"{key}{n}" in attrs and n < MAX_DATASETS:
            parts.append(attrs[f"{key}{n}"])
            n += 1
    out = []
    for part in parts:
        for item in np.atleast_1d(np.asarray(part)):
            if isinstance(item, bytes):
                out.append(item.decode("utf-8", "replace"))
            elif isinstance(item, str):
                out.append(item)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def open_h5(path: str | os.PathLike[str]) -> H5Weights:
    """Open an ``.h5`` weights file, or the ``tf_model.h5`` of a ``save_pretrained`` folder."""
    given = Path(os.path.abspath(Path(path).expanduser()))
    file = given / H5_NAME if given.is_dir() else given
    if not file.is_file():
        raise CheckpointNotFoundError(f"{file}: no such file; pass the folder save_pretrained wrote or its {H5_NAME}")
    with open(file, "rb") as handle:
        head = handle.read(len(_SIGNATURE))
    if head != _SIGNATURE:
        raise CheckpointFormatError(
            f"{file}: not an HDF5 file (no HDF5 signature at its start); pass the tf_model.h5 that save_pretrained or save_weights wrote"
        )
    return H5Weights(file)
