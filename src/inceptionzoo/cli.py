"""The ``inceptionzoo`` command: its arguments and their dispatch to the library.

One convention (docs/api.md, "Command line"): what a command acts on is positional and comes
first (``train MODEL``, ``evaluate MODEL``, ``info MODEL``, ``export MODEL``, ``predict
EXPORT_DIR IMAGE...``, ``tune EXPORT_DIR``, ``convert SOURCE:NAME CHECKPOINT``); ``--out`` is
always a folder and ``--name`` the file name inside it; weights are ``--pretrained [TAG]`` (the
model's default tag, or TAG) or ``--params FILE``; ``--workers`` are the processes of a
distributed job and ``--data-threads`` the image decoding threads. The spellings before this
convention still work for one release: :data:`OLD_SPELLINGS` maps each onto the new one, with
one line on stderr."""
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
        for line in _weights_lines(name, args.root) if args.weights else [name]:
            print(line)
    return 0


def _weights_lines(name, root):
    """One line per set of weights ``name`` declares: present (path, SHA-1), or the command
    that makes it."""
    from ._builder import weights_status

    return [f"{w['name']}{' (default)' if w['default'] else ''}: "
            + (f"present: {w['path']} (SHA-1 {w['sha1']})" if w["path"] else
               f"absent; get it: {w['get']}") for w in weights_status(name, root)]


def _cmd_info(args):
    from . import model_info, model_weights
    from ._builder import weights_status

    info = model_info(args.model)
    if args.json:
        print(json.dumps(dict(info.to_dict(), weights=weights_status(info.name, args.root)),
                         indent=2))
        return 0
    for key, value in info.to_dict().items():
        if key != "pretrained":  # which weights are loaded: none, here
            print(f"{key:>12}: {value}")
    print(f"{'weights':>12}:" + ("" if model_weights(info.name) else " none declared"))
    for line in _weights_lines(info.name, args.root):
        print(f"{'':>14}{line}")
    from . import get_model
    from .cost import count

    print()
    print(count(get_model(info.name), info.input_shape).table())
    return 0


def _cmd_export(args):
    from . import get_model
    from .export import export, export_prefix

    if not (args.params or args.pretrained):
        raise ValueError("give --pretrained [TAG] or --params FILE: an export needs trained "
                         "weights")
    net = get_model(args.model, pretrained=args.params or args.pretrained, root=args.root)
    prefix = export_prefix(args.out, args.name or net.info.name)
    paths = export(net, prefix, preprocess=args.preprocess, onnx=args.onnx,
                   overwrite=args.overwrite, mar=args.mar, **_precision_args(args))
    for role, path in paths.items():
        print(f"{role:>9}: {path}")
    return 0


def _precision_args(args):
    """export()'s lower-precision arguments from ``export``'s flags."""
    if args.precision == "fp32":
        given = [f for f, v in (("--calib", args.calib), ("--holdout", args.holdout)) if v]
        if given:
            raise ValueError(f"{' and '.join(given)} go with --precision int8 or bf16")
        return {}
    given = {"max_accuracy_drop": args.max_accuracy_drop, "calibration_size": args.calib_size,
             "holdout_size": args.holdout_size}  # the others: export()'s defaults
    return dict({k: v for k, v in given.items() if v is not None}, precision=args.precision,
                calibration=args.calib, holdout=args.holdout)


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

    pred = Predictor(args.model_dir, name=args.name, runtime=args.runtime)
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
    pred = Predictor(args.model_dir, name=args.name, runtime=args.runtime)
    choice = pred.warmup(sizes)
    path = pred.save_tuning()
    seconds = pred.graph.seconds
    for batch, variant in choice.items():
        timed = ", ".join(f"{r} {s * 1e3:.3f} ms" for r, s in seconds.get(batch, {}).items())
        print(f"batch {batch:>4}: {variant}" + (f" ({timed})" if timed else ""))
    if pred.graph.refused:
        print(pred.graph.refused)
    print(f"saved: {path}")
    return 0


