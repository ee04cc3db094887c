"""The command line's one convention (docs/api.md, "Command line"): each new spelling parses to
the arguments the library gets, each old spelling still does with one deprecation line naming
the new one, and every command shown in README.md and docs/ uses the new spellings."""
import argparse
import json
import os
import re
import shlex

import pytest

from conftest import ROOT
from inceptionzoo import cli
from inceptionzoo.cli import OLD_SPELLINGS, build_parser, main


def _parse(argv):
    """Parse as ``main`` does (the old spellings mapped onto the new ones)."""
    return cli._settle(build_parser().parse_args(argv))


#: (new spelling, old spelling, the arguments both give)
SPELLINGS = [
    (["train", "googlenet", "--data-dir", "d"],
     ["train", "--model", "googlenet", "--data-dir", "d"],
     {"model": "googlenet", "data_dir": "d"}),
    (["train", "inception_mnist"], ["train"], {"model": "inception_mnist"}),
    (["train", "inception_v3", "--params", "w.params"],
     ["train", "inception_v3", "--pretrained", "w.params"],
     {"pretrained": "w.params"}),
    (["train", "inception_mnist", "--data-threads", "3"],
     ["train", "inception_mnist", "--data-workers", "3"], {"data_threads": 3}),
    (["evaluate", "googlenet", "--pretrained"],
     ["evaluate", "--model", "googlenet", "--pretrained"],
     {"model": "googlenet", "pretrained": True}),
    (["evaluate", "inception_mnist", "--pretrained"], ["evaluate", "--pretrained"],
     {"model": "inception_mnist"}),
    (["evaluate", "inception_mnist", "--pretrained", "--data-threads", "2"],
     ["evaluate", "inception_mnist", "--pretrained", "--data-workers", "2"], {"data_threads": 2}),
    (["predict", "deploy", "a.png", "b.png", "--top-k", "2"],
     ["predict", "--model-dir", "deploy", "a.png", "b.png", "--top-k", "2"],
     {"model_dir": "deploy", "images": ["a.png", "b.png"], "top_k": 2}),
    (["predict", "deploy", "a.png"], ["predict", "--model-dir", "deploy", "a.png"],
     {"model_dir": "deploy", "images": ["a.png"]}),
]


@pytest.mark.parametrize("new, old, want", SPELLINGS, ids=[" ".join(o) for _, o, _ in SPELLINGS])
def test_old_spelling_gives_what_the_new_one_gives_with_one_deprecation_line(new, old, want,
                                                                             capsys):
    args = _parse(new)
    assert capsys.readouterr().err == ""  # the new spelling: no warning
    assert {k: getattr(args, k) for k in want} == want
    again = _parse(old)
    err = capsys.readouterr().err.splitlines()
    assert {k: getattr(again, k) for k in want} == want
    assert len(err) == 1, err
    known = OLD_SPELLINGS[old[0]]
    m = re.fullmatch(rf"inceptionzoo {old[0]}: (.+) is deprecated and goes in the next release: "
                     r"write (.+)", err[0])
    assert m and m.group(1) in known and m.group(2) == known[m.group(1)], err[0]


@pytest.mark.parametrize("argv, want", [
    (["predict", "deploy", "--json", "--top-k", "2", "a.png", "b.png"],
     {"model_dir": "deploy", "images": ["a.png", "b.png"], "json": True, "top_k": 2}),
    (["predict", "--top-k", "2", "deploy", "a.png", "--json", "b.png"],
     {"model_dir": "deploy", "images": ["a.png", "b.png"]}),
    (["train", "--data-dir", "d", "googlenet", "--epochs", "1"],
     {"model": "googlenet", "epochs": 1}),
    (["convert", "timm:inception_v4", "--out", "o", "c.pth"],
     {"source": "timm:inception_v4", "checkpoint": "c.pth", "out": "o"}),
    (["launch", "--workers", "2", "--", "inceptionzoo", "train", "x", "--epochs", "1"],
     {"workers": 2, "worker_command": ["--", "inceptionzoo", "train", "x", "--epochs", "1"]}),
])
def test_positional_arguments_may_sit_between_options(argv, want, capsys):
    """On a4f1adf `predict DIR --json IMAGE` could not be written (images had to follow
    --model-dir's value); a launched command line stays as it is."""
    args = _parse(argv)
    assert {k: getattr(args, k) for k in want} == want and capsys.readouterr().err == ""


