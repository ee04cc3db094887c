"""Ways to call the recommended graph, timed against each other in one process (the "what we
tried" list of docs/benchmarks.md, "Where MXNet 1.9.1 stands against ONNX Runtime"):

    python benchmarks/serving_options.py --batch-sizes 1,32
    MXNET_ENGINE_TYPE=NaiveEngine python benchmarks/serving_options.py    # engine settings
    OMP_NUM_THREADS=1 python benchmarks/serving_options.py

Contenders, all on the graph the tuner picks for the batch size: the static graph called with an
NDArray (as the throughput harness times it); the same fed from numpy and read back to numpy;
MXNet's C predict API (``MXPredCreate`` ... ``MXPredGetOutput`` through ctypes, numpy in and
out); ``CachedOp`` flag ``forward_bulk_size`` 0 and 1000; the graph the tuner picks without the
``merge`` rewrite (``merge=False``); and the same variant with ``merge`` applied to every block
(``max_channels=16``) instead of the narrow one. Then the Predictor on the
network's ``--preprocess`` export (uint8 images in, probabilities out), with its kept input
buffers against a fresh ``mx.nd.array`` per call. Images/s, median of 7 interleaved rounds.
"""
import argparse
import ctypes
import os
import tempfile
import time

import inceptionzoo.graph_tuning as graph_tuning  # before MXNet: its threads (inceptionzoo._openmp)
from inceptionzoo import get_model

import mxnet as mx  # noqa: E402
import numpy as np
from inceptionzoo.export import export
from inceptionzoo.graph_rewrites import graph_variants, merge_branches_symbol, merged_params
from inceptionzoo.runtimes import sample_input
from inceptionzoo.serving import Predictor


class FreshInputPredictor(Predictor):
    """The predictor as it was: a new input NDArray for every call."""

    def _net_input(self, batch):
        x = mx.nd.array(batch, dtype="uint8", ctx=self.ctx)
        return x if self.baked_in else self.transform(x)


def c_predict(sym, params, batch, shape):
    """A callable numpy -> numpy running ``sym`` through MXNet's C predict API."""
    lib, handle = mx.base._LIB, ctypes.c_void_p()
    aux = set(sym.list_auxiliary_states())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "p.params")
        mx.nd.save(path, {("aux:" if k in aux else "arg:") + k: v for k, v in params.items()
                          if k in sym.list_inputs()})
        with open(path, "rb") as f:
            blob = f.read()
    dims = (batch,) + tuple(shape)
    mx.base.check_call(lib.MXPredCreate(
        ctypes.c_char_p(sym.tojson().encode()), ctypes.c_char_p(blob), ctypes.c_int(len(blob)),
        1, 0, 1, (ctypes.c_char_p * 1)(b"data"), (ctypes.c_uint * 2)(0, len(dims)),
        (ctypes.c_uint * len(dims))(*dims), ctypes.byref(handle)))
    out = np.empty((batch, 10), np.float32)
    as_float = ctypes.POINTER(ctypes.c_float)

    def call(x):
        mx.base.check_call(lib.MXPredSetInput(handle, b"data", x.ctypes.data_as(as_float),
                                              ctypes.c_uint(x.size)))
        mx.base.check_call(lib.MXPredForward(handle))
        mx.base.check_call(lib.MXPredGetOutput(handle, 0, out.ctypes.data_as(as_float),
                                               ctypes.c_uint(out.size)))
        return out
    return call


def timed(calls, batch, rounds=7):
    """Images/s of each callable: median over interleaved rounds."""
    for call in calls.values():
        for _ in range(5):
            call()
    n = max(20, 2000 // batch)
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: batch / float(np.median(t)) for name, t in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--batch-sizes", default="1,32")
    args = p.parse_args()
    mx.random.seed(0)
    net = get_model(args.model)
    net.initialize(mx.init.Xavier())
    shape = tuple(net.info.input_shape)
    graph = graph_tuning.TunedGraph.from_block(net, merge=True)  # the Predictor's graphs
    unmerged = graph_tuning.TunedGraph.from_block(net, merge=False)
    params = {getattr(v, "name", k): v.data() if isinstance(v, mx.gluon.Parameter) else v
              for k, v in graph._graph_params.items()}
    wide_sym, recipes = merge_branches_symbol(net(mx.sym.var("data")), max_channels=16)
    wide_params = dict(params, **merged_params(recipes, params))
    wide_variants = graph_variants(wide_sym)
    engine = os.environ.get("MXNET_ENGINE_TYPE", "default engine")
    print(f"{args.model}, {engine}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    for b in [int(v) for v in args.batch_sizes.split(",")]:
        xn = sample_input(b, shape, "float32")
        x = mx.nd.array(xn)
        key = graph.warmup([b])[b]
        plain_key = unmerged.warmup([b])[b]
        static = graph.graphs[key]
        sym = graph.symbols[key]
        wide = wide_variants[key.removeprefix("merge+")]  # the variant, every block merged
        wide_graph = graph_tuning.CachedGraph(wide.optimize_for("MKLDNN") if graph.fuse else wide,
                                           wide_params)
        bulk = {size: graph_tuning.CachedGraph(sym, params, flags=[("forward_bulk_size", size)])
                for size in (0, 1000)}
        cpred = c_predict(sym, params, b, shape)
        calls = {
            "static, NDArray in": lambda: static(x).wait_to_read(),
            "static, numpy in and out": lambda: static(mx.nd.array(xn)).asnumpy(),
            "C predict API, numpy in and out": lambda: cpred(xn),
            "forward_bulk_size=0": lambda: bulk[0](x).wait_to_read(),
            "forward_bulk_size=1000": lambda: bulk[1000](x).wait_to_read(),
            f"merge=False (tuned: {plain_key})": lambda: unmerged(x).wait_to_read(),
            "merge every block (same variant)": lambda: wide_graph(x).wait_to_read(),
        }
        ref = net(x).asnumpy()
        for out in (cpred(xn), wide_graph(x).asnumpy()):
            np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        print(f"\nbatch {b} (graph {key}):")
        for name, speed in timed(calls, b).items():
            print(f"  {speed:8,.0f} images/s  {name}")
    with tempfile.TemporaryDirectory() as tmp:
        export(net, os.path.join(tmp, args.model), preprocess=True)
        sizes = [int(v) for v in args.batch_sizes.split(",")]
        kept, fresh = Predictor(tmp, warmup=sizes), FreshInputPredictor(tmp, warmup=sizes)
        for b in sizes:
            images = sample_input(b, shape[1:], "uint8", seed=1)
            np.testing.assert_array_equal(kept.probabilities(images),
                                          fresh.probabilities(images))
            print(f"\nPredictor.probabilities, --preprocess export, batch {b}:")
            for name, speed in timed({"kept input buffer": lambda: kept.probabilities(images),
                                      "fresh mx.nd.array per call":
                                          lambda: fresh.probabilities(images)}, b).items():
                print(f"  {speed:8,.0f} images/s  {name}")


if __name__ == "__main__":
    main()