def _cmd_serve(args):
    from .mms import serve

    return serve(args.model_dir, name=args.name, port=args.port,
                 management_port=args.management_port, batch_size=args.batch_size,
                 max_batch_delay=args.max_batch_delay, workers=args.workers, store=args.store)


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

    if args.to:
        return _cmd_convert_back(args)
    if args.out is None:
        raise ValueError("expected --out FOLDER (where NAME.params and its sidecar go)")
    path = os.path.abspath(args.out_file or _converted_path(args.source, args.out, args.name))
    meta = convert(args.source, args.checkpoint, path, aux_logits=args.aux_logits,
                   overwrite=args.overwrite)
    if args.json:
        print(json.dumps({"model": meta["model"], "params": path, "sha1": meta["sha1"]}))
    else:
        print(f"{meta['source']} -> {meta['model']}: {path} (SHA-1 {meta['sha1']})")
        print(f"  sidecar: {sidecar_path(path)}; input {meta['input_size']}, resize "
              f"{meta['resize_size']} ({meta['interpolation']}), mean {meta['mean']}, std "
              f"{meta['std']}")
    return 0


def _cmd_convert_back(args):
    """``convert --to SOURCE:NAME ZOO.params OUT``: the positionals are the zoo file and the
    checkpoint to write."""
    from .convert_back import convert_back

    given = [flag for flag, value in (("--out", args.out), ("--name", args.name),
                                      ("--aux-logits", args.aux_logits)) if value]
    if given:
        raise ValueError(f"convert --to SOURCE:NAME ZOO.params OUT takes no {', '.join(given)} "
                         "(OUT is the checkpoint to write; the auxiliary head goes back when "
                         "the zoo file has it)")
    meta = convert_back(args.to, args.source, args.checkpoint, overwrite=args.overwrite)
    if args.json:
        print(json.dumps({k: meta[k] for k in ("source", "model", "classes", "file", "sha1")}))
    else:
        print(f"{meta['model']} -> {meta['source']}: {meta['file']} ({meta['tensors']} tensors, "
              f"{meta['classes']} classes; SHA-1 {meta['sha1']})")
        print(f"  load: {meta['load']}")
    return 0


def _converted_path(source, folder, name):
    """``FOLDER/NAME.params``, ``NAME`` defaulting to ``MODEL.TAG``: the zoo model of
    ``SOURCE:NAME`` and the tag it declares for that source (where ``pretrained=TAG`` looks)."""
    from ._builder import source_path
    from .convert import _source
    from .export import export_prefix

    if name is None:
        _source(source)  # an unknown source: the converter's error, naming the known ones
        return source_path(source, folder)
    return export_prefix(folder, name) + ".params"


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
                  timeout=args.timeout, env=env, ssh_options=args.ssh_option,
                  exit_grace=args.exit_grace)


def _runtime_option(parser):
    from .runtimes import RUNTIMES

    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto (default): the export's ONNX file in ONNX Runtime where it is "
                        "faster and computes the same logits, else MXNet")


def _model_argument(s):
    """``MODEL``, the first positional argument (and ``--model``, its old spelling)."""
    s.add_argument("model", nargs="?", metavar="MODEL", help="a registered model name "
                   "(`inceptionzoo list`)")
    s.add_argument("--model", dest="old_model", help=argparse.SUPPRESS)


def _data_threads_argument(s):
    s.add_argument("--data-threads", dest="data_workers", type=int,
                   help="image decoding threads (default <= 4)")
    s.add_argument("--data-workers", dest="old_data_workers", type=int, help=argparse.SUPPRESS)


#: Each old spelling (still accepted for one release) -> the new one, by command: what the
#: deprecation line on stderr says.
OLD_SPELLINGS = {
    "train": {"--model NAME": "inceptionzoo train NAME ...",
              "no model (inception_mnist)": "inceptionzoo train inception_mnist ...",
              "--pretrained FILE": "--params FILE",
              "--data-workers N": "--data-threads N"},
    "evaluate": {"--model NAME": "inceptionzoo evaluate NAME ...",
                 "no model (inception_mnist)": "inceptionzoo evaluate inception_mnist ...",
                 "--data-workers N": "--data-threads N"},
    "predict": {"--model-dir DIR": "inceptionzoo predict DIR IMAGE ..."},
    "convert": {"--out FILE.params": "--out FOLDER --name NAME"},
}


def _deprecated(command, old):
    print(f"inceptionzoo {command}: {old} is deprecated and goes in the next release: write "
          f"{OLD_SPELLINGS[command][old]}", file=sys.stderr)


