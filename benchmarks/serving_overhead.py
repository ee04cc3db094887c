"""What the serving graph's own work costs per call (issue 29, item 1): its ONNX Runtime
session called directly, against the graph's ``run`` (no input check) and the graph's call
(input check, route, re-check timing), with and without the re-check, timed in interleaved
rounds in one process, on an ``'auto'`` load of the export whose choice for the size is ONNX
Runtime (the size is served by ONNX Runtime for this comparison):

    python benchmarks/serving_overhead.py --model inception_mnist --batch-sizes 1,32

At batch 1 of the MNIST network a call takes ~140 microseconds, so each microsecond of Python
around it is 0.7% of the throughput.
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inceptionzoo  # noqa: E402,F401  (before MXNet: its threads)

from race_stability import _export  # noqa: E402
from serving_options import timed  # noqa: E402


def layers(graph, batch):
    """The callables timed for one batch size, from the bare session to the full call."""
    from inceptionzoo.runtimes import sample_input

    x = sample_input(batch, graph.sample_shape, graph.dtype)
    graph.choice = {**graph.choice, batch: "onnxruntime"}
    route = graph._route(batch)
    session = graph.ort.sessions[route[1]]
    feed = {graph.ort.input_name: x}
    every = graph._race.every

    def no_recheck():
        graph._race.every = float("inf")
        try:
            return graph(x)
        finally:
            graph._race.every = every

    return {"session.run": lambda: session.run(None, feed),
            "graph.run (no input check)": lambda: graph.run(x),
            "graph(x) without re-check": no_recheck,
            "graph(x)": lambda: graph(x)}


def main(argv=None):
    """Export (unless given), load with 'auto', time the layers per batch size."""
    from inceptionzoo.serving_core import load_graph

    p = argparse.ArgumentParser(prog="benchmarks/serving_overhead.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--export", help="an export folder with an ONNX file (default: made here)")
    p.add_argument("--batch-sizes", default="1,32")
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args(argv)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print("| batch | call | microseconds per call | / session.run |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        graph = load_graph(args.export or _export(args.model, tmp), "auto", warmup=sizes)
        for b in sizes:
            rates = timed(layers(graph, b), b, rounds=args.rounds)
            base = rates["session.run"]
            for name, rate in rates.items():
                print(f"| {b} | {name} | {b / rate * 1e6:,.1f} | {base / rate:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
