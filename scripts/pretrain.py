"""Train a model with the `pretrain` recipe and ship its weights inside the package.

    python scripts/pretrain.py --model inception_mnist --data-dir ../shared/data/mnist

Writes src/inceptionzoo/pretrained/NAME-<sha1[:8]>.params and records the full SHA-1, the test
accuracy (re-measured from the shipped file), the recipe and this command, with the model's
preprocessing (its WeightsSpec), in
src/inceptionzoo/pretrained/manifest.json, which the model registry reads.
"""
import argparse
import dataclasses
import json
import os
import shlex
import shutil
import sys

from inceptionzoo import model_weights
from inceptionzoo._io import atomic_path, sha1_file, write_json
from inceptionzoo.train import evaluate, train
from inceptionzoo.weights import manifest_path, shipped_dir


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--recipe", default="pretrain")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="training folder (default runs/pretrain-MODEL)")
    args = p.parse_args()
    out = args.out or os.path.join("runs", f"pretrain-{args.model}")
    m = train(args.model, data_dir=args.data_dir, recipe=args.recipe, epochs=args.epochs,
              seed=args.seed, out=out, resume=True, progress=False)
    sha1 = sha1_file(m["params"])
    dst = os.path.join(shipped_dir(), f"{args.model}-{sha1[:8]}.params")
    with atomic_path(dst) as tmp:
        shutil.copyfile(m["params"], tmp)
    r = evaluate(args.model, params=dst, data_dir=args.data_dir)
    manifest = {}
    if os.path.isfile(manifest_path()):
        with open(manifest_path()) as f:
            manifest = json.load(f)
    old = manifest.get(args.model, {}).get("file")
    if old and old != os.path.basename(dst) and os.path.isfile(os.path.join(shipped_dir(), old)):
        os.remove(os.path.join(shipped_dir(), old))
    spec = dataclasses.replace(
        model_weights(args.model)[0], file=os.path.basename(dst), sha1=sha1,
        accuracy=r["accuracy"], dataset="MNIST test split (10,000 images)", recipe=m["recipe"],
        seed=args.seed,
        command="python scripts/pretrain.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    manifest[args.model] = spec.to_dict()
    write_json(manifest_path(), manifest, sort_keys=True)
    print(json.dumps(manifest[args.model], indent=2))


if __name__ == "__main__":
    main()
