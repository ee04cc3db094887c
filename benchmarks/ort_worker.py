"""Time an ONNX file in ONNX Runtime, in a process of its own that never imports MXNet (run by
the benchmarks with the main venv's python, where the onnxruntime extra is installed):

    .venv/bin/python benchmarks/ort_worker.py MODEL.onnx '{"batch": 32, "run_seconds": 0.5,
        "repeats": 5, "latency_iters": 50, "check_input": "x.npy", "check_logits": "y.npy",
        "mode": "onnxruntime", "model": "inception_mnist"}'

ONNX Runtime runs as the zoo's serving graph runs it: ``inceptionzoo.runtimes.OrtRunner``
(loaded from its file, which imports no MXNet), every graph optimisation (``ORT_ENABLE_ALL``),
and of its default threads (one per core) and a single thread the setting timed faster at this
batch size (``OrtRunner.tune``; the row records ``threads``, 0 = the default). Before timing, its
logits of ``check_input`` must be MXNet's (``check_logits``; ``_peer.check_same_function``), and
the timed batch is made of that input. With ``"profile": N``
in the spec it instead runs N calls under ONNX Runtime's profiler and returns the kernel time of
each node per call (benchmarks/ort_profile.py).
"""
import collections
import json
import os
import resource
import tempfile
import sys

import numpy as np
import onnxruntime as ort

from _peer import batch_of, check_same_function, runtimes_module
from _timing import time_calls


def main(path, spec):
    calls = spec.get("profile")
    if calls:
        return _profile(path, spec, calls)
    runner = runtimes_module().OrtRunner(path)
    inp = runner.session.get_inputs()[0]
    dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
    parity = {}
    if "check_input" in spec:
        parity = check_same_function(runner, spec)
        x = batch_of(spec, dtype)
    else:
        x = _random_batch(inp, spec, dtype)
    runner.tune([x])
    res = time_calls(lambda: runner(x), spec["batch"], spec["run_seconds"],
                     spec["repeats"], spec["latency_iters"], lambda out, all_=False: None)
    res["threads"] = runner.threads[spec["batch"]]
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["onnxruntime"] = ort.__version__
    res.update(parity)
    res["mxnet_imported"] = "mxnet" in sys.modules  # must stay False
    return res


def _random_batch(inp, spec, dtype):
    """``spec['batch']`` rows of :func:`inceptionzoo.runtimes.sample_input`."""
    return runtimes_module().sample_input(spec["batch"], [int(d) for d in inp.shape[1:]], dtype)


def _profile(path, spec, calls, warm=5):
    """Kernel ms per call of each node (ONNX Runtime's default threads), over ``calls`` runs
    after ``warm`` runs."""
    tmp = tempfile.TemporaryDirectory()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tmp.name, "ort")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
    feed = {inp.name: batch_of(spec, dtype) if "check_input" in spec
            else _random_batch(inp, spec, dtype)}
    for _ in range(warm + calls):
        sess.run(None, feed)
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    tmp.cleanup()
    runs = collections.defaultdict(list)  # (op, node) -> kernel ms of each run, in order
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            runs[(e["args"].get("op_name"), e["name"][:-len("_kernel_time")])].append(
                e["dur"] / 1e3)
    nodes = [{"op": op, "node": node, "ms": sum(ms[warm:]) / calls}
             for (op, node), ms in runs.items()]
    return {"nodes": sorted(nodes, key=lambda n: -n["ms"]), "onnxruntime": ort.__version__}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
