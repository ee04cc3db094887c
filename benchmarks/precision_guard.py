"""The accuracy guard on ImageNet networks trained for real (issue 29): each network is trained
on MNIST digits written as image folders (a real labelled task), at the smallest square input it
takes, then exported at INT8 (MXNet's oneDNN graph and ONNX Runtime's QDQ model, calibrated on
training digits) and bfloat16, each guarded on held-out test digits. Prints, per network, the
float32 accuracy and each lower-precision graph's accuracy, drop in points and top-1 agreement:

    python benchmarks/precision_guard.py --mnist-dir ../shared/data/mnist \\
        --networks googlenet_bn,inception_v3 --train-per-class 500 --test-per-class 100

No pretrained ImageNet weights can be downloaded here, so the networks start from random
weights (``--recipe``'s initialisation) and are trained, not fine-tuned; the Trainer and the
training loop are the library's (:func:`inceptionzoo.train.build_trainer`,
:func:`inceptionzoo.training.train_one_epoch`, :func:`~inceptionzoo.training.validate`).

``--save-params DIR`` keeps each trained network's weights; ``--params-from DIR`` guards those
weights in a fresh process without training (MXNet's INT8 calibration of Inception-ResNet-v2
could not read three layers' outputs when it ran in the process that had just trained it; with
the weights loaded in a new process it could: docs/deploy.md, "Lower precision"):

    python benchmarks/precision_guard.py --mnist-dir ../shared/data/mnist \\
        --networks inception_resnet_v2 --train-per-class 1000 --save-params trained/
    python benchmarks/precision_guard.py --mnist-dir ../shared/data/mnist \\
        --networks inception_resnet_v2 --train-per-class 1000 --params-from trained/
"""
import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inceptionzoo  # noqa: E402,F401  (before MXNet: its threads, inceptionzoo._openmp)

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

from _sample_data import write_image_folder  # noqa: E402


def write_folders(root, mnist_dir, train_per_class, test_per_class, calib_per_class):
    """``train/`` and ``calib/`` from MNIST's training split (disjoint digits), ``val/`` from
    its test split; subfolders ``0`` .. ``9``."""
    from inceptionzoo.mnist import load_mnist

    x, y = load_mnist(mnist_dir, train=True)
    tx, ty = load_mnist(mnist_dir, train=False)
    first, rest = [], []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        first.append(idx[:train_per_class])
        rest.append(idx[train_per_class:train_per_class + calib_per_class])
    first, rest = np.concatenate(first), np.concatenate(rest)
    return {"train": write_image_folder(os.path.join(root, "train"), x[first], y[first]),
            "calib": write_image_folder(os.path.join(root, "calib"), x[rest], y[rest]),
            "val": write_image_folder(os.path.join(root, "val"), tx, ty,
                                      per_class=test_per_class)}


def smallest_side(net):
    """The smallest square input the network takes."""
    return max(net.taken_sizes(0)[0], net.taken_sizes(1)[0])


def _network(name):
    """The network with 10 classes at its smallest square input: ``(net, side)``."""
    from inceptionzoo import get_model

    net = get_model(name, classes=10)
    side = smallest_side(net)
    net.info = dataclasses.replace(net.info, input_shape=(net.info.input_shape[0], side, side),
                                   resize_size=side, crop_pct=1.0, class_names=None)
    return net, side


def _validation(folders, net):
    from inceptionzoo.datasets import FolderSource

    return FolderSource(folders["val"], net.info, train=False)


def train_network(name, folders, epochs, batch_size, recipe_name, log):
    """The network trained on ``folders['train']`` at its smallest input; ``(net, side,
    validation accuracy)``."""
    from inceptionzoo.datasets import FolderSource
    from inceptionzoo.kvstore import open_kvstore
    from inceptionzoo.recipes import RECIPES, initializer
    from inceptionzoo.train import build_trainer
    from inceptionzoo.training import train_one_epoch, validate

    mx.random.seed(0)
    np.random.seed(0)
    net, side = _network(name)
    recipe = dataclasses.replace(RECIPES[recipe_name], epochs=epochs, batch_size=batch_size)
    net.initialize(initializer(recipe.init))
    net.hybridize(static_alloc=True, static_shape=True)
    # no augmentation: ImageNet's random crops and mirroring would change what a digit is
    train_src = FolderSource(folders["train"], net.info, train=False)
    val_src = _validation(folders, net)
    steps = train_src.steps(batch_size)
    trainer, step_size = build_trainer(recipe, net, open_kvstore(None, [mx.cpu()], batch_size),
                                       steps)
    for epoch in range(epochs):
        rng = np.random.RandomState(epoch)
        stats = train_one_epoch(net, trainer, train_src.epoch(batch_size, rng), [mx.cpu()],
                                step_size=step_size, total=steps)
        acc = validate(net, val_src, mx.cpu())
        log(f"# {name} at {side}x{side}: epoch {epoch + 1}/{epochs} loss {stats.loss:.4f}, "
            f"{stats.seconds:.0f} s, validation accuracy {acc:.4f}")
    return net, side, acc


