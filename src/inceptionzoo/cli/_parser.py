"""The ``inceptionzoo`` argument parser: one function per command adds its arguments
(``train``'s and ``evaluate``'s come from the fields of their options records,
:mod:`inceptionzoo.options`)."""
import argparse

from .. import __version__
from ..runtimes import RUNTIMES
from ..options import EvaluateOptions, TrainOptions, cli_fields
from ._commands_models import (_cmd_convert, _cmd_demo, _cmd_examples, _cmd_export, _cmd_info,
                               _cmd_list)
from ._commands_serving import _cmd_predict, _cmd_serve, _cmd_tune
from ._commands_training import _cmd_evaluate, _cmd_launch, _cmd_train


def _runtime_option(parser):
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
    s.add_argument("--data-threads", dest="data_threads", type=int, metavar="N",
                   help="image decoding threads (default: the cores, at most 4)")
    s.add_argument("--data-workers", dest="old_data_workers", type=int, help=argparse.SUPPRESS)


def _pretrained_or_params_arguments(s):
    """train's starting weights: ``--pretrained [TAG]`` or ``--params FILE`` (settled into
    ``pretrained``)."""
    s.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="TAG",
                   help="start from the model's weights: its default tag, or TAG (`inceptionzoo "
                   "list --weights`): every layer but a classifier of another size is loaded "
                   "(default: none)")
    s.add_argument("--params", metavar="FILE", help="start from a .params FILE (converted: "
                   "its sidecar's preprocessing is used), loaded as --pretrained is")


def _params_or_pretrained_arguments(s):
    """evaluate's weights: ``--params FILE`` or ``--pretrained [TAG]``, one of them."""
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--params", metavar="FILE", help="a .params file (converted: with its "
                   "sidecar's preprocessing and classes)")
    g.add_argument("--pretrained", nargs="?", const=True, default=False, metavar="TAG",
                   help="the model's weights: its default tag, or TAG (`inceptionzoo list "
                   "--weights`)")


def _weights_dir_argument(s):
    """``--weights-dir DIR``, the folder of converted weights (``--root``, its old spelling)."""
    s.add_argument("--weights-dir", metavar="DIR", help="the weights folder --pretrained reads "
                   "converted NAME.params from (default: $INCEPTIONZOO_HOME, else "
                   "~/.inceptionzoo; `convert` writes there)")
    s.add_argument("--root", dest="old_root", help=argparse.SUPPRESS)


def _json_argument(s, what="what the command printed, as one JSON document"):
    s.add_argument("--json", action="store_true", help=what)


#: the arguments several commands build alike, by the name a record's field gives
#: (:func:`~inceptionzoo.options._option`'s ``shared``)
SHARED_ARGUMENTS = {"model": _model_argument,
                    "pretrained_or_params": _pretrained_or_params_arguments,
                    "params_or_pretrained": _params_or_pretrained_arguments,
                    "weights_dir": _weights_dir_argument,
                    "data_threads": _data_threads_argument}


def _record_arguments(s, record):
    """The arguments of the fields of ``record`` the command line gives, in their order (an
    argument several fields share, once)."""
    built = set()
    for f, cli in cli_fields(record):
        if cli["shared"] in built:
            continue
        if cli["shared"]:
            SHARED_ARGUMENTS[cli["shared"]](s)
            built.add(cli["shared"])
        else:
            s.add_argument(*cli["flags"], dest=f.name, default=f.default, **cli["argparse"])


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
        print(f"inceptionzoo {__version__}")
        parser.exit()


def _command(sub, name, **kwargs):
    """The parser of command ``name``, its description its ``help``."""
    return sub.add_parser(name, formatter_class=_Formatter, description=kwargs.get("help"),
                          **kwargs)


def _add_list(sub):
    """``inceptionzoo list``."""
    s = _command(sub, "list", help="list registered models")
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


def _add_info(sub):
    """``inceptionzoo info``."""
    s = _command(sub, "info", help="metadata of a model and its weights by tag")
    s.add_argument("model", metavar="MODEL", help="a registered model name "
                   "(`inceptionzoo list`)")
    _json_argument(s, "the metadata as one JSON object")
    _weights_dir_argument(s)
    s.set_defaults(func=_cmd_info)


