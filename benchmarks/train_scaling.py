"""Training images/s of one process against N local workers of MXNet's parameter server
(`inceptionzoo launch --workers N -- inceptionzoo train MODEL --kvstore dist_sync`), on the same
MNIST images, global batch and steps. Prints a table from each run's metrics.json.

    python benchmarks/train_scaling.py --mnist-dir ../shared/data/mnist --images 6000 \
        --batch-size 100 --workers 2 --epochs 1

The throughput of a run is its global images per second over its epochs (all workers
together), timed by the training loop (start-up and evaluation excluded).
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

from inceptionzoo._text import text_table
from _sample_data import write_mnist_subset


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist-dir", required=True)
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--recipe", default="seed")
    args = p.parse_args(argv)
    for name in ("images", "batch_size", "epochs", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_mnist_subset(os.path.join(tmp, "data"), args.mnist_dir, args.images, 500)
        common = ["train", args.model, "--data-dir", data, "--recipe", args.recipe,
                  "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
                  "--no-progress"]
        setups = [("1 process", [exe] + common + ["--out", os.path.join(tmp, "one")], "one"),
                  (f"{args.workers} workers + 1 server (dist_sync, local)",
                   [exe, "launch", "--workers", str(args.workers), "--servers", "1", "--", exe]
                   + common + ["--kvstore", "dist_sync", "--out", os.path.join(tmp, "dist")],
                   "dist")]
        for label, cmd, out in setups:
            run(cmd)
            with open(os.path.join(tmp, out, "metrics.json")) as f:
                m = json.load(f)
            secs = sum(e["seconds"] for e in m["epochs"])
            images = sum(e["images_per_sec"] * e["seconds"] for e in m["epochs"])
            rows.append((label, m["num_workers"], args.batch_size,
                         args.batch_size // m["num_workers"],
                         f"{secs:.1f}", f"{images / secs:,.0f}",
                         f"{m['accuracy']:.4f}"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model}, {args.images} MNIST training images, {args.epochs} epoch(s), recipe "
          f"{args.recipe}; {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load:.1f}, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC\n")
    print(text_table(["setup", "workers", "global batch", "per worker", "train s",
                      "images/s", "test accuracy"], rows, right={1, 2, 3, 4, 5, 6}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
