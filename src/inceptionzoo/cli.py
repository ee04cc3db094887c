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
import contextlib
import json
import os
import sys

from ._deprecation import deprecated
from .errors import InceptionZooError

__all__ = ["main", "build_parser"]


def _cmd_list(args):
    from . import list_models
    from ._registry import models_markdown

    names = list_models(args.include, args.exclude)
    if args.json:
        print(json.dumps(names))
    elif args.markdown:
        sys.stdout.write(models_markdown(names))
    else:
        for name in names:
            for line in _weights_lines(name, args.weights_dir) if args.weights else [name]:
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
        print(json.dumps(dict(info.to_dict(), weights=weights_status(info.name, args.weights_dir)),
                         indent=2))
        return 0
    for key, value in info.to_dict().items():
        if key != "pretrained":  # which weights are loaded: none, here
            print(f"{key:>12}: {value}")
    print(f"{'weights':>12}:" + ("" if model_weights(info.name) else " none declared"))
    for line in _weights_lines(info.name, args.weights_dir):
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
        raise InceptionZooError("give --pretrained [TAG] or --params FILE: an export needs "
                                "trained weights")
    net = get_model(args.model, pretrained=args.params or args.pretrained,
                    root=args.weights_dir)
    prefix = export_prefix(args.out, args.name or net.info.name)
    paths = export(net, prefix, preprocess=args.preprocess, onnx=args.onnx,
                   overwrite=args.overwrite, mar=args.mar, **_precision_args(args))
    _report(args, paths, [f"{role:>9}: {path}" for role, path in paths.items()])
    return 0


def _precision_args(args):
    """export()'s lower-precision arguments from ``export``'s flags."""
    if args.precision == "fp32":
        given = [f for f, v in (("--calib", args.calib), ("--holdout", args.holdout)) if v]
        if given:
            raise InceptionZooError(f"{' and '.join(given)} go with --precision int8 or bf16")
        return {}
    given = {"max_accuracy_drop": args.max_accuracy_drop, "calibration_size": args.calib_size,
             "holdout_size": args.holdout_size}  # the others: export()'s defaults
    return dict({k: v for k, v in given.items() if v is not None}, precision=args.precision,
                calibration=args.calib, holdout=args.holdout)


def _report(args, data, lines):
    """Print what a command did: ``data`` as JSON with ``--json``, else ``lines``."""
    if getattr(args, "json", False):
        print(json.dumps(data))
    else:
        for line in lines:
            print(line)


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
        raise InceptionZooError(f"--batch-sizes must be comma-separated integers >= 1; got "
                                f"{text!r}")
    return sizes


def _cmd_tune(args):
    from .serving import Predictor

    sizes = _batch_sizes(args.batch_sizes)  # before the export is loaded
    pred = Predictor(args.model_dir, name=args.name, runtime=args.runtime)
    choice = pred.warmup(sizes)
    path = pred.save_tuning()
    seconds = pred.graph.seconds
    lines = [f"batch {batch:>4}: {variant}" + (
        " (" + ", ".join(f"{r} {s * 1e3:.3f} ms" for r, s in seconds.get(batch, {}).items())
        + ")" if seconds.get(batch) else "") for batch, variant in choice.items()]
    if any("threads=" in str(k) for timed in seconds.values() for k in timed):
        lines.append("threads=0: ONNX Runtime's default, a thread pool over the cores; "
                     "threads=1: one thread, no hand-over between threads (it can win at "
                     "small batches); the faster one is kept")
    if pred.graph.refused:
        lines.append(pred.graph.refused)
    lines.append(f"saved: {path}")
    _report(args, {"choice": {str(b): str(v) for b, v in choice.items()},
                   "seconds": {str(b): s for b, s in seconds.items()},
                   "refused": pred.graph.refused or None, "tuning": path}, lines)
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
    # the harness's main with this command's name in its usage and errors
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import throughput; "
            "sys.exit(throughput.main(sys.argv[1:], prog='inceptionzoo bench'))")
    return subprocess.call([sys.executable, "-c", code, os.path.dirname(path)] + list(argv))


def _cmd_demo(args):
    from .demo import run

    return run(args.out, as_json=args.json)


