import json
import time

import mxnet as mx
import numpy as np
import pytest

from conftest import built, model_params
from inceptionzoo.graph_rewrites import concat_pool_edges
from inceptionzoo.graph_tuning import TunedGraph, CachedGraph


def _ops(sym):
    return [n["op"] for n in json.loads(sym.tojson())["nodes"]]


@pytest.mark.parametrize("name", model_params())
def test_every_graph_variant_computes_the_same_function(name):
    net, x = built(name, batch=2)
    ref = net(x).asnumpy()
    graph = TunedGraph.from_block(net, merge=True)
    edges = bool(concat_pool_edges(net(mx.sym.var("data"))))
    assert "unmodified" in graph.graphs and ("pool-first" in graph.graphs) == edges
    merged = "merge+" if graph.merged else ""
    assert graph.default == merged + ("pool-first" if edges else "unmodified")
    # merged weights: inception_mnist's 4-channel reductions, inception_resnet_v2's residual
    # scales folded into their convolutions
    assert bool(graph.merged) == (name in ("inception_mnist", "inception_resnet_v2"))
    for key, block in graph.graphs.items():
        np.testing.assert_allclose(block(x).asnumpy(), ref, rtol=1e-4, atol=1e-5, err_msg=key)
    np.testing.assert_allclose(graph(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    assert graph.choice[2] in graph.graphs


def _slowed(graph, fast, seconds=0.005):
    """Every variant of ``graph`` but ``fast`` made ``seconds`` slower per call."""
    def slow(run):
        return lambda x, ctx=None: (time.sleep(seconds), run(x, ctx))[1]

    graph.graphs = {k: g if k == fast else slow(g) for k, g in graph.graphs.items()}


def test_choice_per_batch_size_and_large_batches_skip_tuning():
    """Batches up to tune_max_batch are timed once each and get the fastest variant; larger
    ones run the default untimed."""
    net, _ = built("inception_mnist")
    graph = TunedGraph.from_block(net, tune_max_batch=4, tune_budget=600.0,
                                      max_single_edges=0)
    fast = "pool-first+native"
    assert fast != graph.default == "pool-first" and len(graph.graphs) == 4
    _slowed(graph, fast)
    for n in (1, 3, 64, 1):
        graph(mx.nd.random.uniform(shape=(n, 1, 28, 28)))
    assert graph.choice == {1: fast, 3: fast, 64: graph.default}
    assert graph.tuned == [1, 3]
    edges = ["inception_mnist_pool1_fwd_concat", "inception_mnist_pool2_fwd_concat"]
    plain = ["pool-first", "unmodified", "pool-first+native", "pool-first+plain"] + [
        f"pool-first+{kind}:{e}" for e in edges for kind in ("native", "plain")]
    assert list(TunedGraph.from_block(net).graphs) == plain  # merge is off by default
    merged = TunedGraph.from_block(net, merge=True)
    assert list(merged.graphs) == ["merge+" + key for key in plain] + plain
    assert merged.default == "merge+pool-first"


def test_tuning_stops_when_its_budget_is_spent():
    net, x = built("inception_mnist")
    graph = TunedGraph.from_block(net, tune_budget=0.0)
    graph(x)
    assert graph.choice == {x.shape[0]: "pool-first"}


@pytest.mark.parametrize("fuse", [False, True])
def test_fused_and_unfused_graphs_agree(fuse):
    net, x = built("inception_mnist", batch=3)
    graph = TunedGraph.from_block(net, fuse=fuse)
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
    graph = TunedGraph.from_block(net)
    y = graph(x.as_in_context(mx.cpu_pinned()))
    assert y.context == mx.cpu_pinned() and graph.choice == {}
    assert graph._device_graph is not None
    np.testing.assert_allclose(y.asnumpy(), net(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_graphs_see_in_place_parameter_updates():
    net, x = built("inception_mnist", batch=2)
    graph = TunedGraph.from_block(net)
    before = graph(x).asnumpy()
    bias = net.collect_params()["inception_mnist_output_bias"]
    bias.set_data(bias.data() + 1.0)
    np.testing.assert_allclose(graph(x).asnumpy(), before + 1.0, rtol=1e-5, atol=1e-5)


def test_merged_graphs_hold_the_weights_they_were_built_with():
    """``merge+`` graphs compute their merged weights once (like inductor's freezing); the
    others, and the default ``merge=False``, see in-place changes of those parameters."""
    net, x = built("inception_mnist", batch=2)
    frozen, live = TunedGraph.from_block(net, merge=True), TunedGraph.from_block(net)
    before = net(x).asnumpy()
    weight = net.collect_params()["inception_mnist_block1_b5_weight"]
    weight.set_data(weight.data() * 3.0)
    after = net(x).asnumpy()
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(frozen.graphs["merge+pool-first"](x).asnumpy(), before,
                               rtol=1e-4, atol=1e-5)
    for graph in (frozen.graphs["pool-first"], live):
        np.testing.assert_allclose(graph(x).asnumpy(), after, rtol=1e-4, atol=1e-5)


def test_each_batch_size_keeps_its_own_static_graph(monkeypatch):
    """A static CachedOp re-plans its memory at every change of shape (and then runs a small
    batch in views of a big batch's buffers): each shape keeps its own, the
    ``MAX_SHAPES`` most recently used, with the same values as a graph that saw one shape."""
    net, _ = built("inception_mnist")
    sym = net(mx.sym.var("data"))
    graph = CachedGraph(sym, net.collect_params())
    monkeypatch.setattr(CachedGraph, "MAX_SHAPES", 2)
    built_ops = []
    real = mx.nd.CachedOp

    def counted(*args, **kwargs):
        built_ops.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mx.nd, "CachedOp", counted)
    xs = {b: mx.nd.random.uniform(shape=(b, 1, 28, 28)) for b in (1, 3, 5)}
    want = {b: CachedGraph(sym, net.collect_params())(x).asnumpy() for b, x in xs.items()}
    del built_ops[:]
    for b in (1, 3, 1, 3, 1):
        np.testing.assert_allclose(graph(xs[b]).asnumpy(), want[b], rtol=1e-5, atol=1e-6)
    assert len(built_ops) == 2  # one per shape, built once
    graph(xs[5])  # a third shape: the least recently used (3) goes
    graph(xs[1])
    assert len(built_ops) == 3
    np.testing.assert_allclose(graph(xs[3]).asnumpy(), want[3], rtol=1e-5, atol=1e-6)
    assert len(built_ops) == 4


def test_static_graph_names_a_missing_input_or_parameter():
    net, _ = built("inception_mnist")
    sym = net(mx.sym.var("data"))
    with pytest.raises(ValueError, match=r"no input 'image'; its inputs are \['data', "):
        CachedGraph(sym, net.collect_params(), input_name="image")
    params = net.collect_params("(?!.*stem_bias).*")
    with pytest.raises(ValueError, match=r"no parameter for graph input\(s\) "
                                         r"\['inception_mnist_stem_bias'\]"):
        CachedGraph(sym, params)


def test_input_shape_is_still_checked():
    net, _ = built("inception_mnist")
    graph = TunedGraph.from_block(net)
    with pytest.raises(ValueError, match=r"got 3 channels in shape \(1, 3, 28, 28\)"):
        graph(mx.nd.zeros((1, 3, 28, 28)))


def test_warmup_tunes_now_and_a_saved_tuning_is_reused_without_timing(monkeypatch):
    net, x = built("inception_mnist", batch=2)
    graph = TunedGraph.from_block(net)
    choice = graph.warmup([1, 2, 32])
    assert set(choice) == {1, 2, 32} and graph.tuned == [1, 2]  # 32 > tune_max_batch
    record = json.loads(json.dumps(graph.tuning()))
    assert record["choice"] == {str(b): v for b, v in choice.items()}

    again = TunedGraph.from_block(net)

    def no_timing(x):
        raise AssertionError(f"tuned batch {x.shape[0]} although a choice was loaded")

    monkeypatch.setattr(again, "_pick", no_timing)
    assert again.load_tuning(record) == choice
    assert again.warmup([1, 2, 32]) == choice and again.tuned == []
    np.testing.assert_allclose(again(x).asnumpy(), graph(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_a_tuning_for_other_graphs_is_refused():
    net, _ = built("inception_mnist")
    graph = TunedGraph.from_block(net)
    record = dict(graph.tuning(), choice={"1": "pool-first+plain"})
    with pytest.raises(ValueError, match=r"other graphs: fuse False \(here True\)"):
        graph.load_tuning(dict(record, fuse=False))
    with pytest.raises(ValueError, match=r"mxnet '0.0' \(here '1.9.1'\)"):
        graph.load_tuning(dict(record, mxnet="0.0"))
    bad = dict(record, choice={"1": "fastest"})
    with pytest.raises(ValueError, match=r"unknown variants \['fastest'\]"):
        graph.load_tuning(bad)
    with pytest.raises(ValueError, match=r"batch sizes must be integers >= 1; got \[0\]"):
        graph.warmup([0])
    with pytest.raises(ValueError, match="warmup needs the input shape"):
        TunedGraph(net(mx.sym.var("data")), net.collect_params()).warmup([1])


def test_the_graph_classes_old_names_still_import_with_a_warning(monkeypatch):
    """``inceptionzoo.inference`` is ``graph_tuning`` now; its ``StaticGraph`` / ``InferenceGraph``
    are ``CachedGraph`` / ``TunedGraph`` and ``serving.ServingGraph`` is ``ExportRunner``: the
    old names give the same classes for one release, each with the one deprecation sentence."""
    import importlib
    import sys

    from inceptionzoo import graph_tuning, serving, serving_core

    monkeypatch.delitem(sys.modules, "inceptionzoo.inference", raising=False)
    with pytest.warns(DeprecationWarning, match=r"inceptionzoo\.inference is deprecated and goes "
                                                r"in the next release: import "
                                                r"inceptionzoo\.graph_tuning"):
        old = importlib.import_module("inceptionzoo.inference")
    for name, new in (("StaticGraph", graph_tuning.CachedGraph),
                      ("InferenceGraph", graph_tuning.TunedGraph)):
        with pytest.warns(DeprecationWarning, match=rf"inceptionzoo\.inference\.{name} is "
                                                    r"deprecated .*: use inceptionzoo\.graph_tuning"):
            assert getattr(old, name) is new
    for module in (serving, serving_core):
        with pytest.warns(DeprecationWarning, match=r"ServingGraph is deprecated .*: use "
                                                    r"inceptionzoo\.export_runner\.ExportRunner"):
            assert module.ServingGraph is serving_core.ExportRunner