def test_train_default_pretrained_flag_is_not_a_file(capsys):
    """``--pretrained`` alone (the registered weights) is the new spelling, no warning."""
    args = _parse(["train", "inception_mnist", "--pretrained", "--data-dir", "d"])
    assert args.pretrained is True and capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, message", [
    (["train", "googlenet", "--model", "googlenet"], "the model is given twice"),
    (["train", "googlenet", "--params", "a.params", "--pretrained", "b.params"],
     "give --params FILE only"),
    (["train", "googlenet", "--params", "a.params", "--pretrained"],
     "expected one of them; got both"),
    (["evaluate", "googlenet", "--pretrained", "--data-threads", "1", "--data-workers", "2"],
     "give --data-threads only"),
    (["predict", "deploy"], "expected EXPORT_DIR IMAGE [IMAGE ...]; got no image"),
    (["convert", "timm:inception_v4", "c.pth", "--out", "w.params", "--name", "v4"],
     "--out is a folder"),
])
def test_a_spelling_given_twice_or_half_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"inceptionzoo {argv[0]}: error: ") \
        and message in err[0], err


def _fake_convert(monkeypatch):
    import inceptionzoo.convert as convert

    calls = []

    def fake(spec, checkpoint, out, aux_logits=False, overwrite=False):
        calls.append((out, overwrite))
        return {"model": "inception_v4", "sha1": "0" * 40, "source": spec, "input_size": 299,
                "resize_size": 342, "interpolation": "bicubic", "mean": 0, "std": 1}

    monkeypatch.setattr(convert, "convert", fake)  # the command imports it when it runs
    return calls


