"""The ``inceptionzoo`` command."""
import argparse
import json
import os
import sys

__all__ = ["main", "build_parser"]


def _cmd_list(args):
    from . import list_models
    from ._registry import models_markdown

    if args.markdown:
        sys.stdout.write(models_markdown())
        return 0
    for name in list_models(args.include, args.exclude):
        print(name)
    return 0


def _cmd_info(args):
    from . import model_info

    info = model_info(args.model)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    for key, value in info.to_dict().items():
        if key == "pretrained" and value:
            value = f"{value['file']} (top-1 {value['accuracy']:.4f}; {value['command']})"
        print(f"{key:>12}: {value}")
    from . import get_model
    from .cost import count

    print()
    print(count(get_model(info.name), info.input_shape).table())
    return 0


def _cmd_export(args):
    from . import get_model
    from .export import export, export_prefix

    if args.params:
        from .weights import load_params_file
        from .weights_spec import sidecar_path

        if os.path.isfile(sidecar_path(args.params)):  # converted weights: their preprocessing
            net = get_model(args.model, pretrained=args.params)
        else:
            net = get_model(args.model)
            load_params_file(net, args.params)
    elif args.pretrained:
        net = get_model(args.model, pretrained=True, root=args.root)
    else:
        raise ValueError("give --pretrained or --params FILE: an export needs trained weights")
    prefix = export_prefix(args.out, args.name or net.info.name)
    paths = export(net, prefix, preprocess=args.preprocess, onnx=args.onnx,
                   overwrite=args.overwrite, mar=args.mar)
    for role, path in paths.items():
        print(f"{role:>9}: {path}")
    return 0


def _print_predictions(paths, results, as_json):
    if as_json:
        print(json.dumps([{"file": p, "top": [{"label": lab, "probability": prob}
                                              for lab, prob in r]}
                          for p, r in zip(paths, results)]))
        return
    for p, r in zip(paths, results):
        print(f"{p}: " + ", ".join(f"{lab} ({prob:.4f})" for lab, prob in r))


def _cmd_predict(args):
    from .serving import Predictor

    pred = Predictor(args.model_dir, name=args.name)
    _print_predictions(args.images, pred.predict_files(args.images, top_k=args.top_k),
                       args.json)
    return 0


#: Where the benchmark harness lives: in the repository, beside the package (not installed).
HARNESS = os.path.join("benchmarks", "throughput.py")


def _harness_path():
    """The repository's ``benchmarks/throughput.py`` when this package runs from a checkout
    (an editable install), else None."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, HARNESS)
    return path if os.path.isfile(path) else None


def _batch_sizes(text):
    try:
        sizes = [int(b) for b in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--batch-sizes must be comma-separated integers >= 1; got {text!r}")
    return sizes


def _cmd_tune(args):
    from .serving import Predictor

    sizes = _batch_sizes(args.batch_sizes)  # before the export is loaded
    pred = Predictor(args.model_dir, name=args.name)
    choice = pred.warmup(sizes)
    path = pred.save_tuning()
    for batch, variant in choice.items():
        print(f"batch {batch:>4}: {variant}")
    print(f"saved: {path}")
    return 0


def _cmd_bench(argv):
    """``inceptionzoo bench [ARGS]``: run the checkout's benchmark harness with ``ARGS``
    (``--help`` included) in this Python; its exit status is the command's."""
    import subprocess

    path = _harness_path()
    if path is None:
        raise OSError(f"the benchmark harness is developer tooling that is not installed with "
                      f"the package: run {HARNESS} from a checkout of the inceptionzoo "
                      "repository (pip install -e . there)")
    return subprocess.call([sys.executable, path] + list(argv))


def _cmd_demo(args):
    from .demo import run

    return run(args.out)