def _is_tag(model, tag):
    """Whether ``tag`` names weights of the registered model ``model``."""
    from . import model_weights

    return _registered(model) and tag.lower() in [w.tag for w in model_weights(model)]


def _registered(name):
    from ._registry import list_models

    return name.lower() in list_models()


def _settle(args):
    """Map the old spellings of ``args`` onto the new ones, one deprecation line on stderr per
    old spelling used; an argument given in both spellings, or missing, is a ``ValueError``."""
    command = args.command
    if getattr(args, "old_model", None) is not None:
        if args.model is not None:
            raise ValueError("the model is given twice (MODEL and --model, its old spelling): "
                             "give MODEL only")
        _deprecated(command, "--model NAME")
        args.model = args.old_model
    if (command in ("train", "evaluate") and args.model is None
            and isinstance(args.pretrained, str) and not os.path.exists(args.pretrained)
            and _registered(args.pretrained)):
        # `train --pretrained inception_v3 ...`: the model, with its default weights (not a
        # TAG, nor the old spelling `--pretrained FILE`: no such file)
        args.model, args.pretrained = args.pretrained, True
    if command in ("train", "evaluate") and args.model is None:
        _deprecated(command, "no model (inception_mnist)")
        args.model = "inception_mnist"
    if getattr(args, "old_data_workers", None) is not None:
        if args.data_workers is not None:
            raise ValueError("give --data-threads only (--data-workers is its old spelling)")
        _deprecated(command, "--data-workers N")
        args.data_workers = args.old_data_workers
    if command == "train":
        if isinstance(args.pretrained, str) and not _is_tag(args.model, args.pretrained):
            if args.params is not None:
                raise ValueError("give --params FILE only (--pretrained FILE is its old "
                                 "spelling)")
            _deprecated(command, "--pretrained FILE")
            args.params, args.pretrained = args.pretrained, None
        if args.params is not None and args.pretrained is not None:
            raise ValueError("--pretrained and --params FILE: expected one of them; got both")
        args.pretrained = args.params if args.params is not None else args.pretrained
    if command == "predict":
        if args.old_model_dir is not None:
            _deprecated(command, "--model-dir DIR")
            args.images.insert(0, args.model_dir)
            args.model_dir = args.old_model_dir
        if not args.images:
            raise ValueError("expected EXPORT_DIR IMAGE [IMAGE ...]; got no image")
    if command == "convert":
        args.out_file = None
        if (args.out is not None and args.out.lower().endswith(".params")
                and not os.path.isdir(args.out)):
            if args.name is not None:
                raise ValueError(f"--out is a folder (--name NAME.params goes there); got the "
                                 f"file {args.out!r}")
            _deprecated(command, "--out FILE.params")
            args.out_file = args.out
    return args


