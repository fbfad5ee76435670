"""The training graph beside a checkpoint (``P.meta``, a ``MetaGraphDef``), read without protobuf.

Only what tf2hf asks of a graph is decoded (field numbers from tensorflow/core/protobuf/
meta_graph.proto and tensorflow/core/framework/{graph,node_def,attr_value,tensor,
tensor_shape}.proto):

    MetaGraphDef     { GraphDef graph_def = 2; }               (meta_info_def, saver_def … skipped)
    GraphDef         { repeated NodeDef node = 1; }            (versions, library … skipped)
    NodeDef          { string name = 1; string op = 2; repeated string input = 3;
                       string device = 4; map<string, AttrValue> attr = 5; }
    AttrValue        { ListValue list = 1; bytes s = 2; int64 i = 3; float f = 4; bool b = 5;
                       DataType type = 6; TensorShapeProto shape = 7; TensorProto tensor = 8; }
    ListValue        { repeated bytes s = 2; int64 i = 3 [packed]; float f = 4 [packed];
                       bool b = 5 [packed]; DataType type = 6 [packed]; shape = 7; tensor = 8; }
    TensorProto      { DataType dtype = 1; TensorShapeProto tensor_shape = 2;
                       bytes tensor_content = 4; float_val = 5; double_val = 6; int_val = 7;
                       bytes string_val = 8; int64_val = 10; bool_val = 11; }
    TensorShapeProto { repeated Dim dim = 2 (Dim { int64 size = 1; }); bool unknown_rank = 3; }

Bounded like the index reader: the file's size is checked before it is read, every length
before it is used (``bundle.iter_fields``), and nesting is fixed by the message types above
(nothing recursive is followed: ``func`` attributes and the function library are skipped).
A graph is split into nodes in one pass that reads only each node's name; a node's other
fields and its attributes are decoded when asked for, so a large graph costs little more than
finding its node boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf2hf.errors import CheckpointFormatError
from tf2hf.sources import open_regular
from tf2hf.tfckpt.bundle import iter_fields
from tf2hf.tfckpt.graph_values import MAX_CONST_VALUES, Tensor, attr_value
from tf2hf.tfckpt.sstable import MalformedIndexError, read_varint

#: Larger than any BERT-family training graph (BERT-large's with Adam is ~20 MB); a file past
#: it is not read.
MAX_META_BYTES = 1 << 30

_LENGTH_DELIMITED = 2


class GraphFormatError(CheckpointFormatError):
    """The bytes of a ``.meta`` file are not a ``MetaGraphDef`` this reader can decode."""


@dataclass(frozen=True)
class Node:
    """A ``NodeDef``: attributes stay encoded until :meth:`attr` asks for one."""

    name: str
    op: str
    inputs: tuple[str, ...]
    raw_attrs: dict[str, bytes]
    path: str = ""  # the graph's file, named by errors

    def attr(self, key: str) -> Any:
        """The decoded ``AttrValue`` (int, float, bool, bytes, dtype name, shape, :class:`Tensor`,
        or a list of these), ``None`` when the node has no such attribute."""
        raw = self.raw_attrs.get(key)
        return None if raw is None else _guard(lambda: attr_value(raw), self.path)


class Graph:
    """The nodes of a ``GraphDef``, found by name; each decoded on first use."""

    def __init__(self, data: bytes, spans: dict[bytes, tuple[int, int]], path: str = ""):
        self._data = data
        self._spans = spans  # by the name's bytes: decoded only when listed
        self._decoded: dict[str, Node] = {}
        self.path = path

    def __len__(self) -> int:
        return len(self._spans)

    def names(self) -> list[str]:
        try:
            return [raw.decode("utf-8") for raw in self._spans]
        except UnicodeDecodeError:
            raise GraphFormatError(f"{self.path}: a node name is not valid UTF-8; move the .meta file away to convert without it") from None

    def span(self, name: str) -> tuple[int, int]:
        """Where the node's bytes lie in the file (for tools that copy nodes)."""
        return self._spans[name.encode("utf-8")]

    def node(self, name: str) -> Node | None:
        """The node called ``name`` (a ``name:0`` or ``^name`` input reference is accepted)."""
        name = name.lstrip("^").split(":", 1)[0]
        found = self._decoded.get(name)
        key = name.encode("utf-8")
        if found is None and key in self._spans:
            start, end = self._spans[key]
            found = self._decoded[name] = _guard(lambda: _node(self._data[start:end], self.path), self.path)
        return found

    def nodes(self, names) -> list[Node]:
        return [node for node in (self.node(n) for n in names) if node is not None]


