import json

import mxnet as mx
import numpy as np

from conftest import built
from inceptionzoo.graph_rewrites import (concat_pool_edges, graph_variants,
                                         native_concat_symbol, plain_layout_symbol,
                                         pool_first_symbol)
from inceptionzoo.inference import StaticGraph


def _ops(sym):
    return [n["op"] for n in json.loads(sym.tojson())["nodes"]]


def test_rewrite_inserts_reshape_only_between_concat_and_pool():
    net, _ = built("inception_mnist")
    sym = net(mx.sym.var("data"))
    edges = concat_pool_edges(sym)
    assert edges == ["inception_mnist_block1_concat0", "inception_mnist_block2_concat0"]
    plain, n = plain_layout_symbol(sym)
    assert n == 2 and _ops(plain).count("Reshape") == 2
    assert len(_ops(plain)) == len(_ops(sym)) + 2
    one, n1 = plain_layout_symbol(sym, [edges[0]])
    assert n1 == 1 and _ops(one).count("Reshape") == 1
    nodes = json.loads(one.tojson())["nodes"]
    r = [i for i, node in enumerate(nodes) if node["op"] == "Reshape"][0]
    assert nodes[nodes[r]["inputs"][0][0]]["name"] == edges[0]
    assert nodes[r + 1]["op"] == "Pooling" and nodes[r + 1]["inputs"][0][0] == r
    assert plain.list_arguments() == sym.list_arguments()
    a, b = mx.sym.var("a"), mx.sym.var("b")  # only 2-D pools: the rewrites assume NCHW
    for kernel, layout in (((2,), "NCW"), ((2, 2, 2), "NCDHW")):
        pool = mx.sym.Pooling(mx.sym.concat(a, b, dim=1), kernel=kernel, layout=layout)
        assert concat_pool_edges(pool) == []
    assert len(concat_pool_edges(mx.sym.Pooling(mx.sym.concat(a, b), kernel=(2, 2)))) == 1


def test_native_concat_runs_the_concat_on_3d_views():
    net, x = built("inception_mnist")
    sym = net(mx.sym.var("data"))
    edges = concat_pool_edges(sym)
    one, n = native_concat_symbol(sym, [edges[0]])
    assert n == 1 and one.list_arguments() == sym.list_arguments()
    nodes = json.loads(one.tojson())["nodes"]
    cat = [node for node in nodes if node["name"] == edges[0]][0]
    assert [nodes[i]["op"] for i, _, _ in cat["inputs"]] == ["Reshape"] * 4
    assert all(nodes[i]["attrs"]["shape"] == "(0, 0, -3)" for i, _, _ in cat["inputs"])
    back = [node for node in nodes if node["op"] == "reshape_like"]
    assert len(back) == 1 and nodes[back[0]["inputs"][0][0]]["name"] == edges[0]
    readers = [node for node in nodes if node["op"] == "Pooling"
               and nodes[node["inputs"][0][0]]["op"] == "reshape_like"]
    assert [node["name"] for node in readers] == ["inception_mnist_pool1_fwd"]
    assert native_concat_symbol(sym)[1] == 2
    a, b = mx.sym.var("a"), mx.sym.var("b")
    assert native_concat_symbol(mx.sym.concat(a, b, dim=2, name="c"), ["c"])[1] == 0


def test_pool_first_pools_each_branch_then_concatenates():
    net, x = built("inception_mnist", batch=3)
    sym = net(mx.sym.var("data"))
    first, n = pool_first_symbol(sym)
    assert n == 2 and first.list_arguments() == sym.list_arguments()
    nodes = json.loads(first.tojson())["nodes"]
    cat = [node for node in nodes if node["name"] == "inception_mnist_pool1_fwd_concat"][0]
    parts = [nodes[i] for i, _, _ in cat["inputs"]]
    assert [p["name"] for p in parts] == [f"inception_mnist_pool1_fwd_part{k}" for k in range(4)]
    assert all(p["op"] == "Pooling" and p["attrs"]["stride"] == "(2, 2)" for p in parts)
    assert not any(node["name"] == "inception_mnist_block1_concat0" for node in nodes)
    ops = _ops(first)
    assert ops.count("Pooling") == _ops(sym).count("Pooling") + 6  # 2 pools -> 2 x 4 parts
    out = StaticGraph(first, net.collect_params())(x)
    np.testing.assert_array_equal(out.asnumpy(), net(x).asnumpy())
    a, b = mx.sym.var("a"), mx.sym.var("b")  # concats along other axes stay
    pool = mx.sym.Pooling(mx.sym.concat(a, b, dim=2, name="c"), kernel=(2, 2))
    assert pool_first_symbol(pool)[1] == 0
    cat = mx.sym.concat(a, b, dim=1)  # a concat other nodes read too stays, with its pools
    two = mx.sym.Pooling(cat, kernel=(2, 2)) + mx.sym.Pooling(cat, kernel=(2, 2), pool_type="avg")
    assert pool_first_symbol(two)[1] == 0
    assert pool_first_symbol(mx.sym.Group([mx.sym.Pooling(cat, kernel=(2, 2)), cat]))[1] == 0
    assert pool_first_symbol(mx.sym.Pooling(cat, kernel=(2, 2)))[1] == 1


def test_graph_variants_parse_the_symbol_once(monkeypatch):
    """The rewrites pass the parsed graph on: one ``tojson`` for all variants, and each variant
    equals what the public one-rewrite functions build."""
    net, _ = built("inception_mnist")
    sym = net(mx.sym.var("data"))
    calls = []
    tojson = mx.sym.Symbol.tojson
    monkeypatch.setattr(mx.sym.Symbol, "tojson", lambda self: calls.append(1) or tojson(self))
    variants = graph_variants(sym)
    assert len(calls) == 1 and len(variants) == 8
    monkeypatch.undo()
    first = pool_first_symbol(sym)[0]
    edge = concat_pool_edges(first)[1]
    assert variants["unmodified"] is sym
    for key, want in (("pool-first", first), ("pool-first+native", native_concat_symbol(first)[0]),
                      ("pool-first+plain", plain_layout_symbol(first)[0]),
                      (f"pool-first+plain:{edge}", plain_layout_symbol(first, [edge])[0])):
        assert variants[key].tojson() == want.tojson(), key
