"""What the serving graph's own work costs per call (issue 29, item 1): its ONNX Runtime
session called directly, against the graph's ``run`` (no input check) and the graph's call
(input check, route, re-check timing), with and without the re-check, timed in interleaved
rounds in one process, on an ``'auto'`` load of the export whose choice for the size is ONNX
Runtime (the size is served by ONNX Runtime for this comparison):

    python benchmarks/serving_overhead.py --model inception_mnist --batch-sizes 1,32 \
        --after-switch 10

``--after-switch`` also times each of a runtime's first calls after the other runtime ran
(what the re-check's probes see: :class:`inceptionzoo.runtimes.SteadyRace`).

At batch 1 of the MNIST network a call takes ~140 microseconds, so each microsecond of Python
around it is 0.7% of the throughput.
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inceptionzoo  # noqa: E402,F401  (before MXNet: its threads)

from race_stability import _export, export_arguments  # noqa: E402
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


def after_switch(graph, batch, calls, repeats=30):
    """Milliseconds of each of the first ``calls`` calls of one runtime right after ``calls``
    calls of the other (medians over ``repeats``), both ways, with each way's steady call (the
    last of the run) for reference: how long a probe must run before its time says something
    about the runtime (:class:`inceptionzoo.runtimes.SteadyRace`, ``settle``).

    Returns
    -------
    dict
        ``'onnxruntime after mxnet'`` / ``'mxnet after onnxruntime'`` -> list of
        ``(ms since the switch, ms of the call)``.
    """
    import statistics

    from inceptionzoo.runtimes import sample_input

    x = sample_input(batch, graph.sample_shape, graph.dtype)
    graph.ort.open_all()
    ways = {"mxnet": ("mxnet", None), "onnxruntime": graph._plan(batch)[0]}
    if ways["onnxruntime"][0] != "onnxruntime":
        ways["onnxruntime"] = ("onnxruntime", graph.ort.threads.get(batch, 0))
    runs = {f"{a} after {b}": [] for a, b in (("onnxruntime", "mxnet"),
                                              ("mxnet", "onnxruntime"))}
    for _ in range(repeats):
        for a, b in (("onnxruntime", "mxnet"), ("mxnet", "onnxruntime")):
            for _ in range(calls):
                graph._compute(ways[b], x)
            start, seq = time.perf_counter(), []
            for _ in range(calls):
                t0 = time.perf_counter()
                graph._compute(ways[a], x)
                seq.append(((t0 - start) * 1e3, (time.perf_counter() - t0) * 1e3))
            runs[f"{a} after {b}"].append(seq)
    return {k: [(statistics.median(s[i][0] for s in v), statistics.median(s[i][1] for s in v))
                for i in range(calls)] for k, v in runs.items()}


def main(argv=None):
    """Export (unless given), load with 'auto', time the layers per batch size."""
    from inceptionzoo.serving_core import load_graph

    p = argparse.ArgumentParser(prog="benchmarks/serving_overhead.py",
                                description=__doc__.split("\n\n")[0])
    export_arguments(p)
    p.add_argument("--batch-sizes", default="1,32")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--after-switch", type=int, default=0, metavar="CALLS",
                   help="also time each of the first CALLS calls of a runtime after the other's")
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
        if args.after_switch:
            print("\n| batch | runtime | call after the switch (ms since it: ms of the call) "
                  "| last / first |\n|---|---|---|---:|")
            for b in sizes:
                for way, seq in after_switch(graph, b, args.after_switch).items():
                    calls = " ".join(f"{t:.1f}: {ms:.2f}" for t, ms in seq)
                    print(f"| {b} | {way} | {calls} | {seq[-1][1] / seq[0][1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