def read_graph(path: str | Path) -> Graph:
    """The graph of the ``MetaGraphDef`` at ``path``; a malformed file is a :class:`GraphFormatError`
    naming it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_META_BYTES:
            raise GraphFormatError(f"{path}: {size} bytes is too large for a training graph (limit {MAX_META_BYTES}); move it away to convert without it")
        with open_regular(path, GraphFormatError, "the training graph") as handle:  # a FIFO would block
            data = handle.read(MAX_META_BYTES + 1)
    except OSError as exc:
        raise GraphFormatError(f"{path}: cannot read the training graph ({exc.strerror}); make it readable or move it away") from None
    if len(data) > MAX_META_BYTES:
        raise GraphFormatError(f"{path}: more than {MAX_META_BYTES} bytes, too large for a training graph; move it away to convert without it")
    return parse_graph(data, str(path))


def parse_graph(data: bytes, label: str = "training graph") -> Graph:
    """:func:`read_graph` on bytes already read; ``label`` names them in errors."""
    return _guard(lambda: Graph(*_graph_def(data), label), label)


def _guard(work, label: str):
    try:
        return work()
    except MalformedIndexError as exc:
        raise GraphFormatError(f"{label}: not a readable TensorFlow MetaGraphDef ({exc}); move the .meta file away to convert without it") from None


def _spans(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field, wire, value_start, value_end)`` of each length-delimited field in
    ``data[start:end]``, without copying; other fields are stepped over."""
    pos = start
    while pos < end:
        tag, pos = read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise MalformedIndexError("invalid protobuf field number 0")
        if wire == 0:
            _, pos = read_varint(data, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise MalformedIndexError("a fixed-width protobuf field runs past its message")
        elif wire == _LENGTH_DELIMITED:
            length, pos = read_varint(data, pos, end)
            if pos + length > end:
                raise MalformedIndexError("a length-delimited protobuf field runs past its message")
            yield field, wire, pos, pos + length
            pos += length
        else:
            raise MalformedIndexError(f"unsupported protobuf wire type {wire}")


def _graph_def(data: bytes) -> tuple[bytes, dict[bytes, tuple[int, int]]]:
    spans: dict[bytes, tuple[int, int]] = {}
    for field, _, start, end in _spans(data, 0, len(data)):
        if field == 2:  # MetaGraphDef.graph_def
            _split_nodes(data, start, end, spans)
    return data, spans


def _split_nodes(data: bytes, start: int, end: int, spans: dict[bytes, tuple[int, int]]) -> None:
    """Record every ``GraphDef.node`` by name. The loop is written out for the common case (a
    node tag, then its name first, as protobuf serialises fields in number order): it is the
    only part of reading that visits every node."""
    pos = start
    while pos < end:
        if data[pos] != 0x0A:  # not field 1 (node), length-delimited: versions, library …
            pos = _field_end(data, pos, end)
            continue
        # Varints of one or two bytes (every name, most nodes) decoded in line: this loop is
        # the only part of reading that visits every node.
        if pos + 3 > end:
            raise MalformedIndexError("a node runs past the end of its graph")
        first = data[pos + 1]
        if first < 0x80:
            length, pos = first, pos + 2
        elif data[pos + 2] < 0x80:
            length, pos = (first & 0x7F) | data[pos + 2] << 7, pos + 3
        else:
            length, pos = read_varint(data, pos + 1, end)
        node_end = pos + length
        if node_end > end:
            raise MalformedIndexError("a length-delimited protobuf field runs past its message")
        name_end = pos + 2 + data[pos + 1] if pos + 1 < node_end and data[pos] == 0x0A and data[pos + 1] < 0x80 else 0
        if 0 < name_end <= node_end:
            name = data[pos + 2 : name_end]
        else:
            name = _node_name(data, pos, node_end)
        spans[name] = (pos, node_end)
        pos = node_end


def _field_end(data: bytes, pos: int, end: int) -> int:
    """Where the one field starting at ``pos`` ends."""
    tag, after = read_varint(data, pos, end)
    wire = tag & 7
    if wire == 0:
        return read_varint(data, after, end)[1]
    if wire in (1, 5):
        stop = after + (8 if wire == 1 else 4)
    elif wire == _LENGTH_DELIMITED:
        length, after = read_varint(data, after, end)
        stop = after + length
    else:
        raise MalformedIndexError(f"unsupported protobuf wire type {wire}")
    if stop > end:
        raise MalformedIndexError("a protobuf field runs past its message")
    return stop


def _node_name(data: bytes, start: int, end: int) -> bytes:
    for field, _, vstart, vend in _spans(data, start, end):
        if field == 1:
            return data[vstart:vend]  # the name is written first; the rest waits until asked for
    return b""


def _node(data: bytes, path: str) -> Node:
    name = op = ""
    inputs: list[str] = []
    attrs: dict[str, bytes] = {}
    for field, wire, value in iter_fields(data):
        if field in (1, 2, 3) and wire == _LENGTH_DELIMITED:
            text = _text(value, "node field")
            if field == 1:
                name = text
            elif field == 2:
                op = text
            else:
                inputs.append(text)
        elif field == 5 and wire == _LENGTH_DELIMITED:
            key, raw = "", b""
            for efield, ewire, evalue in iter_fields(value):
                if efield == 1 and ewire == _LENGTH_DELIMITED:
                    key = _text(evalue, "attribute name")
                elif efield == 2 and ewire == _LENGTH_DELIMITED:
                    raw = evalue
            attrs[key] = raw
    return Node(name, op, tuple(inputs), attrs, path)


def _text(value, what: str) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedIndexError(f"a {what} is not valid UTF-8") from None
