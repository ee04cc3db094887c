import json

import mxnet as mx
import numpy as np
import pytest

from conftest import built
from inceptionzoo.graph_rewrites import (concat_pool_edges, graph_variants,
                                         merge_branches_symbol, merged_params,
                                         native_concat_symbol, plain_layout_symbol,
                                         pool_first_symbol)
from inceptionzoo.graph_tuning import CachedGraph


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
    out = CachedGraph(first, net.collect_params())(x)
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


def _nonzero_biases(net):
    """Xavier leaves biases at 0, which would hide a bias put on the wrong filters."""
    rng = np.random.RandomState(1)
    for p in net.collect_params().values():
        if p.name.endswith("bias"):
            p.set_data(mx.nd.array(rng.uniform(-0.5, 0.5, p.shape)))


def test_merge_branches_merges_the_narrow_block_and_keeps_the_values():
    net, x = built("inception_mnist", batch=3)
    _nonzero_biases(net)
    sym = net(mx.sym.var("data"))
    merged, recipes = merge_branches_symbol(sym)
    b1 = "inception_mnist_block1_"
    assert sorted(recipes) == sorted(f"{b1}{n}_fwd_merged_{k}" for n in ("b3red", "b3")
                                     for k in ("weight", "bias"))
    assert recipes[f"{b1}b3_fwd_merged_weight"] == (
        "blockdiag", [f"{b1}b3_weight", f"{b1}b5_weight"], (5, 5))
    ops = _ops(merged)
    assert ops.count("Convolution") == _ops(sym).count("Convolution") - 2
    nodes = json.loads(merged.tojson())["nodes"]
    cat = [n for n in nodes if n["name"] == f"{b1}concat0"][0]
    assert [nodes[i]["name"] for i, _, _ in cat["inputs"]] == [
        f"{b1}b1_relu_fwd", f"{b1}b3_relu_fwd_merged", f"{b1}proj_relu_fwd"]
    conv = [n for n in nodes if n["name"] == f"{b1}b3_fwd_merged"][0]
    assert (conv["attrs"]["kernel"], conv["attrs"]["pad"], conv["attrs"]["num_filter"]) == (
        "(5, 5)", "(2, 2)", "16")
    arrays = merged_params(recipes, net.collect_params())
    params = dict({p.name: p.data() for p in net.collect_params().values()}, **arrays)
    out = CachedGraph(merged, params)(x).asnumpy()
    ref = net(x).asnumpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    # the wider blocks (8 and 16 channels) merge only when asked to
    assert len(merge_branches_symbol(sym, max_channels=16)[1]) == 12
    assert merge_branches_symbol(sym, max_channels=4) == (sym, {})


def test_merged_weights_are_block_diagonal_with_centred_kernels():
    a = mx.nd.array(np.arange(2 * 3 * 3 * 3).reshape(2, 3, 3, 3) + 1.0)
    b = mx.nd.array(np.arange(4 * 2 * 5 * 5).reshape(4, 2, 5, 5) + 1.0)
    w = merged_params({"w": ("blockdiag", ["a", "b"], (5, 5)), "s": ("stack", ["a", "a"], None)},
                      {"a": a, "b": b})
    got = w["w"].asnumpy()
    assert got.shape == (6, 5, 5, 5)
    np.testing.assert_array_equal(got[:2, :3, 1:4, 1:4], a.asnumpy())
    np.testing.assert_array_equal(got[2:, 3:], b.asnumpy())
    mask = np.ones(got.shape, bool)
    mask[:2, :3, 1:4, 1:4] = False
    mask[2:, 3:] = False
    assert not got[mask].any()
    np.testing.assert_array_equal(w["s"].asnumpy(), np.concatenate([a.asnumpy()] * 2))
    lazy = mx.gluon.Parameter("a", shape=(2, 3, 3, 3))  # never initialised
    with pytest.raises(ValueError, match="parameter 'a' is not initialised"):
        merged_params({"s": ("stack", ["a", "a"], None)}, {"a": lazy})


def _pair(red_a=None, conv_a=None, shared=True, weight_a=None):
    """concat(stem, A(RA(x)), B(RB(x))): the narrow pattern, with attributes to break it."""
    x = mx.sym.var("x")
    ra = mx.sym.Convolution(x, num_filter=4, name="ra", weight=weight_a,
                            **dict({"kernel": (1, 1)}, **(red_a or {})))
    rb = mx.sym.Convolution(x if shared else mx.sym.var("y"), num_filter=4, kernel=(1, 1),
                            name="rb")
    a = mx.sym.Activation(mx.sym.Convolution(ra, num_filter=6, name="a", **dict(
        {"kernel": (3, 3), "pad": (1, 1)}, **(conv_a or {}))),
                          act_type="relu")
    b = mx.sym.Activation(mx.sym.Convolution(rb, num_filter=6, kernel=(5, 5), pad=(2, 2),
                                             name="b"), act_type="relu")
    stem = mx.sym.Convolution(x, num_filter=5, kernel=(1, 1), name="stem")
    return mx.sym.concat(stem, a, b, dim=1), ra


