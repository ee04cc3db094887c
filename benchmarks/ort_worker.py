"""Time an ONNX file in ONNX Runtime, in a process of its own that never imports MXNet (run by
the benchmarks with the main venv's python, where the onnxruntime extra is installed):

    .venv/bin/python benchmarks/ort_worker.py MODEL.onnx '{"batch": 32, "run_seconds": 0.5,
        "repeats": 5, "latency_iters": 50, "check_input": "x.npy", "check_logits": "y.npy",
        "mode": "onnxruntime", "model": "inception_mnist"}'

ONNX Runtime runs with every graph optimisation (``ORT_ENABLE_ALL``) and its default threads.
Before timing, its logits of ``check_input`` must be MXNet's (``check_logits``;
``_peer.check_same_function``), and the timed batch is made of that input. With ``"profile": N``
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

from _peer import batch_of, check_same_function
from _timing import time_calls


def main(path, spec):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    calls = spec.get("profile")
    tmp = tempfile.TemporaryDirectory() if calls else None
    if calls:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp.name, "ort")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [spec["batch"]] + [int(d) for d in inp.shape[1:]]
    dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
    parity = {}
    if "check_input" in spec:
        parity = check_same_function(lambda x: sess.run(None, {inp.name: x})[0], spec)
        x = batch_of(spec, dtype)
    else:
        x = (np.random.RandomState(0).rand(*shape) * (255 if dtype == np.uint8 else 1)).astype(
            dtype)
    feed = {inp.name: x}
    if calls:
        return _profile(sess, feed, calls, tmp)
    res = time_calls(lambda: sess.run(None, feed), spec["batch"], spec["run_seconds"],
                     spec["repeats"], spec["latency_iters"], lambda out, all_=False: None)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["onnxruntime"] = ort.__version__
    res.update(parity)
    res["mxnet_imported"] = "mxnet" in sys.modules  # must stay False
    return res


def _profile(sess, feed, calls, tmp, warm=5):
    """Kernel ms per call of each node, over ``calls`` runs after ``warm`` runs."""
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
