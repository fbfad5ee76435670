"""The training-graph reader (tf2hf/tfckpt/metagraph.py) against TensorFlow's own parsing.

The oracle is ``tf.compat.v1.train.import_meta_graph``: every node's name, op and inputs, and
the values of the small constants, as TF reads them from the same ``.meta`` files (real ones
from ../shared/checkpoints and one the test writes).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from support import SHARED, shared
from tf2hf.errors import CheckpointFormatError
from tf2hf.tfckpt.metagraph import MAX_CONST_VALUES, GraphFormatError, parse_graph, read_graph

tf = pytest.importorskip("tensorflow")

GRAPHS = [
    ("upstream", "bert_pre", "model.ckpt.meta"),
    ("upstream", "albert_g1i1", "model.ckpt.meta"),
    ("real-index", "pyxz-google_chinese_L-12_H-768_A-12", "bert_model.ckpt.meta"),
    ("real-index", "jadepeng-albert_base_zh_google_best", "model.ckpt-best.meta"),
    ("real-index", "liam1015-albert_base_zh_brightmart", "albert_model.ckpt.meta"),
]


def tf_graph_def(path):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(path), clear_devices=True)
    return graph.as_graph_def()


@pytest.mark.parametrize("where", GRAPHS, ids=lambda w: w[1])
def test_every_node_as_tensorflow_reads_it(where):
    path = shared(*where)
    ours = read_graph(path)
    theirs = tf_graph_def(path)
    assert len(ours) == len(theirs.node)
    consts = 0
    for node in theirs.node:
        mine = ours.node(node.name)
        assert mine is not None, node.name
        assert mine.op == node.op and list(mine.inputs) == list(node.input), node.name
        # TF drops the internal _output_shapes on import and adds defaults the file left out.
        assert {k for k in mine.raw_attrs if not k.startswith("_")} <= set(node.attr), node.name
        if node.op == "Const":
            want = tf.make_ndarray(node.attr["value"].tensor)
            got = mine.attr("value")
            assert got.dtype == tf.dtypes.as_dtype(node.attr["value"].tensor.dtype).name and got.shape == want.shape, node.name
            if want.dtype == object:
                assert got.values is None or [bytes(v) for v in got.values] == list(want.flat), node.name
            elif want.size <= MAX_CONST_VALUES:
                np.testing.assert_array_equal(np.array(got.values, dtype=want.dtype).reshape(want.shape), want, err_msg=node.name)
                consts += 1
        if "dtype" in node.attr and node.attr["dtype"].type:
            assert mine.attr("dtype") == tf.dtypes.as_dtype(node.attr["dtype"].type).name, node.name
    assert consts > 100


def test_attribute_kinds_written_by_tensorflow(tmp_path):
    """Lists, shapes, strings, floats, bools and unknown dims, in a graph built here."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        tf.reshape(x, [-1, 3, 1], name="r")
        tf.nn.max_pool2d(tf.reshape(x, [1, 1, 3, 1]), ksize=[1, 1, 2, 1], strides=[1, 1, 1, 1], padding="SAME", name="pool")
        tf.constant([1.5, -2.25], name="floats")
        tf.constant(True, name="flag")
        tf.fill([2, 2], 7, name="filled")
        tf.constant(np.arange(6, dtype=np.int64).reshape(2, 3), name="i64")
        tf.compat.v1.train.export_meta_graph(str(tmp_path / "g.meta"))
    ours = read_graph(tmp_path / "g.meta")
    assert ours.node("x").attr("shape") == (-1, 3)
    assert ours.node("x").attr("dtype") == "float32"
    pool = ours.node("pool")
    assert pool.attr("ksize") == [1, 1, 2, 1] and pool.attr("padding") == b"SAME"
    assert ours.node("floats").attr("value").values == (1.5, -2.25)
    assert ours.node("flag").attr("value").values == (True,)
    assert ours.node("i64").attr("value").values == (0, 1, 2, 3, 4, 5)
    assert ours.node("missing") is None and ours.node("x").attr("nothing") is None


def test_a_truncated_graph_names_the_file(tmp_path):
    data = shared("upstream", "bert_pre", "model.ckpt.meta").read_bytes()
    bad = tmp_path / "model.ckpt.meta"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(GraphFormatError) as caught:
        read_graph(bad)
    assert str(bad) in str(caught.value) and "move the .meta file away" in str(caught.value)
    assert isinstance(caught.value, CheckpointFormatError)


def test_a_file_too_large_is_refused_before_reading(tmp_path, monkeypatch):
    import tf2hf.tfckpt.metagraph as metagraph

    path = tmp_path / "big.meta"
    path.write_bytes(b"\0" * 100)
    monkeypatch.setattr(metagraph, "MAX_META_BYTES", 99)
    with pytest.raises(GraphFormatError, match="too large for a training graph"):
        metagraph.read_graph(path)


def test_a_50_mb_graph_is_split_in_well_under_a_second():
    """The real graph with most nodes (4 MB, 17k nodes), its node records repeated to 50 MB
    under new names: the size of a large training graph, node for node as TF wrote them."""
    path = shared("real-index", "paolanu-protein_bert_step40000", "model.ckpt-40000.meta")
    data = path.read_bytes()
    graph = read_graph(path)
    records = []
    for name in graph.names():
        start, end = graph.span(name)
        name_end = start + 2 + data[start + 1] if data[start + 1] < 0x80 else None
        if name_end is not None:
            records.append((name.encode(), data[name_end:end]))
    body = bytearray()
    copies = 0
    while len(body) < 50_000_000:
        for name, rest in records:
            new = f"c{copies}/".encode() + name
            record = bytes([0x0A]) + _varint(len(new)) + new + rest
            body += bytes([0x0A]) + _varint(len(record)) + record
        copies += 1
    meta = bytes([0x12]) + _varint(len(body)) + bytes(body)
    # CPU time: the 2 cores of the test machine are shared, so wall time measures the load.
    started, wall = time.process_time(), time.perf_counter()
    big = parse_graph(meta)
    names = big.names()
    took = time.process_time() - started
    print(f"\n{len(meta) / 1e6:.1f} MB graph: {len(big)} nodes split and named in {took:.2f} s CPU ({time.perf_counter() - wall:.2f} s wall)")
    assert len(names) == copies * len(records)
    assert took < 1.0, took


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
