"""The command line's one convention (docs/api.md, "Command line"): each new spelling parses to
the arguments the library gets, each old spelling still does with one deprecation line naming
the new one, and every command shown in README.md and docs/ uses the new spellings."""
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
     ["train", "inception_mnist", "--data-workers", "3"], {"data_workers": 3}),
    (["evaluate", "googlenet", "--pretrained"],
     ["evaluate", "--model", "googlenet", "--pretrained"],
     {"model": "googlenet", "pretrained": True}),
    (["evaluate", "inception_mnist", "--pretrained"], ["evaluate", "--pretrained"],
     {"model": "inception_mnist"}),
    (["evaluate", "inception_mnist", "--pretrained", "--data-threads", "2"],
     ["evaluate", "inception_mnist", "--pretrained", "--data-workers", "2"], {"data_workers": 2}),
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
        calls.append(out)
        return {"model": "inception_v4", "sha1": "0" * 40, "source": spec, "input_size": 299,
                "resize_size": 342, "interpolation": "bicubic", "mean": 0, "std": 1}

    monkeypatch.setattr(convert, "convert", fake)
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
    assert calls == [str(tmp_path / "inception_v4.timm_in1k.params"), str(tmp_path / "g.params"),
                     str(tmp_path / "v4.params")]
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
