"""What one ``asnumpy()`` on the user's thread does to MXNet's speed afterwards
(docs/benchmarks.md, "What a probe sees"; :func:`inceptionzoo._openmp.serial_calling_thread`):

    python benchmarks/calling_thread_team.py --model inception_mnist --batch-sizes 1,32

In fresh processes, one per setting of the calling thread's OpenMP threads (the package's 1, and
2 as before it set it), the export's MXNet graph (``load_graph(DIR, 'mxnet')``) is timed per
batch size before and after one ``asnumpy()`` of a convolution's output on the calling thread
(oneDNN reorders its layout there), and the process's thread count is read before and after.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from race_stability import _export, export_arguments  # noqa: E402


def worker(folder, sizes, threads):
    """One process: ``{"before": {b: ms}, "after": {b: ms}, "threads": [before, after]}``."""
    import inceptionzoo  # noqa: F401  (before MXNet: its threads)
    import mxnet as mx
    from inceptionzoo.runtimes import sample_input
    from inceptionzoo.serving_core import load_graph

    if threads is not None:
        mx.base._LIB.MXSetNumOMPThreads(threads)
    graph = load_graph(folder, "mxnet", warmup=sizes)
    xs = {b: sample_input(b, graph.sample_shape, graph.dtype) for b in sizes}

    def ms(b):
        n = max(20, 400 // b)
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                graph(xs[b])
            rounds.append((time.perf_counter() - t0) / n * 1e3)
        return statistics.median(rounds)

    def count():
        return len(os.listdir("/proc/self/task"))

    y = mx.nd.Convolution(mx.nd.ones((1, 8, 28, 28)), mx.nd.ones((8, 8, 3, 3)), kernel=(3, 3),
                          num_filter=8, no_bias=True)
    y.wait_to_read()
    res = {"before": {b: ms(b) for b in sizes}, "threads": [count()]}
    y.asnumpy()  # the reorder out of oneDNN's layout, on this thread
    res["threads"].append(count())
    res["after"] = {b: ms(b) for b in sizes}
    return res


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks/calling_thread_team.py",
                                description=__doc__.split("\n\n")[0])
    export_arguments(p)
    p.add_argument("--batch-sizes", default="1,32")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(worker(spec["folder"], spec["sizes"], spec["threads"])))
        return 0
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print("| calling thread's OpenMP threads | threads before / after | "
          + " | ".join(f"b{b} ms before | b{b} ms after" for b in sizes) + " |")
    print("|---|---|" + "---:|---:|" * len(sizes))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.export or _export(args.model, tmp)
        for threads, label in ((None, "1 (the package's)"), (2, "2 (before)")):
            spec = json.dumps({"folder": folder, "sizes": sizes, "threads": threads})
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", spec],
                                 capture_output=True, text=True, check=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            cells = " | ".join(f"{res['before'][str(b)]:.2f} | {res['after'][str(b)]:.2f}"
                               for b in sizes)
            print(f"| {label} | {res['threads'][0]} / {res['threads'][1]} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