def test_convert_out_is_a_folder_and_name_the_file(tmp_path, monkeypatch, capsys):
    """``convert --out FOLDER`` writes ``FOLDER/MODEL.TAG.params`` (the zoo model of the source
    and the tag it gives the source, what ``pretrained=TAG`` finds in the weights folder: no
    conversion replaces another source's), ``--name`` renames it, and the old
    ``--out FILE.params`` still writes that file with a deprecation line."""
    calls = _fake_convert(monkeypatch)
    assert main(["convert", "timm:inception_v4", "c.pth", "--out", str(tmp_path)]) == 0
    assert main(["convert", "torchvision:googlenet", "c.pth", "--out", str(tmp_path),
                 "--name", "g"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["convert", "timm:inception_v4", "c.pth", "--out",
                 str(tmp_path / "v4.params")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [out for out, _ in calls] == [str(tmp_path / "inception_v4.timm_in1k.params"),
                                         str(tmp_path / "g.params"), str(tmp_path / "v4.params")]
    assert err == ["inceptionzoo convert: --out FILE.params is deprecated and goes in the next "
                   "release: write --out FOLDER --name NAME"]
    assert main(["convert", "timm:inception_v4", "c.pth", "--out", str(tmp_path),
                 "--name", "../x"]) == 2
    assert "plain file name" in capsys.readouterr().err


def _pages():
    return ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(
        os.path.join(ROOT, "docs"))) if f.endswith(".md")]


def shown_commands(text):
    """The ``inceptionzoo ...`` command lines of a markdown text: the lines of its fenced
    blocks (``\\`` continuations joined, ``#`` comments and ``[`` ``]`` around optional parts
    dropped) and its inline code spans that give arguments (``inceptionzoo tune`` alone names
    the command, ``inceptionzoo launch: ...`` quotes a message)."""
    lines = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("inceptionzoo "):
                lines.append(line)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for span in re.findall(r"`(inceptionzoo [^`]*)`", prose):
        span = " ".join(span.rstrip("\\").split())
        if len(span.split()) > 2 and not span.split()[1].endswith(":"):
            lines.append(span)
    return [line.replace("[", "").replace("]", "") for line in lines]


def check_command(line, capsys):
    """Parse ``line`` as the command does; return what is wrong with it (None: nothing)."""
    argv = shlex.split(line)[1:]
    if argv[0] == "bench":  # its arguments belong to benchmarks/throughput.py
        return None
    try:
        args = _parse([a for a in argv if a != "..."])
    except SystemExit:
        return "does not parse: " + capsys.readouterr().err.strip().splitlines()[-1]
    except ValueError as err:
        return f"refused: {err}"
    old = capsys.readouterr().err.strip()
    if old:
        return old
    inner = [a for a in (args.worker_command if args.command == "launch" else []) if a != "--"]
    if inner[:1] == ["inceptionzoo"]:
        return check_command(shlex.join(inner), capsys)
    return None


def test_every_command_in_the_docs_parses_in_the_new_spelling(capsys):
    shown, wrong = 0, []
    for page in _pages():
        for line in shown_commands(open(os.path.join(ROOT, page)).read()):
            shown += 1
            problem = check_command(line, capsys)
            if problem:
                wrong.append(f"{page}: {line}: {problem}")
    assert shown > 30
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("line", [
    "inceptionzoo train --model googlenet --data-dir d",
    "inceptionzoo predict --model-dir deploy/ a.png",
    "inceptionzoo convert timm:inception_v4 c.pth --out v4.params",
    "inceptionzoo launch --workers 2 -- inceptionzoo train --kvstore dist_sync",
    "inceptionzoo export inception_mnist --pretrained --out deploy/ --no-such-option",
])
def test_the_docs_check_catches_old_spellings_and_parse_errors(line, capsys):
    """The check above fails on an old spelling (inside a launched command too) and on a
    command that does not parse."""
    assert check_command(line, capsys)


def test_the_docs_deprecation_table_is_the_cli_table():
    text = open(os.path.join(ROOT, "docs", "api.md")).read()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \|$", text, re.M)
    assert {(c, o, n) for c, o, n in rows} == {
        (c, o, n) for c, table in OLD_SPELLINGS.items() for o, n in table.items()}


def test_pretrained_followed_by_a_model_name_is_the_model(capsys):
    """`train --pretrained inception_v3 --data-dir d`: the model with its registered weights,
    not a weights file named 'inception_v3' for the default model."""
    from inceptionzoo.cli import _settle, build_parser

    args = build_parser().parse_args(["train", "--pretrained", "googlenet", "--data-dir", "d"])
    _settle(args)
    assert (args.model, args.pretrained) == ("googlenet", True)
    assert capsys.readouterr().err == ""


# --- the convention, walked over the parser (new commands are covered without listing them) ---

#: commands that print no report of their own (a server, a job launcher, the harness)
NO_REPORT = {"launch", "bench", "serve"}


def _commands():
    """``(name, parser)`` of every subcommand."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices.items())


def _help(parser):
    return " ".join(parser.format_help().split())


@pytest.mark.parametrize("name, parser", [c for c in _commands() if c[0] != "bench"],
                         ids=[c[0] for c in _commands() if c[0] != "bench"])
def test_every_help_shows_defaults_and_no_old_spelling_and_json_where_it_reports(name, parser):
    """The help of every subcommand: each option that takes a value says its default, no
    deprecated spelling shows (hidden options, the old spellings' table, an optional MODEL or
    an optional value that only an old spelling gives), and ``--json`` where it reports."""
    text = _help(parser)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or \
                action.nargs == 0 or isinstance(action, argparse._HelpAction):
            continue
        assert "default" in formatter._expand_help(action), (name, action.option_strings)
    hidden = [s for a in parser._actions if a.help == argparse.SUPPRESS
              for s in a.option_strings]
    for option in hidden:
        assert not re.search(re.escape(option) + r"(?![\w-])", text), (name, option)
    for old in OLD_SPELLINGS.get(name, {}):
        if old.startswith("--"):
            assert old not in text, (name, old)
    usage = " ".join(parser.format_usage().split())
    assert not re.search(r"\[--[\w-]+ \[FILE\]\]", usage), usage  # `[--pretrained [FILE]]`
    assert "[MODEL]" not in usage, usage
    if name not in NO_REPORT:
        assert "--json" in text, name


def test_one_metavar_per_option_across_commands():
    """The same flag means the same thing everywhere: ``--params FILE`` (not PARAMS in one
    command and FILE in another), ``--out DIR``, ``--batch-size N`` ..."""
    seen = {}
    for name, parser in _commands():
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or action.nargs == 0:
                continue
            for option in action.option_strings:
                metavar = getattr(action, "shown_as", None) or action.metavar or \
                    action.dest.upper()
                seen.setdefault(option, {}).setdefault(metavar, []).append(name)
    assert not {o: m for o, m in seen.items() if len(m) > 1}
    assert set(seen["--params"]) == {"FILE"} and set(seen["--out"]) == {"DIR"}
    assert "--root" not in seen and "--weights-dir" in seen


def test_bench_help_names_the_command_and_its_whole_description(capfd):
    assert main(["bench", "--help"]) == 0
    out = " ".join(capfd.readouterr().out.split())
    assert out.startswith("usage: inceptionzoo bench [MODEL")
    description = out.split("options:")[0]
    assert "(developer tooling: it lives beside the package, not in it)." in description


def test_bench_errors_name_the_command(capfd):
    assert main(["bench", "--batch-sizes", "0"]) == 2
    assert capfd.readouterr().err.startswith("inceptionzoo bench: error: --batch-sizes")


def test_an_unknown_option_shows_the_commands_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "deploy", "a.png", "--bogus"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: inceptionzoo predict "), err
    assert "inceptionzoo predict: error: unrecognized arguments: --bogus" in err


def test_version(capsys):
    from inceptionzoo import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"inceptionzoo {__version__}\n"


def test_a_closed_pipe_ends_the_command_quietly():
    """`inceptionzoo list | head -0`: no `error: [Errno 32] Broken pipe`, no traceback."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "import sys; from inceptionzoo.cli import main; "
                          "sys.exit(main(['list']))"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdout.close()  # the reader leaves before the command writes
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141 and err == "", err


@pytest.mark.parametrize("blocked, argv, extra", [
    ("onnx", ["export", "inception_mnist", "--pretrained", "--out", "{out}", "--onnx"], "onnx"),
    ("onnxruntime", ["tune", "{export}", "--runtime", "onnxruntime"], "onnxruntime"),
    ("safetensors", ["convert", "timm:inception_v4", "{checkpoint}", "--out", "{out}"],
     "convert"),
])
def test_a_missing_extra_is_one_line_naming_it(blocked, argv, extra, tmp_path, monkeypatch,
                                               capsys):
    """As in an install without the extra (the module cannot be imported): one line naming the
    extra and how to install it, exit status 2, nothing written."""
    import sys

    export = tmp_path / "export"
    export.mkdir()
    (export / "m-meta.json").write_text("{}")
    (tmp_path / "c.safetensors").write_bytes(b"\x02\0\0\0\0\0\0\0{}")
    for name in [n for n in sys.modules if n.startswith(blocked + ".")] + [blocked]:
        monkeypatch.setitem(sys.modules, name, None)  # `import MODULE[.SUB]` fails (a loaded
        #                                               submodule would be found by its name)
    out = tmp_path / "out"
    argv = [a.format(out=out, export=export, checkpoint=tmp_path / "c.safetensors")
            for a in argv]
    code = main(argv)
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"inceptionzoo {argv[0]}: error: ") and blocked in err[0]
    assert f"'.[cpu,{extra}]'" in err[0] and "checkout" in err[0], err[0]
    assert not out.exists()