def trained_network(name, folders, params_dir, log):
    """The network with the weights a run with ``--save-params`` kept; ``(net, side,
    validation accuracy)``."""
    from inceptionzoo.training import validate

    net, side = _network(name)
    net.load_parameters(os.path.join(params_dir, f"{name}-{side}.params"), ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    acc = validate(net, _validation(folders, net), mx.cpu())
    log(f"# {name} at {side}x{side}: weights of {params_dir}, validation accuracy {acc:.4f}")
    return net, side, acc


def guarded_exports(net, side, folders, out, calibration_size, max_drop):
    """INT8 (with its ONNX Runtime twin) and bf16 exports of ``net``; their guard records."""
    from inceptionzoo.export import export

    rows = {}
    shape = (net.info.input_shape[0], side, side)
    for precision in ("int8", "bf16"):
        kwargs = dict(input_shape=shape, precision=precision, holdout=folders["val"],
                      max_accuracy_drop=max_drop)
        if precision == "int8":
            kwargs.update(calibration=folders["calib"], calibration_size=calibration_size,
                          onnx=True)
        t0 = time.perf_counter()
        paths = export(net, os.path.join(out, precision, ""), **kwargs)
        with open(paths["meta"]) as f:
            meta = json.load(f)
        rows[f"{precision} (MXNet)"] = dict(meta["guard"], seconds=time.perf_counter() - t0)
        if "onnx" in meta:
            rows[f"{precision} (ONNX Runtime)"] = meta["onnx"]["guard"]
    return rows


def _row(r):
    return (f"| {r['network']} | {r['input']} | {r['graph']} | {r['accuracy_fp32']:.4f} | "
            f"{r['accuracy']:.4f} | {r['drop_points']:.2f} | {r['agreement']:.2%} | "
            f"{r['holdout']} |")


def _write_json(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rows, f, indent=1)
    os.replace(tmp, path)


def main(argv=None):
    """Train, export, print the guards' table (and ``--json``)."""
    p = argparse.ArgumentParser(prog="benchmarks/precision_guard.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--mnist-dir", default=os.environ.get("INCEPTIONZOO_TEST_MNIST"),
                   required=not os.environ.get("INCEPTIONZOO_TEST_MNIST"))
    p.add_argument("--networks", default="googlenet_bn,inception_v3")
    p.add_argument("--train-per-class", type=int, default=500)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--calib-per-class", type=int, default=50)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--recipe", default="default")
    p.add_argument("--max-accuracy-drop", type=float, default=0.5)
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--save-params", metavar="DIR",
                   help="keep each trained network's weights there (NAME-SIDE.params)")
    p.add_argument("--params-from", metavar="DIR",
                   help="no training: the weights a run with --save-params kept there")
    args = p.parse_args(argv)
    rows = []
    header = ("| network | input | graph | fp32 accuracy | accuracy | drop (points) | agreement "
              "| held-out digits |\n|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="precision-guard-") as tmp:
        folders = write_folders(tmp, args.mnist_dir, args.train_per_class,
                                args.test_per_class, args.calib_per_class)
        for name in args.networks.split(","):
            log = lambda m: print(m, flush=True)  # noqa: E731
            if args.params_from:
                net, side, acc = trained_network(name, folders, args.params_from, log)
            else:
                net, side, acc = train_network(name, folders, args.epochs, args.batch_size,
                                               args.recipe, log)
            if args.save_params and not args.params_from:
                os.makedirs(args.save_params, exist_ok=True)
                net.save_parameters(os.path.join(args.save_params, f"{name}-{side}.params"))
            guards = guarded_exports(net, side, folders, os.path.join(tmp, name),
                                     10 * args.calib_per_class, args.max_accuracy_drop)
            done = [{"network": name, "input": side, "trained_accuracy": acc, "graph": what,
                     "accuracy_fp32": g["accuracy_fp32"], "accuracy": g["accuracy"],
                     "drop_points": g["accuracy_drop_points"], "agreement": g["agreement"],
                     "holdout": g["holdout"]["count"]} for what, g in guards.items()]
            rows += done
            # each network's rows as soon as they exist: a later network can take an hour
            print("\n".join([header] + [_row(r) for r in done]), flush=True)
            if args.json:
                _write_json(args.json, rows)
    print("\n".join([header] + [_row(r) for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