def _cmd_examples(args):
    from .mnist import write_examples

    paths = write_examples(args.out, overwrite=args.overwrite)
    _report(args, paths, [f"wrote {len(paths)} real MNIST test digits (digit-LABEL-testINDEX.png)"
                          f" to {args.out}"] + [f"  {p}" for p in paths])
    return 0


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

    if args.out is None:
        args.out = _default_run_folder(args.model, reuse=args.resume or args.overwrite or (
            str(args.kvstore).startswith("dist") and "DMLC_ROLE" in os.environ))
    try:
        m = _train_from_args(train, args)
    except BaseException as err:  # noqa: BLE001 - re-raised unless in a distributed job
        if str(args.kvstore).startswith("dist") and "DMLC_ROLE" in os.environ:
            _leave_distributed_job(err)
        raise
    if m["rank"] == 0:
        _report(args, {k: v for k, v in m.items() if k != "net"},
                [f"final test accuracy {m['accuracy']:.4f}"
                 + (f"; saved {m['params']}" if m.get("params") else "")])
    return 0


def _default_run_folder(model, reuse):
    """``runs/MODEL``, or with ``reuse`` false and that folder holding files, the first
    ``runs/MODEL-2``, ``runs/MODEL-3`` ... that does not: a new run never lands on an old one."""
    base = os.path.join("runs", model.lower())
    path, n = base, 1
    while not reuse and os.path.isdir(path) and os.listdir(path):
        n += 1
        path = f"{base}-{n}"
    return path


def _train_from_args(train, args):
    return train(args.model, data_dir=args.data_dir, recipe=args.recipe, epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                 momentum=args.momentum, wd=args.wd, schedule=args.schedule, seed=args.seed,
                 ctx=args.ctx, out=args.out, resume=args.resume,
                 progress=not args.no_progress, train_data=args.train_data,
                 val_data=args.val_data, classes=args.classes, pretrained=args.pretrained,
                 freeze_features=args.freeze_features, kvstore=args.kvstore,
                 data_workers=args.data_workers, root=args.weights_dir,
                 overwrite=args.overwrite, log=_stderr_log if args.json else print)


def _stderr_log(line):
    print(line, file=sys.stderr)


def _cmd_evaluate(args):
    from .train import evaluate

    r = evaluate(args.model, params=args.params, pretrained=args.pretrained,
                 data_dir=args.data_dir, ctx=args.ctx, root=args.weights_dir,
                 val_data=args.val_data,
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
    from .weights import weights_home

    path = os.path.abspath(args.out_file or _converted_path(
        args.source, weights_home() if args.out is None else args.out, args.name))
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
        raise InceptionZooError(f"convert --to SOURCE:NAME ZOO.params OUT takes no "
                                f"{', '.join(given)} (OUT is the checkpoint to write; the "
                                "auxiliary head goes back when the zoo file has it)")
    meta = convert_back(args.to, args.source, args.checkpoint, overwrite=args.overwrite)
    _report(args, {k: meta[k] for k in ("source", "model", "classes", "file", "sha1")},
            [f"{meta['model']} -> {meta['source']}: {meta['file']} ({meta['tensors']} tensors, "
             f"{meta['classes']} classes; SHA-1 {meta['sha1']})", f"  load: {meta['load']}"])
    return 0


def _converted_path(source, folder, name):
    """``FOLDER/NAME.params``, ``NAME`` defaulting to ``MODEL.TAG``: the zoo model of
    ``SOURCE:NAME`` and the tag it declares for that source (where ``pretrained=TAG`` looks)."""
    from ._builder import source_path
    from .convert import checkpoint_filter_for
    from .export import export_prefix

    if name is None:
        checkpoint_filter_for(source)  # an unknown source: the converter's error, naming them
        return source_path(source, folder)
    return export_prefix(folder, name) + ".params"


def _cmd_launch(args):
    from .launch import launch

    ssh_only = [flag for flag, value in (("--hostfile", args.hostfile),
                                         ("--ssh-option", args.ssh_option),
                                         ("--scheduler-host", args.scheduler_host)) if value]
    if ssh_only and args.launcher != "ssh":
        raise InceptionZooError(f"{', '.join(ssh_only)}: read by --launcher ssh only; got "
                                f"--launcher {args.launcher}, which runs every process here: "
                                f"add --launcher ssh, or drop {ssh_only[0]}")
    command = list(args.worker_command)
    if command and command[0] == "--":
        command = command[1:]
    env = {}
    for item in args.env or ():
        name, eq, value = item.partition("=")
        if not eq and name not in os.environ:
            raise InceptionZooError(f"--env {item!r}: {name} is not set here: expected "
                                    "NAME=VALUE, or the NAME of a variable of this environment")
        env[name] = value if eq else os.environ[name]
    return launch(command, workers=args.workers, servers=args.servers, launcher=args.launcher,
                  hostfile=args.hostfile, port=args.port, scheduler_host=args.scheduler_host,
                  timeout=args.timeout, env=env, ssh_options=args.ssh_option,
                  exit_grace=args.exit_grace)


def _runtime_option(parser):
    from .runtimes import RUNTIMES

    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto: the export's ONNX file in ONNX Runtime where it is "
                        "faster and computes the same logits, else MXNet")