def test_missing_extra_names_every_extra_of_setup_cfg():
    """Each module of cli.EXTRAS maps to an extra setup.cfg defines."""
    from test_docs import _extras

    extras = set(_extras()["options.extras_require"])
    for module, extra in cli.EXTRAS.items():
        err = ModuleNotFoundError(f"No module named {module!r}", name=module)
        assert extra in extras and f"'.[cpu,{extra}]'" in cli.missing_extra(err)
    assert cli.missing_extra(ModuleNotFoundError("x", name="numpy")) is None


def test_warnings_are_one_line_naming_the_command():
    """On the terminal (a process of its own: pytest records warnings), a warning during a
    command is one line, MXNet's "Cannot decide type" none, and the state is restored after."""
    import subprocess
    import sys

    code = ("import warnings; from inceptionzoo import cli\n"
            "with cli._one_line_warnings('predict'):\n"
            "    warnings.warn('x-tuning.json is ignored: made for another machine\\n(rerun)')\n"
            "    warnings.warn('Cannot decide type for the following arguments. Consider')\n"
            "warnings.warn('after')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    err = run.stderr.splitlines()
    assert run.returncode == 0 and err[0] == ("inceptionzoo predict: warning: x-tuning.json is "
                                              "ignored: made for another machine (rerun)"), err
    assert not any("Cannot decide type" in line for line in err)
    assert "UserWarning: after" in run.stderr  # as before, once the command is done


def test_a_caller_recording_warnings_still_gets_them(tmp_path):
    import warnings

    with pytest.warns(UserWarning, match="is ignored"):
        with cli._one_line_warnings("predict"):
            warnings.warn("x is ignored")


def test_launch_refuses_ssh_options_with_the_local_launcher(capsys):
    assert main(["launch", "--hostfile", "hosts", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "--hostfile: read by --launcher ssh only; got --launcher local" in err, err


def test_examples_writes_the_shipped_digits_and_refuses_to_replace_them(tmp_path, capsys):
    from inceptionzoo.mnist import example_images

    out = tmp_path / "ex"
    assert main(["examples", "--out", str(out), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert sorted(os.listdir(out)) == [os.path.basename(p) for p in example_images()]
    assert written == [str(out / os.path.basename(p)) for p in example_images()]
    assert (out / "digit-7-test0.png").read_bytes() == open(
        [p for p in example_images() if p.endswith("digit-7-test0.png")][0], "rb").read()
    assert main(["examples", "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["examples", "--out", str(out), "--overwrite"]) == 0


def test_list_filters_markdown_and_json(capsys):
    assert main(["list", "--include", "googlenet*", "--markdown"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["googlenet", "googlenet_bn"]
    assert main(["list", "--include", "googlenet*", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["googlenet", "googlenet_bn"]


def test_convert_refuses_to_replace_without_overwrite(tmp_path, monkeypatch, capsys):
    calls = _fake_convert(monkeypatch)
    (tmp_path / "inception_v4.timm_in1k.params").write_bytes(b"old")
    assert main(["convert", "timm:inception_v4", "c.pth", "--out", str(tmp_path)]) == 0
    assert main(["convert", "timm:inception_v4", "c.pth", "--out", str(tmp_path),
                 "--overwrite"]) == 0
    target = str(tmp_path / "inception_v4.timm_in1k.params")
    assert calls == [(target, False), (target, True)]  # convert() refuses (test_convert.py)


def test_convert_writes_into_the_weights_folder_by_default(tmp_path, monkeypatch):
    calls = _fake_convert(monkeypatch)
    monkeypatch.setenv("INCEPTIONZOO_HOME", str(tmp_path / "home"))
    assert main(["convert", "timm:inception_v4", "c.pth"]) == 0
    assert calls == [(str(tmp_path / "home" / "inception_v4.timm_in1k.params"), False)]


def test_weights_dir_is_the_one_name_and_root_its_old_spelling(capsys):
    args = _parse(["export", "googlenet_bn", "--pretrained", "--out", "d", "--weights-dir", "w"])
    assert args.weights_dir == "w" and capsys.readouterr().err == ""
    args = _parse(["export", "googlenet_bn", "--pretrained", "--out", "d", "--root", "w"])
    assert args.weights_dir == "w"
    assert "--root DIR is deprecated" in capsys.readouterr().err


def test_train_without_out_saves_under_runs_and_never_over_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli._default_run_folder("Inception_MNIST", reuse=False) == os.path.join(
        "runs", "inception_mnist")
    os.makedirs(os.path.join("runs", "inception_mnist"))
    (tmp_path / "runs" / "inception_mnist" / "metrics.json").write_text("{}")
    assert cli._default_run_folder("inception_mnist", reuse=False) == os.path.join(
        "runs", "inception_mnist-2")
    assert cli._default_run_folder("inception_mnist", reuse=True) == os.path.join(
        "runs", "inception_mnist")


#: fields of the options records the command line does not give as an argument, and why
PYTHON_ONLY = {"log": "--json sends the epochs' lines to stderr"}

#: command lines that, together, give every option of a command another value than its default
EVERY_OPTION = {
    ("train.train", "TrainOptions"): [
        "train googlenet --data-dir d --train-data t --val-data v --classes 3 --params w.params "
        "--freeze-features --weights-dir w --recipe seed --epochs 3 --batch-size 7 --lr 0.5 "
        "--optimizer nag --momentum 0.5 --wd 0.25 --schedule cosine --seed 4 --ctx cpu0,cpu1 "
        "--kvstore local --data-threads 2 --out o --resume --overwrite --no-progress --json"],
    ("evaluation.evaluate", "EvaluateOptions"): [
        "evaluate googlenet --params w.params --weights-dir w --data-dir d --val-data v "
        "--classes 3 --batch-size 7 --data-threads 2 --ctx cpu1",
        "evaluate googlenet --pretrained tv_in1k"],
}


@pytest.mark.parametrize("target, record", list(EVERY_OPTION))
def test_every_option_is_reachable_from_the_command_line(target, record, monkeypatch, capsys):
    """`inceptionzoo train` / `evaluate` hand the library one options record built from their
    arguments: command lines with every option set every field but the Python-only ones."""
    import dataclasses
    import importlib

    from inceptionzoo import options

    module, _, name = target.rpartition(".")
    got = []
    monkeypatch.setattr(importlib.import_module(f"inceptionzoo.{module}"), name,
                        lambda o: got.append(o) or {"rank": 1, "accuracy": 0.5, "correct": 1,
                                                    "num_samples": 2, "model": "m",
                                                    "params": "p"})
    for argv in EVERY_OPTION[target, record]:
        assert main(argv.split()) == 0
    cls = getattr(options, record)
    assert got and all(type(o) is cls for o in got)
    unset = [f.name for f in dataclasses.fields(cls) if f.name not in PYTHON_ONLY
             and all(getattr(o, f.name) == f.default for o in got)]
    assert not unset, f"{record} fields the command line cannot set: {unset}"
    assert got[0].root == "w" and got[0].data_threads == 2 and got[0].model == "googlenet"


def test_train_options_as_the_command_gives_them(monkeypatch):
    import inceptionzoo.train as t

    got = []
    monkeypatch.setattr(t, "train", lambda options: got.append(options) or {"rank": 1})
    assert main(EVERY_OPTION["train.train", "TrainOptions"][0].split()) == 0
    (record,) = got
    assert record.pretrained == "w.params" and record.progress is False
    assert record.log is not print  # --json: the epochs' lines go to stderr


@pytest.mark.parametrize("command, record", [("train", "TrainOptions"),
                                             ("evaluate", "EvaluateOptions")])
def test_help_lists_every_option_of_the_record(command, record):
    import dataclasses

    from inceptionzoo import options

    cls = getattr(options, record)
    text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    given = {f.name for f, _ in options.cli_fields(cls)}
    assert {f.name for f in dataclasses.fields(cls)} - given <= set(PYTHON_ONLY)
    for f, cli in options.cli_fields(cls):
        for flag in cli["flags"]:
            assert flag in text, (f.name, flag)


def test_errors_speak_in_flags(tmp_path):
    """The hint of a missing converted file names the command line's flag and no file of the
    repository that is not installed."""
    from inceptionzoo import get_model
    from inceptionzoo.weights import WeightsError

    for name in ("inception_v3", "googlenet"):
        with pytest.raises(WeightsError) as err:
            get_model(name, pretrained=True, root=str(tmp_path))
        hint = str(err.value)
        assert "--params FILE" in hint and "docs/" not in hint, hint


def test_predict_on_a_folder_of_two_exports_suggests_name(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / f"{name}-meta.json").write_text("{}")
    assert main(["predict", str(tmp_path), "x.png"]) == 2
    assert "choose one with --name NAME" in capsys.readouterr().err


def test_train_without_out_saves_says_where_and_shows_the_loss(mnist_dir, tmp_path,
                                                               monkeypatch, capsys):
    """A short epoch: the progress bar's loss is refreshed to the epoch's (it showed step 0's
    throughout), the epoch line gives the training loss, and without --out the model is saved
    under runs/ and the last line says where (it was thrown away)."""
    import time

    from _sample_data import write_mnist_subset

    data = write_mnist_subset(str(tmp_path / "mnist"), mnist_dir, 200, 100)
    monkeypatch.chdir(tmp_path)
    clock = iter(range(0, 10 ** 6, 2))  # every step takes "2 s": the bar refreshes each one
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))
    assert main(["train", "inception_mnist", "--data-dir", data, "--recipe", "seed",
                 "--epochs", "1", "--batch-size", "50"]) == 0
    out, err = capsys.readouterr()
    m = re.search(r"epoch 1: training loss (\d+\.\d{4}), test accuracy", out)
    assert m, out
    assert re.findall(r"loss=(\d+\.\d{4})", err)[-1] == m.group(1), err
    saved = os.path.join(tmp_path, "runs", "inception_mnist", "inception_mnist-0001.params")
    assert out.splitlines()[-1].endswith(f"; saved {saved}") and os.path.isfile(saved)


def test_offline_mnist_download_says_to_pass_data_dir(tmp_path, monkeypatch, capsys):
    import mxnet as mx
    import requests

    import inceptionzoo.mnist as mnist

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='repo.mxnet.io', port=443): Max retries exceeded")

    monkeypatch.delenv("INCEPTIONZOO_DATA", raising=False)
    monkeypatch.setattr(mnist, "_mxnet_mnist_dir", lambda: str(tmp_path / "mxnet-mnist"))
    monkeypatch.setattr(mx.gluon.data.vision, "MNIST", offline)
    assert main(["train", "inception_mnist", "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "downloading it failed (HTTPSConnectionPool" in err[0], err
    assert "--data-dir DIR" in err[0] and "$INCEPTIONZOO_DATA" in err[0]


def test_demo_prints_each_row_as_it_goes_says_why_onnx_is_skipped_and_what_next(
        tmp_path, monkeypatch, capsys):
    import sys

    from inceptionzoo import demo

    rows = []
    demo.smoke_table(["inception_naive_mnist"], on_row=rows.append)  # a row as soon as it ran
    assert [r[0] for r in rows] == ["inception_naive_mnist"]
    monkeypatch.setattr(demo, "list_models", lambda: ["inception_mnist"])
    monkeypatch.setitem(sys.modules, "onnx", None)  # an install without the onnx extra
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--out", "d"]) == 0
    out = capsys.readouterr().out
    assert "(no ONNX file: onnx is not installed (the onnx extra" in out
    assert not (tmp_path / "d" / "inception_mnist.onnx").exists()
    assert "10/10 correct" in out and "\nNext:\n" in out
    assert "inceptionzoo examples --out examples" in out.split("Next:")[1]
    assert main(["demo", "--out", "d", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["correct"] == report["images"] == 10 and report["onnx_skipped"]


def test_export_and_tune_report_as_json(tmp_path, capsys):
    out = tmp_path / "deploy"
    assert main(["export", "inception_mnist", "--pretrained", "--out", str(out), "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert {"symbol", "params", "meta"} <= set(paths) and all(map(os.path.isfile,
                                                                 paths.values()))
    assert main(["tune", str(out), "--batch-sizes", "1", "--runtime", "mxnet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["choice"]) == ["1"] and report["choice"]["1"].startswith("mxnet")
    assert os.path.isfile(report["tuning"])


def test_the_recipe_help_names_every_recipe():
    """``train --recipe``'s help lists the recipes: exactly the keys of ``train.RECIPES``."""
    import re

    from inceptionzoo.cli import build_parser
    from inceptionzoo.train import RECIPES

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    text = next(a.help for a in commands["train"]._actions if "--recipe" in a.option_strings)
    assert set(re.findall(r"[\w-]+", text)) - {"or"} == set(RECIPES), text
