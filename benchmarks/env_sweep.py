"""The same benchmark under different MXNet / OpenMP environment settings (the engine, threads
and oneDNN findings of docs/benchmarks.md and docs/training.md).

    python benchmarks/env_sweep.py --modes static,recommended,train-hybrid --batch-sizes 1,32,100

Each setting is applied to the benchmark's worker processes only (they read it at start-up).
"""
import argparse
import os

from throughput import run

SETTINGS = ["", "MXNET_MKLDNN_ENABLED=0", "MXNET_ENGINE_TYPE=NaiveEngine",
            "MXNET_ENGINE_TYPE=ThreadedEngine", "OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE",
            "MXNET_CPU_WORKER_NTHREADS=2 OMP_NUM_THREADS=1"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--modes", default="static,recommended,train-hybrid")
    p.add_argument("--batch-sizes", default="1,32,100")
    p.add_argument("--settings", default=";".join(SETTINGS),
                   help="';'-separated VAR=VALUE groups; an empty group is the default")
    args = p.parse_args()
    modes = args.modes.split(",")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    cols = [(m, b) for m in modes for b in batches]
    print("| setting | " + " | ".join(f"{m} b{b}: images/s (p50 ms)" for m, b in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    base_env = dict(os.environ)
    for setting in args.settings.split(";"):
        os.environ.clear()
        os.environ.update(base_env)
        os.environ.update(kv.split("=", 1) for kv in setting.split())
        rows = run([args.model], modes, batches, run_seconds=0.5, repeats=3, latency_iters=30,
                   log=lambda *a: None)
        cells = {(r["mode"], r["batch"]): r for r in rows}
        out = []
        for key in cols:
            r = cells[key]
            out.append(r.get("error") or f"{r['images_per_sec']:,.0f} ({r['p50_ms']:.2f})")
        print(f"| {setting or 'default'} | " + " | ".join(out) + " |", flush=True)
    os.environ.clear()
    os.environ.update(base_env)


if __name__ == "__main__":
    main()