def _leave_distributed_job(err):
    """A worker of a distributed job that fails must not exit normally: MXNet's shutdown waits
    in a barrier for the other workers, who wait for this one's gradients. Report and leave
    at once (status 2 for bad input, 1 otherwise); the launcher stops the rest of the job."""
    import traceback

    if isinstance(err, (ValueError, OSError)):
        print(f"inceptionzoo train: error: {err}", file=sys.stderr)
        code = 2
    else:
        traceback.print_exception(err)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _cmd_train(args):
    from .train import train

    try:
        m = _train_from_args(train, args)
    except BaseException as err:  # noqa: BLE001 - re-raised unless in a distributed job
        if str(args.kvstore).startswith("dist") and "DMLC_ROLE" in os.environ:
            _leave_distributed_job(err)
        raise
    if m["rank"] == 0:
        print(f"final test accuracy {m['accuracy']:.4f}" + (f"; parameters {m['params']}"
                                                             if m.get("params") else ""))
    return 0


def _train_from_args(train, args):
    return train(args.model, data_dir=args.data_dir, recipe=args.recipe, epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                 momentum=args.momentum, wd=args.wd, schedule=args.schedule, seed=args.seed,
                 ctx=args.ctx, out=args.out, resume=args.resume,
                 progress=not args.no_progress, train_data=args.train_data,
                 val_data=args.val_data, classes=args.classes, pretrained=args.pretrained,
                 freeze_features=args.freeze_features, kvstore=args.kvstore,
                 data_workers=args.data_workers, root=args.root, overwrite=args.overwrite)


def _cmd_evaluate(args):
    from .train import evaluate

    r = evaluate(args.model, params=args.params, pretrained=args.pretrained,
                 data_dir=args.data_dir, ctx=args.ctx, root=args.root, val_data=args.val_data,
                 classes=args.classes, batch_size=args.batch_size,
                 data_workers=args.data_workers)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['model']}: test accuracy {r['accuracy']:.4f} "
              f"({r['correct']}/{r['num_samples']}) with {r['params']}")
    return 0


def _cmd_convert(args):
    from .convert import convert, sidecar_path

    meta = convert(args.source, args.checkpoint, args.out, aux_logits=args.aux_logits)
    path = os.path.abspath(args.out)
    if args.json:
        print(json.dumps({"model": meta["model"], "params": path, "sha1": meta["sha1"]}))
    else:
        print(f"{meta['source']} -> {meta['model']}: {path} (SHA-1 {meta['sha1']})")
        print(f"  sidecar: {sidecar_path(path)}; input {meta['input_size']}, resize "
              f"{meta['resize_size']} ({meta['interpolation']}), mean {meta['mean']}, std "
              f"{meta['std']}")
    return 0


def _cmd_launch(args):
    from .launch import launch

    command = list(args.worker_command)
    if command and command[0] == "--":
        command = command[1:]
    env = {}
    for item in args.env or ():
        name, eq, value = item.partition("=")
        if not eq and name not in os.environ:
            raise ValueError(f"--env {item!r}: {name} is not set here: expected NAME=VALUE, or "
                             "the NAME of a variable of this environment")
        env[name] = value if eq else os.environ[name]
    return launch(command, workers=args.workers, servers=args.servers, launcher=args.launcher,
                  hostfile=args.hostfile, port=args.port, scheduler_host=args.scheduler_host,
                  timeout=args.timeout, env=env, ssh_options=args.ssh_option)