class _Parser(argparse.ArgumentParser):
    """Positional arguments may come before, between or after the options (``predict DIR
    --top-k 2 IMAGE``), as argparse's intermixed parsing allows for every command but those
    that pass a command line on (the top level, ``launch``)."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing or any(a.nargs in (argparse.REMAINDER, argparse.PARSER)
                                    for a in self._actions):
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args comes back here
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def build_parser():
    """The ``inceptionzoo`` argument parser (an argument table; :func:`main` maps the old
    spellings it still accepts onto the new ones).

    Returns
    -------
    argparse.ArgumentParser
    """
    p = _Parser(prog="inceptionzoo",
                description="Inception networks for MXNet Gluon.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered models")
    s.add_argument("--include", nargs="*", default=None, help="fnmatch patterns to keep")
    s.add_argument("--exclude", nargs="*", default=None, help="fnmatch patterns to drop")
    s.add_argument("--markdown", action="store_true", help="print the docs' model table")
    s.add_argument("--weights", action="store_true", help="each model's weights by tag "
                   "(NAME.TAG): present (path, SHA-1) or the command that makes them")
    s.add_argument("--root", help="weights folder (default $INCEPTIONZOO_HOME)")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("info", help="metadata of a model and its weights by tag")
    s.add_argument("model")
    s.add_argument("--json", action="store_true")
    s.add_argument("--root", help="weights folder (default $INCEPTIONZOO_HOME)")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("train", help="train a model on MNIST, an image folder or RecordIO")
    _model_argument(s)
    s.add_argument("--data-dir", help="MNIST IDX folder, or a folder with train/ + val/ image "
                   "folders, or with train.rec/.idx + val.rec/.idx (default MNIST: "
                   "$INCEPTIONZOO_DATA, then MXNet's dataset folder, downloading if needed)")
    s.add_argument("--train-data", help="training data: an image folder, a .rec file or an "
                   "MNIST folder (overrides --data-dir)")
    s.add_argument("--val-data", help="validation data, as --train-data")
    s.add_argument("--classes", type=int, help="output classes (default: the data's)")
    s.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="TAG",
                   help="start from the model's weights: its default tag, or TAG (`inceptionzoo "
                   "list --weights`): every layer but a classifier of another size is loaded "
                   "(--pretrained FILE: the old spelling of --params)")
    s.add_argument("--params", metavar="FILE", help="start from a .params FILE (converted: "
                   "its sidecar's preprocessing is used), loaded as --pretrained is")
    s.add_argument("--freeze-features", action="store_true",
                   help="with --pretrained or --params: train the classifier only")
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
    _data_threads_argument(s)
    s.add_argument("--out", help="folder for checkpoints, metrics.json and curves.png")
    s.add_argument("--resume", action="store_true", help="continue from the newest checkpoint "
                   "(of the run --out holds: same model and classes)")
    s.add_argument("--overwrite", action="store_true", help="replace the run --out holds "
                   "(without it, training into a folder that holds a run is an error)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="validation accuracy (MNIST test split, val/ or val.rec)")
    _model_argument(s)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--params", help="a .params file (converted: with its sidecar's "
                   "preprocessing and classes)")
    g.add_argument("--pretrained", nargs="?", const=True, default=False, metavar="TAG",
                   help="the model's weights: its default tag, or TAG (`inceptionzoo list "
                   "--weights`)")
    s.add_argument("--root", help="weight cache folder (default $INCEPTIONZOO_HOME)")
    s.add_argument("--data-dir", help="as for train (its validation part is read)")
    s.add_argument("--val-data", help="an image folder, a .rec file or an MNIST folder")
    s.add_argument("--classes", type=int, help="output classes (default: the params file's)")
    s.add_argument("--batch-size", type=int, default=1000)
    _data_threads_argument(s)
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
    s.add_argument("--exit-grace", type=float, metavar="S",
                   help="fail the job when workers still run S seconds after one exited 0 "
                   "(default 60)")
    s.add_argument("worker_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="what each worker runs")
    s.set_defaults(func=_cmd_launch)

    s = sub.add_parser("export", help="export a model to symbol JSON + params (+ ONNX)")
    s.add_argument("model")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--pretrained", nargs="?", const=True, default=False, metavar="TAG",
                   help="the model's weights: its default tag, or TAG (`inceptionzoo list "
                   "--weights`)")
    g.add_argument("--params", help="a .params file of this model (converted, a training "
                   "checkpoint, or a plain Gluon file: the network's default transform)")
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
    g = s.add_argument_group("lower precision (docs/deploy.md, 'Lower precision')")
    g.add_argument("--precision", choices=("fp32", "int8", "bf16"), default="fp32",
                   help="the graph's arithmetic (default fp32); int8 and bf16 are written "
                   "only if the accuracy guard on --holdout lets them through")
    g.add_argument("--calib", metavar="DIR|mnist:DIR",
                   help="int8 calibration images: a folder of images, or mnist:DIR (the MNIST "
                   "training split)")
    g.add_argument("--calib-size", type=int, metavar="N",
                   help="calibration images used (default 500)")
    g.add_argument("--holdout", metavar="DIR|mnist:DIR",
                   help="labelled images of the guard: a folder of class subfolders named by "
                   "the labels, or mnist:DIR (the MNIST test split); disjoint from --calib")
    g.add_argument("--holdout-size", type=int, metavar="N",
                   help="held-out images used (default all)")
    g.add_argument("--max-accuracy-drop", type=float, metavar="POINTS",
                   help="refuse the export when top-1 accuracy drops more (default 0.5)")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("predict", help="top-k labels of images, from an export")
    s.add_argument("model_dir", metavar="EXPORT_DIR", help="folder written by `export`")
    s.add_argument("--model-dir", dest="old_model_dir", help=argparse.SUPPRESS)
    s.add_argument("--name", help="which export, if the folder holds several")
    s.add_argument("--top-k", type=int, default=3)
    s.add_argument("--json", action="store_true")
    s.add_argument("images", nargs="*", metavar="IMAGE", help="one or more image files (JPEG, "
                   "PNG, BMP, GIF, TIFF, WebP, PPM) of any size: the export's evaluation "
                   "transform resizes and crops")
    _runtime_option(s)
    s.set_defaults(func=_cmd_predict)

    s = sub.add_parser("tune", help="pick the inference graph per batch size now and save the "
                       "choice beside the export (NAME-tuning.json), for every later Predictor")
    s.add_argument("model_dir", metavar="EXPORT_DIR", help="folder written by `export`")
    s.add_argument("--name", help="which export, if the folder holds several")
    s.add_argument("--batch-sizes", default="1", help="comma-separated, e.g. 1,8,32")
    _runtime_option(s)
    s.set_defaults(func=_cmd_tune)

    s = sub.add_parser("serve", help="serve an export with MXNet Model Server (the serve "
                       "extra, Java 8+) in the foreground until Ctrl-C / SIGTERM")
    s.add_argument("model_dir", metavar="EXPORT_DIR", help="folder written by `export`")
    s.add_argument("--name", help="which export, if the folder holds several (also the model "
                   "name in the URL)")
    s.add_argument("--port", type=int, default=8080, help="inference API port on 127.0.0.1 "
                   "(default 8080; MMS takes ports below 32767)")
    s.add_argument("--management-port", type=int, default=8081,
                   help="management API port on 127.0.0.1 (default 8081)")
    s.add_argument("--batch-size", type=int, help="MMS batch_size: the most requests one "
                   "handler call takes (default: the export's recorded batching, else 1)")
    s.add_argument("--max-batch-delay", type=int, metavar="MS", help="MMS max_batch_delay: how "
                   "long MMS waits to fill a batch (default: the export's, else 100)")
    s.add_argument("--workers", type=int, default=1, help="MMS worker processes (default 1)")
    s.add_argument("--store", metavar="DIR", help="folder for the model store, "
                   "config.properties and logs (default: a temporary folder, removed after)")
    s.set_defaults(func=_cmd_serve)

    # `bench` passes everything after it to the harness (see main); listed here for --help
    sub.add_parser("bench", help="run the repository's benchmark harness, "
                   "benchmarks/throughput.py (from a checkout): `inceptionzoo bench --help`",
                   add_help=False)

    s = sub.add_parser("convert", help="a torchvision / timm / gluoncv checkpoint -> zoo "
                       ".params + sidecar JSON, or back with --to (see docs/weights.md)")
    s.add_argument("source", metavar="SOURCE:NAME", help="torchvision:inception_v3, "
                   "torchvision:googlenet, timm:inception_v3, timm:inception_v4, "
                   "timm:inception_resnet_v2, gluoncv:inceptionv3, gluoncv:googlenet (with "
                   "--to: the zoo .params file)")
    s.add_argument("checkpoint", metavar="CHECKPOINT", help=".pth / .pt / .safetensors "
                   "(torchvision, timm) or .params (gluoncv) (with --to: the checkpoint to "
                   "write)")
    s.add_argument("--out", metavar="FOLDER", help="output folder: NAME.params "
                   "and its sidecar NAME.json go there (the weights folder, ~/.inceptionzoo, for "
                   "get_model(MODEL, pretrained=TAG))")
    s.add_argument("--name", help="file name of the weights, without .params (default: "
                   "MODEL.TAG, the tag the model gives the source: where --pretrained TAG "
                   "looks)")
    s.add_argument("--aux-logits", action="store_true",
                   help="keep Inception-v3's auxiliary head (for fine-tuning)")
    s.add_argument("--to", metavar="SOURCE:NAME", help="the way back: `convert --to "
                   "SOURCE:NAME ZOO.params OUT` writes the zoo file's weights as a checkpoint of "
                   "the source (OUT: .pth / .pt / .safetensors, or .params for gluoncv)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace an existing output (else it is refused)")
    s.add_argument("--json", action="store_true",
                   help='print {"model", "params", "sha1"} as JSON (with --to: {"source", '
                   '"model", "classes", "file", "sha1"})')
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
        if command != "bench":
            args = _settle(args)
        return func(args)
    except (ValueError, OSError) as err:  # bad input: one clear line, exit 2
        print(f"inceptionzoo {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
