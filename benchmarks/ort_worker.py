"""Time an ONNX file in ONNX Runtime (run by benchmarks/throughput.py with the side venv's
python, `make ort-venv`; imports no MXNet):

    .venv-ort/bin/python benchmarks/ort_worker.py MODEL.onnx '{"batch": 32, "run_seconds": 0.5,
        "repeats": 5, "latency_iters": 50}'

ONNX Runtime runs with every graph optimisation (``ORT_ENABLE_ALL``) and its default threads.
"""
import json
import resource
import sys

import numpy as np
import onnxruntime as ort

from _timing import time_calls


def main(path, spec):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [spec["batch"]] + [int(d) for d in inp.shape[1:]]
    dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
    x = (np.random.RandomState(0).rand(*shape) * (255 if dtype == np.uint8 else 1)).astype(dtype)
    feed = {inp.name: x}
    res = time_calls(lambda: sess.run(None, feed), spec["batch"], spec["run_seconds"],
                     spec["repeats"], spec["latency_iters"], lambda out, all_=False: None)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["onnxruntime"] = ort.__version__
    return res


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
