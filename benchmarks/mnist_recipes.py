"""Train inception_mnist with each recipe and several seeds on real MNIST; print a markdown
table of test accuracy after the last epoch and seconds per epoch (the figures of
docs/training.md).

    python benchmarks/mnist_recipes.py --data-dir ../shared/data/mnist \
        --recipes seed,default --seeds 0,1,2 --json runs/recipes.json
"""
import argparse
import os
import platform
import statistics

from inceptionzoo._io import write_json  # before MXNet: its threads (inceptionzoo._openmp)
from inceptionzoo.train import train

import mxnet as mx  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--recipes", default="seed,default")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, help="override every recipe's epochs")
    p.add_argument("--json", help="also write the raw results here")
    args = p.parse_args()
    runs = []
    for recipe in args.recipes.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            m = train(args.model, data_dir=args.data_dir, recipe=recipe, seed=seed,
                      epochs=args.epochs, progress=False, log=lambda *a: None)
            ep = m["epochs"]
            runs.append({"recipe": recipe, "seed": seed, "epochs": len(ep),
                         "accuracy": m["accuracy"],
                         "seconds_per_epoch": statistics.mean(e["seconds"] for e in ep),
                         "images_per_sec": statistics.mean(e["images_per_sec"] for e in ep)})
            print(f"# {recipe} seed {seed}: {m['accuracy']:.4f}, "
                  f"{runs[-1]['seconds_per_epoch']:.1f} s/epoch", flush=True)
    print(f"\n{args.model} on MNIST (60,000 train / 10,000 test), MXNet {mx.__version__}, "
          f"{os.cpu_count()} CPU cores ({platform.machine()})\n")
    print("| recipe | epochs | seed | test accuracy | s / epoch | train images/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['recipe']} | {r['epochs']} | {r['seed']} | {r['accuracy']:.4f} | "
              f"{r['seconds_per_epoch']:.1f} | {r['images_per_sec']:.0f} |")
    for recipe in args.recipes.split(","):
        acc = [r["accuracy"] for r in runs if r["recipe"] == recipe]
        sec = [r["seconds_per_epoch"] for r in runs if r["recipe"] == recipe]
        print(f"| **{recipe} mean** | | | **{statistics.mean(acc):.4f}** | "
              f"{statistics.mean(sec):.1f} | |")
    if args.json:
        write_json(args.json, runs)


if __name__ == "__main__":
    main()