def _model_argument(s):
    """``MODEL``, the first positional argument (and ``--model``, its old spelling; leaving
    it out is the old spelling of ``inception_mnist``, so help shows it required)."""
    shown(s.add_argument("model", nargs="?", metavar="MODEL", help="a registered model name "
                         "(`inceptionzoo list`)"), "MODEL")
    s.add_argument("--model", dest="old_model", help=argparse.SUPPRESS)


def _data_threads_argument(s):
    s.add_argument("--data-threads", dest="data_workers", type=int, metavar="N",
                   help="image decoding threads (default: the cores, at most 4)")
    s.add_argument("--data-workers", dest="old_data_workers", type=int, help=argparse.SUPPRESS)


def _weights_dir_argument(s):
    """``--weights-dir DIR``, the folder of converted weights (``--root``, its old spelling)."""
    s.add_argument("--weights-dir", metavar="DIR", help="the weights folder --pretrained reads "
                   "converted NAME.params from (default: $INCEPTIONZOO_HOME, else "
                   "~/.inceptionzoo; `convert` writes there)")
    s.add_argument("--root", dest="old_root", help=argparse.SUPPRESS)


def _json_argument(s, what="what the command printed, as one JSON document"):
    s.add_argument("--json", action="store_true", help=what)


def shown(action, text):
    """Show ``action``'s value in help as ``text`` (``""``: a flag), hiding the optional value
    of an old spelling it still accepts."""
    action.shown_as = text
    return action


class _Formatter(argparse.HelpFormatter):
    """Help with every option's default (``(default: X)`` unless the help says it already, or
    the option is a flag) and the values an old spelling still accepts left out."""

    def _format_args(self, action, default_metavar):
        text = getattr(action, "shown_as", None)
        return text if text is not None else super()._format_args(action, default_metavar)

    def _format_action_invocation(self, action):
        if getattr(action, "shown_as", None) == "":
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" not in text and action.option_strings and action.nargs != 0
                and action.default is not argparse.SUPPRESS):
            text += " (default: none)" if action.default is None else " (default: %(default)s)"
        return text


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
for _command in ("train", "evaluate", "export", "list", "info"):
    OLD_SPELLINGS.setdefault(_command, {})["--root DIR"] = "--weights-dir DIR"
del _command


