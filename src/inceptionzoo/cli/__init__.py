"""The ``inceptionzoo`` command: its arguments and their dispatch to the library.

One convention (docs/api.md, "Command line"): what a command acts on is positional and comes
first (``train MODEL``, ``evaluate MODEL``, ``info MODEL``, ``export MODEL``, ``predict
EXPORT_DIR IMAGE...``, ``tune EXPORT_DIR``, ``convert SOURCE:NAME CHECKPOINT``); ``--out`` is
always a folder and ``--name`` the file name inside it; weights are ``--pretrained [TAG]`` (the
model's default tag, or TAG) or ``--params FILE``; ``--workers`` are the processes of a
distributed job and ``--data-threads`` the image decoding threads. The spellings before this
convention still work for one release: :data:`OLD_SPELLINGS` maps each onto the new one, with
one line on stderr.

The package: :mod:`._parser` builds the arguments (``train``'s from
:class:`~inceptionzoo.options.TrainOptions`), :mod:`._spellings` maps the old spellings,
``_commands_models`` / ``_commands_serving`` / ``_commands_training`` run the commands (each
imports the library module it drives when it runs, for the command line's start-up time), and
this module's :func:`main` dispatches and turns refusals into one line."""
import contextlib
import importlib
import os
import sys
import warnings

from .._errors import install_hint
from ..errors import InceptionZooError
from ._commands_serving import HARNESS, _batch_sizes, _cmd_bench  # noqa: F401 (cli.HARNESS)
from ._commands_training import _default_run_folder  # noqa: F401 (as cli.py had it)
from ._parser import build_parser
from ._spellings import OLD_SPELLINGS, _settle  # noqa: F401 (cli.OLD_SPELLINGS, docs/api.md)

__all__ = ["main", "build_parser"]


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
    return f"{root} is not installed: it comes with the {extra} extra: {install_hint(extra)}"


def _check_needs(args):
    """Import what the command's options need before anything runs; a missing extra is one
    error naming the option, the module and the extra."""
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