def build_parser():
    p = argparse.ArgumentParser(prog="inceptionzoo",
                                description="Inception networks for MXNet Gluon.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered models")
    s.add_argument("--include", nargs="*", default=None, help="fnmatch patterns to keep")
    s.add_argument("--exclude", nargs="*", default=None, help="fnmatch patterns to drop")
    s.add_argument("--markdown", action="store_true", help="print the docs' model table")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("info", help="metadata of a model")
    s.add_argument("model")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("train", help="train a model on MNIST, an image folder or RecordIO")
    s.add_argument("--model", default="inception_mnist")
    s.add_argument("--data-dir", help="MNIST IDX folder, or a folder with train/ + val/ image "
                   "folders, or with train.rec/.idx + val.rec/.idx (default MNIST: "
                   "$INCEPTIONZOO_DATA, then MXNet's dataset folder, downloading if needed)")
    s.add_argument("--train-data", help="training data: an image folder, a .rec file or an "
                   "MNIST folder (overrides --data-dir)")
    s.add_argument("--val-data", help="validation data, as --train-data")
    s.add_argument("--classes", type=int, help="output classes (default: the data's)")
    s.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="FILE",
                   help="start from the model's registered weights (shipped, or NAME.params "
                   "converted into the weights folder), or from a .params FILE (converted: its "
                   "sidecar's preprocessing is used): every layer but a classifier of another "
                   "size is loaded")
    s.add_argument("--freeze-features", action="store_true",
                   help="with --pretrained: train the classifier only")
    s.add_argument("--root", help="weight cache folder (default $INCEPTIONZOO_HOME)")
    s.add_argument("--recipe", default="default", help="seed, default or pretrain")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int, help="global batch (shared by all workers)")
    s.add_argument("--lr", type=float)
    s.add_argument("--optimizer", help="any MXNet optimizer name: sgd, nag, adam, ...")
    s.add_argument("--momentum", type=float)
    s.add_argument("--wd", type=float, help="weight decay")
    s.add_argument("--schedule", choices=["constant", "cosine"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ctx", default="cpu", help="cpu, cpu0,cpu1, gpu0,gpu1 ...")
    s.add_argument("--kvstore", help="local, device, or dist_sync / dist_device_sync / "
                   "dist_async under `inceptionzoo launch`")
    s.add_argument("--data-workers", type=int, help="image decoding threads (default <= 4)")
    s.add_argument("--out", help="folder for checkpoints, metrics.json and curves.png")
    s.add_argument("--resume", action="store_true", help="continue from the newest checkpoint "
                   "(of the run --out holds: same model and classes)")
    s.add_argument("--overwrite", action="store_true", help="replace the run --out holds "
                   "(without it, training into a folder that holds a run is an error)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="validation accuracy (MNIST test split, val/ or val.rec)")
    s.add_argument("--model", default="inception_mnist")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--params", help="a .params file (converted: with its sidecar's "
                   "preprocessing and classes)")
    g.add_argument("--pretrained", action="store_true", help="the model's registered weights "
                   "(shipped, or NAME.params converted into the weights folder)")
    s.add_argument("--root", help="weight cache folder (default $INCEPTIONZOO_HOME)")
    s.add_argument("--data-dir", help="as for train (its validation part is read)")
    s.add_argument("--val-data", help="an image folder, a .rec file or an MNIST folder")
    s.add_argument("--classes", type=int, help="output classes (default: the params file's)")
    s.add_argument("--batch-size", type=int, default=1000)
    s.add_argument("--data-workers", type=int, help="image decoding threads (default <= 4)")
    s.add_argument("--ctx", default="cpu")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("launch", help="run a command as workers of MXNet's parameter server "
                       "(scheduler, servers, workers)")
    s.add_argument("--workers", type=int, default=2, help="number of workers (1-1024)")
    s.add_argument("--servers", type=int, default=1,
                   help="number of parameter servers (1-1024)")
    s.add_argument("--launcher", choices=["local", "ssh"], default="local",
                   help="local: all processes here over loopback; ssh: on the hostfile's hosts")
    s.add_argument("--hostfile", help="ssh: one [user@]host[:port] per line (# comments)")
    s.add_argument("--ssh-option", action="append", metavar="KEY=VALUE",
                   help="ssh: an ssh_config option for every ssh, e.g. IdentityFile=KEY or "
                   "StrictHostKeyChecking=accept-new (repeatable)")
    s.add_argument("--env", action="append", metavar="NAME[=VALUE]",
                   help="a variable for every process (NAME alone: its value here); over ssh "
                   "the hosts get only these and the DMLC_* ones (repeatable)")
    s.add_argument("--port", type=int, help="scheduler port (default: a free one)")
    s.add_argument("--scheduler-host", help="ssh: this machine's address as the hosts see it")
    s.add_argument("--timeout", type=float, help="kill the job after this many seconds")
    s.add_argument("worker_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="what each worker runs")
    s.set_defaults(func=_cmd_launch)

    s = sub.add_parser("export", help="export a model to symbol JSON + params (+ ONNX)")
    s.add_argument("model")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--pretrained", action="store_true", help="the shipped weights")
    g.add_argument("--params", help="a .params file of this model")
    s.add_argument("--root", help="weight cache folder (default $INCEPTIONZOO_HOME)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--name", help="file prefix of every file the export writes (default: the "
                   "model name, as MMS expects); exports of other names share a folder")
    s.add_argument("--preprocess", action="store_true",
                   help="bake the input transform in: the graph takes raw uint8 images")
    s.add_argument("--onnx", action="store_true", help="also write NAME.onnx (opset 13)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing export")
    s.add_argument("--mar", action="store_true", help="also write NAME.mar for MXNet Model "
                   "Server (multi-model-server), with its handler inside")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("predict", help="top-k labels of images, from an export")
    s.add_argument("--model-dir", required=True, help="folder written by `export`")
    s.add_argument("--name", help="which export, if the folder holds several")
    s.add_argument("--top-k", type=int, default=3)
    s.add_argument("--json", action="store_true")
    s.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF, TIFF, WebP, "
                   "PPM) of any size: the export's evaluation transform resizes and crops")
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("tune", help="pick the inference graph per batch size now and save the "
                       "choice beside the export (NAME-tuning.json), for every later Predictor")
    s.add_argument("model_dir", help="folder written by `export`")
    s.add_argument("--name", help="which export, if the folder holds several")
    s.add_argument("--batch-sizes", default="1", help="comma-separated, e.g. 1,8,32")
    s.set_defaults(func=_cmd_tune)

    # `bench` passes everything after it to the harness (see main); listed here for --help
    sub.add_parser("bench", help="run the repository's benchmark harness, "
                   "benchmarks/throughput.py (from a checkout): `inceptionzoo bench --help`",
                   add_help=False)

    s = sub.add_parser("convert", help="a torchvision / timm / gluoncv checkpoint -> zoo "
                       ".params + sidecar JSON (see docs/weights.md)")
    s.add_argument("source", metavar="SOURCE:NAME", help="torchvision:inception_v3, "
                   "torchvision:googlenet, timm:inception_v3, timm:inception_v4, "
                   "timm:inception_resnet_v2, gluoncv:inceptionv3, gluoncv:googlenet")
    s.add_argument("checkpoint", help=".pth / .pt / .safetensors (torchvision, timm) or "
                   ".params (gluoncv)")
    s.add_argument("--out", required=True, help="the zoo .params file to write")
    s.add_argument("--aux-logits", action="store_true",
                   help="keep Inception-v3's auxiliary head (for fine-tuning)")
    s.add_argument("--json", action="store_true",
                   help='print {"model", "params", "sha1"} as JSON')
    s.set_defaults(func=_cmd_convert)

    s = sub.add_parser("demo", help="the main job of `make demo`")
    s.add_argument("--out", default="demo-out", help="where the demo writes its export")
    s.set_defaults(func=_cmd_demo)
    return p


def main(argv=None):
    """Run the ``inceptionzoo`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0, or 2 for bad input (one line on stderr, no traceback).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # every argument, --help included, belongs to the harness
        command, func, args = "bench", _cmd_bench, argv[1:]
    else:
        args = build_parser().parse_args(argv)
        command, func = args.command, args.func
    try:
        return func(args)
    except (ValueError, OSError) as err:  # bad input: one clear line, exit 2
        print(f"inceptionzoo {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
