import json

import mxnet as mx
import numpy as np
import pytest

from conftest import built, model_params
from inceptionzoo.fast import (InferenceGraph, StaticGraph, concat_pool_edges,
                               native_concat_symbol, plain_layout_symbol, pool_first_symbol)


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


@pytest.mark.parametrize("name", model_params())
def test_every_graph_variant_computes_the_same_function(name):
    net, x = built(name, batch=2)
    ref = net(x).asnumpy()
    graph = InferenceGraph.from_block(net)
    edges = bool(concat_pool_edges(net(mx.sym.var("data"))))
    assert "unmodified" in graph.graphs and ("pool-first" in graph.graphs) == edges
    assert graph.default == ("pool-first" if edges else "unmodified")
    for key, block in graph.graphs.items():
        np.testing.assert_allclose(block(x).asnumpy(), ref, rtol=1e-4, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(graph(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    assert graph.choice[2] in graph.graphs


def test_choice_per_batch_size_and_large_batches_skip_tuning():
    net, _ = built("inception_mnist")
    graph = InferenceGraph.from_block(net, tune_max_batch=4)
    for n in (1, 3, 64):
        graph(mx.nd.random.uniform(shape=(n, 1, 28, 28)))
    assert set(graph.choice) == {1, 3, 64} and graph.choice[64] == "pool-first"
    edges = ["inception_mnist_pool1_fwd_concat", "inception_mnist_pool2_fwd_concat"]
    assert list(graph.graphs) == [
        "pool-first", "unmodified", "pool-first+native", "pool-first+plain"] + [
        f"pool-first+{kind}:{e}" for e in edges for kind in ("native", "plain")]


def test_tuning_stops_when_its_budget_is_spent():
    net, x = built("inception_mnist")
    graph = InferenceGraph.from_block(net, tune_budget=0.0)
    graph(x)
    assert graph.choice == {x.shape[0]: "pool-first"}


@pytest.mark.parametrize("fuse", [False, True])
def test_fused_and_unfused_graphs_agree(fuse):
    net, x = built("inception_mnist", batch=3)
    graph = InferenceGraph.from_block(net, fuse=fuse)
    assert graph.fuse is fuse
    for key, sym in graph.symbols.items():
        assert ("_sg_mkldnn_conv" in _ops(sym)) is fuse, key
    ref = net(x).asnumpy()
    for key, block in graph.graphs.items():
        np.testing.assert_allclose(block(x).asnumpy(), ref, rtol=1e-4, atol=1e-5, err_msg=key)


def test_inputs_on_another_device_run_the_unfused_graph():
    """The fused (oneDNN) graphs run only on CPU; a GPU input takes the unmodified static graph.
    No GPU here: ``cpu_pinned`` stands in for a non-CPU context on the same code path."""
    mx.random.seed(0)
    from inceptionzoo import get_model

    net = get_model("inception_mnist")
    net.initialize(mx.init.Xavier(), ctx=[mx.cpu(), mx.cpu_pinned()])
    x = mx.nd.random.uniform(shape=(2, 1, 28, 28))
    graph = InferenceGraph.from_block(net)
    y = graph(x.as_in_context(mx.cpu_pinned()))
    assert y.context == mx.cpu_pinned() and graph.choice == {}
    assert graph._device_graph is not None
    np.testing.assert_allclose(y.asnumpy(), net(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_graphs_see_in_place_parameter_updates():
    net, x = built("inception_mnist", batch=2)
    graph = InferenceGraph.from_block(net)
    before = graph(x).asnumpy()
    bias = net.collect_params()["inception_mnist_output_bias"]
    bias.set_data(bias.data() + 1.0)
    np.testing.assert_allclose(graph(x).asnumpy(), before + 1.0, rtol=1e-5, atol=1e-5)


def test_static_graph_names_a_missing_input_or_parameter():
    net, _ = built("inception_mnist")
    sym = net(mx.sym.var("data"))
    with pytest.raises(ValueError, match=r"no input 'image'; its inputs are \['data', "):
        StaticGraph(sym, net.collect_params(), input_name="image")
    params = net.collect_params("(?!.*stem_bias).*")
    with pytest.raises(ValueError, match=r"no parameter for graph input\(s\) "
                                         r"\['inception_mnist_stem_bias'\]"):
        StaticGraph(sym, params)


def test_input_shape_is_still_checked():
    net, _ = built("inception_mnist")
    graph = InferenceGraph.from_block(net)
    with pytest.raises(ValueError, match=r"got 3 channels in shape \(1, 3, 28, 28\)"):
        graph(mx.nd.zeros((1, 3, 28, 28)))


def test_int8_keeps_the_shipped_accuracy(mnist_dir):
    """INT8 is offered only because it is correct: calibrated on 1,000 real training digits, the
    quantized shipped network stays within 0.3 points of float32 and agrees on >= 99.5%."""
    from inceptionzoo import get_model
    from inceptionzoo.data import load_mnist, to_input
    from inceptionzoo.fast import quantize

    train_x, _ = load_mnist(mnist_dir, train=True)
    test_x, test_y = load_mnist(mnist_dir, train=False)
    net = get_model("inception_mnist", pretrained=True)
    qnet = quantize(net, to_input(train_x[:1000]))
    p32, p8 = [], []
    for i in range(0, len(test_x), 1000):
        x = mx.nd.array(to_input(test_x[i:i + 1000]))
        p32.append(net(x).argmax(axis=1).asnumpy())
        p8.append(qnet(x).argmax(axis=1).asnumpy())
    p32, p8 = np.concatenate(p32), np.concatenate(p8)
    acc32, acc8 = (p32 == test_y).mean(), (p8 == test_y).mean()
    assert abs(acc8 - acc32) <= 0.003, (acc32, acc8)
    assert (p32 == p8).mean() >= 0.995
    assert any(n["op"].startswith("_sg_mkldnn") or "quantize" in n["op"]
               for n in json.loads(qnet._cached_graph[1].tojson())["nodes"])


def test_quantize_refuses_bad_calibration():
    from inceptionzoo.fast import quantize

    net, _ = built("inception_mnist")
    with pytest.raises(ValueError, match=r"non-empty \(N, C, H, W\) array; got shape \(28, 28\)"):
        quantize(net, np.zeros((28, 28)))