def _deprecated(command, old):
    deprecated(old, OLD_SPELLINGS[command][old], command=command)


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
    if getattr(args, "old_root", None) is not None:
        if args.weights_dir is not None:
            raise InceptionZooError("give --weights-dir only (--root is its old spelling)")
        _deprecated(command, "--root DIR")
        args.weights_dir = args.old_root
    if getattr(args, "old_model", None) is not None:
        if args.model is not None:
            raise InceptionZooError("the model is given twice (MODEL and --model, its old "
                                    "spelling): give MODEL only")
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
            raise InceptionZooError("give --data-threads only (--data-workers is its old spelling)")
        _deprecated(command, "--data-workers N")
        args.data_workers = args.old_data_workers
    if command == "train":
        if isinstance(args.pretrained, str) and not _is_tag(args.model, args.pretrained):
            if args.params is not None:
                raise InceptionZooError("give --params FILE only (--pretrained FILE is its old "
                                        "spelling)")
            _deprecated(command, "--pretrained FILE")
            args.params, args.pretrained = args.pretrained, None
        if args.params is not None and args.pretrained is not None:
            raise InceptionZooError("--pretrained and --params FILE: expected one of them; got "
                                    "both")
        args.pretrained = args.params if args.params is not None else args.pretrained
    if command == "predict":
        if args.old_model_dir is not None:
            _deprecated(command, "--model-dir DIR")
            args.images.insert(0, args.model_dir)
            args.model_dir = args.old_model_dir
        if not args.images:
            raise InceptionZooError("expected EXPORT_DIR IMAGE [IMAGE ...]; got no image")
    if command == "convert":
        args.out_file = None
        out = args.out
        if out is not None and out.lower().endswith(".params") and not os.path.isdir(out):
            if args.name is not None:
                raise InceptionZooError(f"--out is a folder (--name NAME.params goes there); got "
                                        f"the file {args.out!r}")
            _deprecated(command, "--out FILE.params")
            args.out_file = args.out
    return args


class _Parser(argparse.ArgumentParser):
    """Positional arguments may come before, between or after the options (``predict DIR
    --top-k 2 IMAGE``), as argparse's intermixed parsing allows for every command but those
    that pass a command line on (the top level, ``launch``)."""

    _intermixing = False
    #: a subcommand's parser: an unknown option is its error (its usage), not the top level's
    strict = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing or any(a.nargs in (argparse.REMAINDER, argparse.PARSER)
                                    for a in self._actions):
            found, extra = super().parse_known_args(args, namespace)
        else:
            self._intermixing = True  # parse_known_intermixed_args comes back here
            try:
                found, extra = self.parse_known_intermixed_args(args, namespace)
            finally:
                self._intermixing = False
        if extra and self.strict and not self._intermixing:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return found, extra