def _add_train(sub):
    """``inceptionzoo train``."""
    s = _command(sub, "train", help="train a model on MNIST, an image folder or RecordIO")
    _record_arguments(s, TrainOptions)
    _json_argument(s, "the final metrics as one JSON object (the epochs' lines go to stderr)")
    s.set_defaults(func=_cmd_train)


def _add_evaluate(sub):
    """``inceptionzoo evaluate``."""
    s = _command(sub, "evaluate", help="validation accuracy (MNIST test split, val/ or val.rec)")
    _record_arguments(s, EvaluateOptions)
    _json_argument(s, "one JSON object")
    s.set_defaults(func=_cmd_evaluate)


def _add_launch(sub):
    """``inceptionzoo launch``."""
    s = _command(sub, "launch", help="run a command as workers of MXNet's parameter server "
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


def _add_export(sub):
    """``inceptionzoo export``."""
    s = _command(sub, "export", help="export a model to symbol JSON + params (+ ONNX)")
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


def _add_predict(sub):
    """``inceptionzoo predict``."""
    s = _command(sub, "predict", help="top-k labels of images, from an export")
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


def _add_tune(sub):
    """``inceptionzoo tune``."""
    s = _command(sub, "tune", help="pick the inference graph per batch size now and save the "
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


def _add_serve(sub):
    """``inceptionzoo serve``."""
    s = _command(sub, "serve", help="serve an export with MXNet Model Server (the serve extra, "
                "Java 8+) in the foreground until Ctrl-C / SIGTERM")
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


def _add_bench(sub):
    """``inceptionzoo bench``."""
    # `bench` passes everything after it to the harness (see main); listed here for --help
    _command(sub, "bench", help="run the repository's benchmark harness, benchmarks/throughput.py, "
            "from a checkout (`inceptionzoo bench --help` gives its options)", add_help=False)


def _add_convert(sub):
    """``inceptionzoo convert``."""
    s = _command(sub, "convert", help="a torchvision / timm / gluoncv checkpoint -> zoo .params + "
                "sidecar JSON, in the weights folder, or back with --to")
    s.add_argument("source", metavar="SOURCE:NAME", help="a source network a model file "
                   "declares, e.g. torchvision:inception_v3 (`inceptionzoo list --weights` prints "
                   "the convert command of each) (with --to: the zoo .params file)")
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


def _add_demo(sub):
    """``inceptionzoo demo``."""
    s = _command(sub, "demo", help="the main job of `make demo`")
    s.add_argument("--out", default="demo-out", metavar="DIR",
                   help="where the demo writes its export")
    _json_argument(s, "the models' rows and the predictions as one JSON object")
    s.set_defaults(func=_cmd_demo)


def _add_examples(sub):
    """``inceptionzoo examples``."""
    s = _command(sub, "examples", help="write the real MNIST test digits the docs use "
                "(digit-LABEL-testINDEX.png) into a folder")
    s.add_argument("--out", default="examples", metavar="DIR", help="output folder")
    s.add_argument("--overwrite", action="store_true", help="replace files of the same name")
    _json_argument(s, "the files written, as one JSON list")
    s.set_defaults(func=_cmd_examples)


#: each command's parser, in the order of the help's list
COMMANDS = (_add_list, _add_info, _add_train, _add_evaluate, _add_launch, _add_export,
            _add_predict, _add_tune, _add_serve, _add_bench, _add_convert, _add_demo,
            _add_examples)


def build_parser():
    """The ``inceptionzoo`` argument parser (:func:`main` maps the old spellings it still
    accepts onto the new ones).

    Returns
    -------
    argparse.ArgumentParser
    """
    p = _Parser(prog="inceptionzoo", formatter_class=_Formatter,
                description="Inception networks for MXNet Gluon.")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for add in COMMANDS:
        add(sub)
    for parser in sub.choices.values():
        parser.strict = True
    return p
