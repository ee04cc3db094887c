"""The commands about training: ``train`` and ``evaluate`` (their arguments and options
records come from :mod:`inceptionzoo.options`), and ``launch``."""
import json
import os
import sys
import traceback

from ..errors import InceptionZooError
from ..options import EvaluateOptions, TrainOptions, cli_fields
from ._output import _report


def _leave_distributed_job(err):
    """A worker of a distributed job that fails must not exit normally: MXNet's shutdown waits
    in a barrier for the other workers, who wait for this one's gradients. Report and leave
    at once (status 2 for bad input, 1 otherwise); the launcher stops the rest of the job."""
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
    from ..train import train  # CLI start-up: loaded when the command runs

    if args.out is None:
        args.out = _default_run_folder(args.model, reuse=args.resume or args.overwrite or (
            str(args.kvstore).startswith("dist") and "DMLC_ROLE" in os.environ))
    try:
        m = train(_record_from_args(TrainOptions, args,
                                    log=_stderr_log if args.json else print))
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


def _record_from_args(record, args, **python_only):
    """The options ``record`` (:class:`~inceptionzoo.options.TrainOptions`,
    :class:`~inceptionzoo.options.EvaluateOptions`) of a parsed command line: every field the
    command line gives, and ``python_only``."""
    given = {f.name: getattr(args, cli["dest"] or f.name) for f, cli in cli_fields(record)}
    return record(**given, **python_only)


def _stderr_log(line):
    print(line, file=sys.stderr)


def _cmd_evaluate(args):
    from ..evaluation import evaluate  # CLI start-up: loaded when the command runs

    r = evaluate(_record_from_args(EvaluateOptions, args))
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['model']}: test accuracy {r['accuracy']:.4f} "
              f"({r['correct']}/{r['num_samples']}) with {r['params']}")
    return 0


def _cmd_launch(args):
    from ..launch import launch  # CLI start-up: loaded when the command runs

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