class _Version(argparse.Action):
    """``--version``: the package's version (read when asked: importing the package loads
    MXNet)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the version and exit"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__

        print(f"inceptionzoo {__version__}")
        parser.exit()


def build_parser():
    """The ``inceptionzoo`` argument parser (an argument table; :func:`main` maps the old
    spellings it still accepts onto the new ones).

    Returns
    -------
    argparse.ArgumentParser
    """
    p = _Parser(prog="inceptionzoo", formatter_class=_Formatter,
                description="Inception networks for MXNet Gluon.")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, **kwargs):
        return sub.add_parser(name, formatter_class=_Formatter,
                              description=kwargs.get("help"), **kwargs)

    s = command("list", help="list registered models")
    s.add_argument("--include", nargs="*", default=None, metavar="PATTERN",
                   help="fnmatch patterns to keep (default: every model)")
    s.add_argument("--exclude", nargs="*", default=None, metavar="PATTERN",
                   help="fnmatch patterns to drop (default: none)")
    s.add_argument("--markdown", action="store_true", help="print the docs' model table")
    s.add_argument("--weights", action="store_true", help="each model's weights by tag "
                   "(NAME.TAG): present (path, SHA-1) or the command that makes them")
    _weights_dir_argument(s)
    _json_argument(s, "the names as one JSON list")
    s.set_defaults(func=_cmd_list)

    s = command("info", help="metadata of a model and its weights by tag")
    s.add_argument("model", metavar="MODEL", help="a registered model name "
                   "(`inceptionzoo list`)")
    _json_argument(s, "the metadata as one JSON object")
    _weights_dir_argument(s)
    s.set_defaults(func=_cmd_info)

    s = command("train", help="train a model on MNIST, an image folder or RecordIO")
    _model_argument(s)
    s.add_argument("--data-dir", metavar="DIR", help="MNIST IDX folder, or a folder with train/ "
                   "+ val/ image folders, or with train.rec/.idx + val.rec/.idx (default: "
                   "MNIST from $INCEPTIONZOO_DATA, then MXNet's dataset folder, downloading if "
                   "needed)")
    s.add_argument("--train-data", metavar="PATH", help="training data: an image folder, a .rec "
                   "file or an MNIST folder (default: --data-dir's)")
    s.add_argument("--val-data", metavar="PATH", help="validation data, as --train-data "
                   "(default: --data-dir's)")
    s.add_argument("--classes", type=int, metavar="N", help="output classes (default: the "
                   "data's)")
    s.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="TAG",
                   help="start from the model's weights: its default tag, or TAG (`inceptionzoo "
                   "list --weights`): every layer but a classifier of another size is loaded "
                   "(default: none)")
    s.add_argument("--params", metavar="FILE", help="start from a .params FILE (converted: "
                   "its sidecar's preprocessing is used), loaded as --pretrained is")
    s.add_argument("--freeze-features", action="store_true",
                   help="with --pretrained or --params: train the classifier only")
    _weights_dir_argument(s)
    s.add_argument("--recipe", default="default", help="seed, default or pretrain")
    recipe = "(default: the recipe's)"
    s.add_argument("--epochs", type=int, metavar="N", help=recipe)
    s.add_argument("--batch-size", type=int, metavar="N", help="global batch (shared by all "
                   f"workers) {recipe}")
    s.add_argument("--lr", type=float, help=f"learning rate {recipe}")
    s.add_argument("--optimizer", help=f"any MXNet optimizer name: sgd, nag, adam, ... {recipe}")
    s.add_argument("--momentum", type=float, help=recipe)
    s.add_argument("--wd", type=float, help=f"weight decay {recipe}")
    s.add_argument("--schedule", choices=["constant", "cosine"], help=f"learning rate {recipe}")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--ctx", default="cpu", help="cpu, cpu0,cpu1, gpu0,gpu1 ...")
    s.add_argument("--kvstore", help="local, device, or dist_sync / dist_device_sync / "
                   "dist_async under `inceptionzoo launch` (default: none on one context, "
                   "device on several)")
    _data_threads_argument(s)
    s.add_argument("--out", metavar="DIR", help="folder for checkpoints, metrics.json and "
                   "curves.png (default: runs/MODEL, or runs/MODEL-2, -3 ... when that holds "
                   "files; with --resume or --overwrite runs/MODEL)")
    s.add_argument("--resume", action="store_true", help="continue from the newest checkpoint "
                   "(of the run --out holds: same model and classes)")
    s.add_argument("--overwrite", action="store_true", help="replace the run --out holds "
                   "(without it, training into a folder that holds a run is an error)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    _json_argument(s, "the final metrics as one JSON object (the epochs' lines go to stderr)")
    s.set_defaults(func=_cmd_train)

    s = command("evaluate", help="validation accuracy (MNIST test split, val/ or val.rec)")
    _model_argument(s)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--params", metavar="FILE", help="a .params file (converted: with its "
                   "sidecar's preprocessing and classes)")
    g.add_argument("--pretrained", nargs="?", const=True, default=False, metavar="TAG",
                   help="the model's weights: its default tag, or TAG (`inceptionzoo list "
                   "--weights`)")
    _weights_dir_argument(s)
    s.add_argument("--data-dir", metavar="DIR", help="as for train (its validation part is "
                   "read; default: MNIST, as for train)")
    s.add_argument("--val-data", metavar="PATH", help="an image folder, a .rec file or an "
                   "MNIST folder (default: --data-dir's)")
    s.add_argument("--classes", type=int, metavar="N", help="output classes (default: the "
                   "params file's)")
    s.add_argument("--batch-size", type=int, default=1000, metavar="N", help="images per batch")
    _data_threads_argument(s)
    s.add_argument("--ctx", default="cpu", help="cpu, cpu0, gpu0 ...")
    _json_argument(s, "one JSON object")
    s.set_defaults(func=_cmd_evaluate)

    s = command("launch", help="run a command as workers of MXNet's parameter server "
                "(scheduler, servers, workers)")
    s.add_argument("--workers", type=int, default=2, metavar="N",
                   help="number of workers (1-1024)")
    s.add_argument("--servers", type=int, default=1, metavar="N",
                   help="number of parameter servers (1-1024)")
    s.add_argument("--launcher", choices=["local", "ssh"], default="local",
                   help="local: all processes here over loopback; ssh: on the hostfile's hosts")
    s.add_argument("--hostfile", metavar="FILE", help="ssh: one [user@]host[:port] per line "
                   "(# comments; default: none, required by ssh)")
    s.add_argument("--ssh-option", action="append", metavar="KEY=VALUE",
                   help="ssh: an ssh_config option for every ssh, e.g. IdentityFile=KEY or "
                   "StrictHostKeyChecking=accept-new (repeatable; default: none)")
    s.add_argument("--env", action="append", metavar="NAME[=VALUE]",
                   help="a variable for every process (NAME alone: its value here); over ssh "
                   "the hosts get only these and the DMLC_* ones (repeatable; default: none)")
    s.add_argument("--port", type=int, help="scheduler port (default: a free one)")
    s.add_argument("--scheduler-host", metavar="HOST", help="ssh: this machine's address as "
                   "the hosts see it (default: this machine's host name)")
    s.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="kill the job after this many seconds (default: no limit)")
    s.add_argument("--exit-grace", type=float, metavar="S",
                   help="fail the job when workers still run S seconds after one exited 0 "
                   "(default 60)")
    s.add_argument("worker_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="what each worker runs")
    s.set_defaults(func=_cmd_launch)

    s = command("export", help="export a model to symbol JSON + params (+ ONNX)")
    s.add_argument("model", metavar="MODEL", help="a registered model name "
                   "(`inceptionzoo list`)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--pretrained", nargs="?", const=True, default=False, metavar="TAG",
                   help="the model's weights: its default tag, or TAG (`inceptionzoo list "
                   "--weights`)")
    g.add_argument("--params", metavar="FILE", help="a .params file of this model (converted, "
                   "a training checkpoint, or a plain Gluon file: the network's default "
                   "transform)")
    _weights_dir_argument(s)
    s.add_argument("--out", required=True, metavar="DIR", help="output folder")
    s.add_argument("--name", help="file prefix of every file the export writes (default: the "
                   "model name, as MMS expects); exports of other names share a folder")
    s.add_argument("--preprocess", action="store_true",
                   help="bake the input transform in: the graph takes raw uint8 images")
    s.add_argument("--onnx", action="store_true", help="also write NAME.onnx (opset 13; the "
                   "onnx extra)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing export")
    s.add_argument("--mar", action="store_true", help="also write NAME.mar for MXNet Model "
                   "Server (multi-model-server; the serve extra), with its handler inside")
    _json_argument(s, "the files written, {role: path}, as one JSON object")
    g = s.add_argument_group("lower precision (docs/deploy.md, 'Lower precision')")
    g.add_argument("--precision", choices=("fp32", "int8", "bf16"), default="fp32",
                   help="the graph's arithmetic (default fp32); int8 and bf16 are written "
                   "only if the accuracy guard on --holdout lets them through")
    g.add_argument("--calib", metavar="DIR|mnist:DIR",
                   help="int8 calibration images: a folder of images, or mnist:DIR (the MNIST "
                   "training split) (default: none)")
    g.add_argument("--calib-size", type=int, metavar="N",
                   help="calibration images used (default 500)")
    g.add_argument("--holdout", metavar="DIR|mnist:DIR",
                   help="labelled images of the guard: a folder of class subfolders named by "
                   "the labels, or mnist:DIR (the MNIST test split); disjoint from --calib "
                   "(default: none)")
    g.add_argument("--holdout-size", type=int, metavar="N",
                   help="held-out images used (default all)")
    g.add_argument("--max-accuracy-drop", type=float, metavar="POINTS",
                   help="refuse the export when top-1 accuracy drops more (default 0.5)")
    s.set_defaults(func=_cmd_export)

    s = command("predict", help="top-k labels of images, from an export")
    s.add_argument("model_dir", metavar="EXPORT_DIR", help="folder written by `export`")
    s.add_argument("--model-dir", dest="old_model_dir", help=argparse.SUPPRESS)
    s.add_argument("--name", help="which export, if the folder holds several (default: its "
                   "only one)")
    s.add_argument("--top-k", type=int, default=3, metavar="K", help="labels per image")
    _json_argument(s, "one JSON list, {file, top} per image")
    s.add_argument("images", nargs="*", metavar="IMAGE", help="one or more image files (JPEG, "
                   "PNG, BMP, GIF, TIFF, WebP, PPM) of any size: the export's evaluation "
                   "transform resizes and crops")
    _runtime_option(s)
    s.set_defaults(func=_cmd_predict)

    s = command("tune", help="pick the inference graph per batch size now and save the "
                "choice beside the export (NAME-tuning.json), for every later Predictor")
    s.add_argument("model_dir", metavar="EXPORT_DIR", help="folder written by `export`")
    s.add_argument("--name", help="which export, if the folder holds several (default: its "
                   "only one)")
    s.add_argument("--batch-sizes", default="1", metavar="B,B,...",
                   help="comma-separated, e.g. 1,8,32")
    _runtime_option(s)
    _json_argument(s, "the choice per batch size, the timings and the file, as one JSON "
                   "object")
    s.set_defaults(func=_cmd_tune)

    s = command("serve", help="serve an export with MXNet Model Server (the serve extra, Java "
                "8+) in the foreground until Ctrl-C / SIGTERM")
    s.add_argument("model_dir", metavar="EXPORT_DIR", help="folder written by `export`")
    s.add_argument("--name", help="which export, if the folder holds several (also the model "
                   "name in the URL; default: the only one)")
    s.add_argument("--port", type=int, default=8080, help="inference API port on 127.0.0.1 "
                   "(default 8080; MMS takes ports below 32767)")
    s.add_argument("--management-port", type=int, default=8081,
                   help="management API port on 127.0.0.1 (default 8081)")
    s.add_argument("--batch-size", type=int, metavar="N", help="MMS batch_size: the most requests one "
                   "handler call takes (default: the export's recorded batching, else 1)")
    s.add_argument("--max-batch-delay", type=int, metavar="MS", help="MMS max_batch_delay: how "
                   "long MMS waits to fill a batch (default: the export's, else 100)")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="MMS worker processes (default 1)")
    s.add_argument("--store", metavar="DIR", help="folder for the model store, "
                   "config.properties and logs (default: a temporary folder, removed after)")
    s.set_defaults(func=_cmd_serve)  # it reports nothing: it serves until stopped

    # `bench` passes everything after it to the harness (see main); listed here for --help
    command("bench", help="run the repository's benchmark harness, benchmarks/throughput.py, "
            "from a checkout (`inceptionzoo bench --help` gives its options)", add_help=False)

    s = command("convert", help="a torchvision / timm / gluoncv checkpoint -> zoo .params + "
                "sidecar JSON, in the weights folder, or back with --to")
    s.add_argument("source", metavar="SOURCE:NAME", help="torchvision:inception_v3, "
                   "torchvision:googlenet, timm:inception_v3, timm:inception_v4, "
                   "timm:inception_resnet_v2, gluoncv:inceptionv3, gluoncv:googlenet (with "
                   "--to: the zoo .params file)")
    s.add_argument("checkpoint", metavar="CHECKPOINT", help=".pth / .pt / .safetensors "
                   "(torchvision, timm; .safetensors: the convert extra) or .params (gluoncv) "
                   "(with --to: the checkpoint to write)")
    s.add_argument("--out", metavar="DIR", help="output folder: NAME.params and its sidecar "
                   "NAME.json go there (default: the weights folder, $INCEPTIONZOO_HOME, else "
                   "~/.inceptionzoo, where --pretrained and --weights-dir look)")
    s.add_argument("--name", help="file name of the weights, without .params (default: "
                   "MODEL.TAG, the tag the model gives the source: where --pretrained TAG "
                   "looks)")
    s.add_argument("--aux-logits", action="store_true",
                   help="keep Inception-v3's auxiliary head (for fine-tuning)")
    s.add_argument("--to", metavar="SOURCE:NAME", help="the way back: `convert --to "
                   "SOURCE:NAME ZOO.params OUT` writes the zoo file's weights as a checkpoint of "
                   "the source (OUT: .pth / .pt / .safetensors, or .params for gluoncv) "
                   "(default: none)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace an existing output (else it is refused)")
    _json_argument(s, 'print {"model", "params", "sha1"} as JSON (with --to: {"source", '
                   '"model", "classes", "file", "sha1"})')
    s.set_defaults(func=_cmd_convert)

    s = command("demo", help="the main job of `make demo`")
    s.add_argument("--out", default="demo-out", metavar="DIR",
                   help="where the demo writes its export")
    _json_argument(s, "the models' rows and the predictions as one JSON object")
    s.set_defaults(func=_cmd_demo)

    s = command("examples", help="write the real MNIST test digits the docs use "
                "(digit-LABEL-testINDEX.png) into a folder")
    s.add_argument("--out", default="examples", metavar="DIR", help="output folder")
    s.add_argument("--overwrite", action="store_true", help="replace files of the same name")
    _json_argument(s, "the files written, as one JSON list")
    s.set_defaults(func=_cmd_examples)

    for parser in sub.choices.values():
        parser.strict = True
    return p


#: module a command may miss -> the extra of setup.cfg that installs it
EXTRAS = {"onnx": "onnx", "onnxruntime": "onnxruntime", "safetensors": "convert",
          "cv2": "recordio", "mms": "serve", "model_archiver": "serve", "gluoncv": "gluoncv"}

#: what a command needs before it starts: (command, option, value) -> modules. Checked first,
#: so that a missing extra writes nothing (an export folder, half an export).
NEEDS = {("export", "onnx", True): ("onnx",),
         ("predict", "runtime", "onnxruntime"): ("onnxruntime",),
         ("tune", "runtime", "onnxruntime"): ("onnxruntime",)}

#: MXNet's own log lines that tell a user of the command nothing: set before MXNet loads
QUIET_MXNET = {"MXNET_SUBGRAPH_VERBOSE": "0", "MXNET_STORAGE_FALLBACK_LOG_VERBOSE": "0"}
#: MXNet's warnings that tell a user of the command nothing (regular expressions)
QUIET_WARNINGS = ("Cannot decide type for the following arguments",)


def missing_extra(err):
    """The one line for a ``ModuleNotFoundError`` of a module an extra installs, else None."""
    root = (getattr(err, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(root)
    if extra is None:
        return None
    from ._errors import install_hint

    return f"{root} is not installed: it comes with the {extra} extra: {install_hint(extra)}"


def _check_needs(args):
    """Import what the command's options need before anything runs; a missing extra is one
    error naming the option, the module and the extra."""
    import importlib

    for (command, option, value), modules in NEEDS.items():
        if command == args.command and getattr(args, option, None) == value:
            flag = f"--{option.replace('_', '-')}" + ("" if value is True else f" {value}")
            for module in modules:
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError as err:
                    line = missing_extra(err)
                    if line is None:
                        raise
                    raise InceptionZooError(f"{flag}: {line}") from None


@contextlib.contextmanager
def _one_line_warnings(command):
    """While a command runs: warnings on the terminal as ``inceptionzoo COMMAND: warning:
    MESSAGE``, one line each (no file, no source line), and MXNet's that say nothing to the
    user dropped. Warnings recorded by a caller (``warnings.catch_warnings(record=True)``) stay
    warnings; everything is as before once the command returns."""
    import warnings

    def one_line(message, category, filename, lineno, line=None):
        return f"inceptionzoo {command}: warning: {' '.join(str(message).split())}\n"

    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        before, warnings.formatwarning = warnings.formatwarning, one_line
        try:
            yield
        finally:
            warnings.formatwarning = before


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
    for name, value in QUIET_MXNET.items():
        os.environ.setdefault(name, value)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # every argument, --help included, belongs to the harness
        command, func, args = "bench", _cmd_bench, argv[1:]
    else:
        args = build_parser().parse_args(argv)
        command, func = args.command, args.func
    with _one_line_warnings(command):
        return _run(command, func, args)


def _run(command, func, args):
    """``func(args)``, its refusals one line each: status 2 (a closed pipe: 141, quietly)."""
    try:
        if command != "bench":
            args = _settle(args)
            _check_needs(args)
        code = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:  # `inceptionzoo info ... | head`: the reader left; so do we
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a command killed by the signal
    except ModuleNotFoundError as err:  # a missing extra: one line naming it
        line = missing_extra(err)
        if line is None:
            raise
        print(f"inceptionzoo {command}: error: {line}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as err:  # bad input: one clear line, exit 2
        print(f"inceptionzoo {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