def test_merge_branches_leaves_other_shapes_alone():
    cat, _ = _pair()
    assert len(merge_branches_symbol(cat)[1]) == 4
    assert merge_branches_symbol(_pair(conv_a={"stride": (2, 2)})[0])[1] == {}
    assert merge_branches_symbol(_pair(conv_a={"pad": (0, 0)})[0])[1] == {}  # not "same"
    assert merge_branches_symbol(_pair(red_a={"kernel": (3, 3), "pad": (1, 1)})[0])[1] == {}
    assert merge_branches_symbol(_pair(shared=False)[0])[1] == {}
    # a weight computed in the graph (not a variable the params hold)
    assert merge_branches_symbol(_pair(weight_a=mx.sym.var("ra_weight") * 1.0)[0])[1] == {}
    # a 1x7 beside the 5x5 would merge into a 5x7: 4.4x the work, more than MAX_GROWTH
    assert merge_branches_symbol(_pair(conv_a={"kernel": (1, 7), "pad": (0, 3)})[0])[1] == {}
    cat, ra = _pair()  # a reduction something else reads too
    assert merge_branches_symbol(mx.sym.Group([cat, ra]))[1] == {}
    assert merge_branches_symbol(mx.sym.concat(*_pair()[0].get_children()[1:],
                                               dim=2))[1] == {}  # not a channel concat


@pytest.mark.parametrize("case", ["3x3+5x5", "1x3+3x3", "no-activation", "no-bias",
                                  "b-built-first"])
def test_merged_graph_computes_the_same_values(case):
    """The rewrite on shapes the zoo does not have: non-square and mixed kernels, no activation,
    no bias, and branch B's nodes created before A's."""
    x = mx.sym.var("x")
    kernels = {"1x3+3x3": ((1, 3), (3, 3))}.get(case, ((3, 3), (5, 5)))
    no_bias = case == "no-bias"

    def branch(tag, kernel):
        red = mx.sym.Convolution(x, num_filter=3, kernel=(1, 1), no_bias=no_bias, name=f"r{tag}")
        conv = mx.sym.Convolution(red, num_filter=5, kernel=kernel, no_bias=no_bias,
                                  pad=tuple(k // 2 for k in kernel), name=tag)
        return conv if case == "no-activation" else mx.sym.Activation(conv, act_type="relu")

    b = branch("b", kernels[1]) if case == "b-built-first" else None
    a = branch("a", kernels[0])
    b = branch("b", kernels[1]) if b is None else b
    stem = mx.sym.Convolution(x, num_filter=2, kernel=(1, 1), no_bias=no_bias, name="stem")
    sym = mx.sym.concat(stem, a, b, dim=1)
    merged, recipes = merge_branches_symbol(sym)
    assert len(recipes) == (2 if no_bias else 4), recipes
    rng = np.random.RandomState(0)
    shapes = dict(zip(sym.list_arguments(), sym.infer_shape(x=(2, 4, 9, 9))[0]))
    params = {k: mx.nd.array(rng.uniform(-1, 1, v)) for k, v in shapes.items() if k != "x"}
    params.update(merged_params(recipes, params))
    data = mx.nd.array(rng.uniform(-1, 1, (2, 4, 9, 9)))
    want = CachedGraph(sym, params, "x")(data).asnumpy()
    got = CachedGraph(merged, params, "x")(data).asnumpy()
    assert got.shape == want.shape == (2, 12, 9, 9)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_scaled_residuals_fold_into_one_fused_convolution():
    """Inception-ResNet's relu(x + s * conv(y)): the scale goes into the weights and oneDNN
    fuses convolution, sum and ReLU; the values stay the network's."""
    import collections

    from inceptionzoo.graph_rewrites import fold_scaled_convolutions_symbol, merged_params
    from inceptionzoo.blocks import ScaledResidual, conv

    block = ScaledResidual(8, [[conv("b0", 4)], [conv("b1_0", 2), conv("b1_1", 4, 3, padding=1)]],
                           0.17, prefix="res_")
    block.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(-1, 1, shape=(2, 8, 9, 9))
    ref = block(x).asnumpy()
    sym = block(mx.sym.var("data"))
    folded, recipes = fold_scaled_convolutions_symbol(sym)
    assert sorted(recipes) == ["res_conv2d_fwd_scaled_bias", "res_conv2d_fwd_scaled_weight"]
    assert recipes["res_conv2d_fwd_scaled_weight"] == ("scale", ["res_conv2d_weight"], 0.17)
    ops = collections.Counter(n["op"] for n in json.loads(folded.tojson())["nodes"])
    assert ops["_mul_scalar"] == 0 and ops["relu"] == 0 and ops["Activation"] >= 1
    params = dict(block.collect_params(), **merged_params(recipes, block.collect_params()))
    fused = folded.optimize_for("MKLDNN")
    convs = [n for n in json.loads(fused.tojson())["nodes"] if n["op"] == "_sg_mkldnn_conv"]
    assert [n["attrs"].get("with_sum") for n in convs].count("true") == 1
    assert [n["attrs"].get("with_postsum_act") for n in convs].count("true") == 1
    for graph in (folded, fused):
        got = CachedGraph(graph, params)(x).asnumpy()
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    assert fold_scaled_convolutions_symbol(mx.sym.relu(mx.sym.var("data")))[1] == {}
