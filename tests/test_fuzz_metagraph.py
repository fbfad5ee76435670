"""Fuzzing the training-graph reader: whatever the bytes, only its typed error comes out.

Property-based (hypothesis) tests of :mod:`tf2hf.tfckpt.metagraph` (and the attribute decoding
of :mod:`tf2hf.tfckpt.graph_values`) on random bytes, random protobuf-shaped messages, and real
``.meta`` files (the shared upstream graphs and the fixtures') mutated by bit flips,
truncation, insertion, deletion and splices. Every graph that parses is read in full: every
node decoded, every attribute, and the graph facts a conversion asks for. The only exception
allowed is :class:`~tf2hf.tfckpt.metagraph.GraphFormatError` (a
:class:`~tf2hf.errors.CheckpointFormatError`), or the ``ConfigError`` of an activation tf2hf
does not know; anything else would reach the user as a crash.

Like tests/test_fuzz.py: a deterministic CI-sized run, and a long randomised run marked
``fuzz`` (``TF2HF_FUZZ_EXAMPLES`` per property). The number of cases is printed at the end.
"""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st

from fuzzing import Fuzzing
from support import FIXTURES, SHARED
from tf2hf.engine.graph_facts import facts_of
from tf2hf.engine.registry import get_family
from tf2hf.errors import ConfigError
from tf2hf.tfckpt.metagraph import GraphFormatError, parse_graph

# Graph bytes trip more of hypothesis's health checks (large, filtered data) than indexes do.
FUZZ = Fuzzing("fuzz (training graph)", suppress=list(HealthCheck))
twice = FUZZ.twice
report = FUZZ.report_fixture()


def _small_graphs() -> list[bytes]:
    """Real graphs small enough to mutate quickly (a few hundred KB)."""
    paths = [FIXTURES / "electra_untied" / "model.ckpt-5.meta", SHARED / "upstream" / "bert_pre" / "model.ckpt.meta",
             SHARED / "real-index" / "marsroger-albert_tiny_zh" / "albert_model.ckpt.meta"]
    return [p.read_bytes() for p in paths if p.exists()]


GRAPHS = _small_graphs()
PROBES = [f.graph for f in (get_family("bert"), get_family("albert"), get_family("albert_zh"), get_family("electra")) if f.graph]


def read_everything(data: bytes) -> None:
    try:
        graph = parse_graph(data, "fuzzed.meta")
        for name in graph.names():
            node = graph.node(name)
            for key in node.raw_attrs:
                node.attr(key)
        for probe in PROBES:
            facts_of(graph, probe, None)
    except GraphFormatError as exc:
        assert str(exc).startswith("fuzzed.meta: ")
    except ConfigError as exc:
        assert "computes none of the activations" in str(exc)


def _mutate(data: bytes, kind: int, at: int, size: int, byte: int) -> bytes:
    at %= max(len(data), 1)
    if kind == 0:
        return data[:at] + bytes([data[at] ^ (1 << (byte % 8))]) + data[at + 1:] if data else data
    if kind == 1:
        return data[:at]
    if kind == 2:
        return data[:at] + bytes([byte]) * (size % 16 + 1) + data[at:]
    if kind == 3:
        return data[:at] + data[at + size % 64 + 1:]
    other = GRAPHS[byte % len(GRAPHS)]
    return data[:at] + other[size % max(len(other), 1):][: 256] + data[at:]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


# A protobuf-shaped message: (field, wire, payload) triples, nested through length-delimited ones.
_FIELD = st.tuples(st.integers(1, 12), st.sampled_from([0, 1, 2, 5]), st.binary(max_size=24))


def _message(fields) -> bytes:
    out = bytearray()
    for field, wire, payload in fields:
        out += _varint(field << 3 | wire)
        if wire == 0:
            out += _varint(int.from_bytes(payload[:9] or b"\0", "little"))
        elif wire in (1, 5):
            out += (payload + bytes(8))[: 8 if wire == 1 else 4]
        else:
            out += _varint(len(payload)) + payload
    return bytes(out)




def check_random_bytes(data):
    read_everything(data)


test_random_bytes, test_random_bytes_long = twice(data=st.binary(max_size=512))(check_random_bytes)


def check_shaped_graph(nodes):
    """MetaGraphDef { graph_def { node* } } with random NodeDef and AttrValue-shaped contents."""
    graph = b"".join(b"\x0a" + _varint(len(n)) + n for n in (_message(fields) for fields in nodes))
    read_everything(b"\x12" + _varint(len(graph)) + graph)


test_shaped_graph, test_shaped_graph_long = twice(nodes=st.lists(st.lists(_FIELD, max_size=8), max_size=8))(check_shaped_graph)


def check_mutated_real_graph(which, kind, at, size, byte):
    if not GRAPHS:
        pytest.skip("no real graphs to mutate")
    read_everything(_mutate(GRAPHS[which % len(GRAPHS)], kind, at, size, byte))


# Each case reads a whole real graph (thousands of nodes): fewer of them in the CI run.
test_mutated_real_graph, test_mutated_real_graph_long = twice(
    40, which=st.integers(0, 10), kind=st.integers(0, 4), at=st.integers(0, 1 << 22), size=st.integers(0, 1 << 16), byte=st.integers(0, 255)
)(check_mutated_real_graph)
