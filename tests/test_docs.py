import os
import re
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from inceptionzoo._docs import models_markdown

BEGIN, END = "<!-- models-table:begin -->", "<!-- models-table:end -->"


def test_model_table_matches_registry():
    text = open(os.path.join(ROOT, "docs", "models.md")).read()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert m, "docs/models.md lost its table markers"
    assert m.group(1) == models_markdown(), (
        "docs/models.md is out of date: regenerate with `inceptionzoo list --markdown`")


def _sections(path):
    """Heading -> body of each ``## `` section of a markdown file."""
    parts = re.split(r"^## (.*)$", open(path).read(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_api_md_documents_exactly_the_package_names():
    """The bullets of docs/api.md's sections on the package itself (``(`inceptionzoo`...``)
    name each exported name once, and nothing else."""
    import inceptionzoo

    documented = []
    for heading, body in _sections(os.path.join(ROOT, "docs", "api.md")).items():
        if "(`inceptionzoo`" in heading:
            documented += re.findall(r"^- `(\w+)", body, re.M)
    assert sorted(documented) == sorted(inceptionzoo.__all__), (
        f"exported, not documented: {sorted(set(inceptionzoo.__all__) - set(documented))}; "
        f"documented, not exported: {sorted(set(documented) - set(inceptionzoo.__all__))}")


def _bench_section(text, section):
    m = re.search(f"<!-- bench:{section}:begin -->\n(.*?)\n<!-- bench:{section}:end -->",
                  text, re.S)
    assert m, f"docs/benchmarks.md lost its section {section}"
    return m.group(1)


#: the sections benchmarks/throughput.py writes (the others come from imagenet_inception.py and
#: imagenet_profile.py, whose commands test_benchmark_sections_are_generated checks)
BENCH_SECTIONS = ["mnist", "peers", "serving-targets-mnist"]
#: sections measured before the harness gained modes (issue 18: rerun them); strict, so that
#: the rerun must drop the mark
STALE = {}


@pytest.mark.parametrize("section", [pytest.param(s, marks=pytest.mark.xfail(
    reason=STALE[s], strict=True)) if s in STALE else s for s in BENCH_SECTIONS])
def test_benchmark_sections_are_what_their_command_measures(section):
    """Each table of docs/benchmarks.md has the harness's header, and its rows are exactly the
    configurations of the command written under it, in the harness's order."""
    import shlex

    from throughput import build_parser, plan, table

    body = _bench_section(open(os.path.join(ROOT, "docs", "benchmarks.md")).read(), section)
    lines = body.splitlines()
    assert lines[:2] == table([]).splitlines()
    rows = [[c.strip() for c in ln.strip("|").split("|")]
            for ln in lines[2:] if ln.startswith("|")]
    m = re.search(r"Measured with `benchmarks/throughput\.py ([^`]*)`", body)
    assert m, "no command under the table"
    args = build_parser().parse_args(shlex.split(m.group(1)))
    assert (args.doc, args.doc_section) == ("docs/benchmarks.md", section)
    models, modes, batches = plan(args)
    want = [(mo, args.ctx, mode, str(b)) for mo in models for b in batches for mode in modes]
    # the mode cell may add the runtime the serving graph picked and ONNX Runtime's threads
    # ("serving: onnxruntime, 1 thread", "onnxruntime, 1 thread")
    assert [(r[0], r[1], re.split("[:,]", r[2])[0], r[3]) for r in rows] == want


def test_benchmark_sections_are_generated():
    """Every marked section of docs/benchmarks.md is rewritten by a command of
    benchmarks/rerun_docs.sh, and every section that command writes exists; a section holding
    a table names the command that wrote it."""
    text = open(os.path.join(ROOT, "docs", "benchmarks.md")).read()
    script = open(os.path.join(ROOT, "benchmarks", "rerun_docs.sh")).read()
    sections = re.findall(r"<!-- bench:([\w-]+):begin -->", text)
    written = re.findall(r"--doc-section ([\w-]+)", script)
    assert sorted(sections) == sorted(written), (sections, written)
    assert {"mnist", "peers", "imagenet", "imagenet-train", "imagenet-profile"} <= set(sections)
    for section in sections:
        m = re.search(f"<!-- bench:{section}:begin -->\n(.*?)\n<!-- bench:{section}:end -->",
                      text, re.S)
        assert m, section
        if "| model | ctx | mode |" in m.group(1):
            assert re.search(r"Measured with `benchmarks/\w+\.py .*--doc-section "
                             + re.escape(section) + r"`", m.group(1)), section
    assert os.path.isfile(os.path.join(ROOT, "docs", "throughput.png"))


def test_cost_docs_are_what_cost_tables_prints():
    """Every generated table of docs/cost.md (the seed's analysis, the MNIST blocks, GoogLeNet
    against Table 1, the ImageNet totals) is what ``benchmarks/cost_tables.py`` prints now."""
    import cost_tables

    text = open(os.path.join(ROOT, "docs", "cost.md")).read()
    for key, body in cost_tables.tables().items():
        m = re.search(f"<!-- {key}:begin -->\n(.*?)\n<!-- {key}:end -->", text, re.S)
        assert m, f"docs/cost.md lost its {key} markers"
        assert m.group(1) == body, f"docs/cost.md {key} is stale: run benchmarks/cost_tables.py"


def _doc(*path):
    return open(os.path.join(ROOT, *path)).read()


def test_quick_start_lists_models_in_list_models_order():
    from inceptionzoo import list_models

    m = re.search(r"^list_models\(\) +# \[(.*), \.\.\.\]$", _doc("docs", "index.md"), re.M)
    assert m, "docs/index.md lost its list_models() line"
    shown = [s.strip().strip("'") for s in m.group(1).split(",")]
    assert shown == list_models()[:len(shown)]


def test_docs_say_bench_needs_a_checkout():
    """The harness is developer tooling beside the package: every doc line that runs
    `inceptionzoo bench` says it needs a checkout."""
    import inceptionzoo
    from inceptionzoo.cli import HARNESS

    package = os.path.dirname(inceptionzoo.__file__)
    assert not os.path.exists(os.path.join(package, HARNESS))  # not installed with the package
    for page in ["README.md"] + [os.path.join("docs", f) for f in os.listdir(
            os.path.join(ROOT, "docs")) if f.endswith(".md")]:
        text = _doc(page)
        for m in re.finditer(r"inceptionzoo bench", text):
            context = text[max(0, m.start() - 300):m.end() + 300]
            assert "checkout" in context, f"{page}: `inceptionzoo bench` without 'checkout'"


def _extras():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    return cfg


def test_docs_name_real_extras_and_gluoncv_is_one():
    cfg = _extras()
    extras = set(cfg["options.extras_require"])
    pages = ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(
        os.path.join(ROOT, "docs"))) if f.endswith(".md")]
    named = set()
    for page in pages:
        for group in re.findall(r"(?:inceptionzoo|'\.)\[([\w,]+)\]", _doc(page)):
            named |= set(group.split(","))
    assert named and named <= extras, sorted(named - extras)
    assert "gluoncv" in extras and "gluoncv" not in cfg["options"]["install_requires"]
    assert "the `gluoncv` extra" in _doc("docs", "index.md")


def test_java_statements_agree_with_what_ci_installs():
    """README, docs/deploy.md and setup.cfg state MMS's own requirement (Java 8 or newer) and the
    version tested, the OpenJDK that `make test` installs (`make system-deps`)."""
    tested = re.search(r"openjdk-(\d+)-jre", _doc("Makefile")).group(1)
    for page in ("README.md", os.path.join("docs", "deploy.md")):
        text = " ".join(_doc(page).split())
        assert "8 or newer by MMS's own documentation" in text, page
        assert f"tested here with OpenJDK {tested}" in text or \
            f"tested with OpenJDK {tested}" in text, page
    assert f"Java 8+; tested with {tested}" in _doc("setup.cfg")


def test_smallest_inputs_in_the_docs_are_the_networks():
    """docs/models.md and docs/cost.md quote the smallest inputs of the ImageNet networks and the
    test input size; each is computed here from the networks' own shape checks."""
    from conftest import SMALL_HW, is_big, test_shape
    from inceptionzoo import get_model, list_models

    smallest, tested, big = {}, {}, []
    for name in filter(is_big, list_models()):
        net = get_model(name)
        design = net.info.input_shape[1]
        smallest[name] = max(net.taken_sizes(0)[0], net.taken_sizes(1)[0])
        tested[name] = test_shape(name)[1]
        big += [name] if design == 299 else []
    models = " ".join(_doc("docs", "models.md").split())
    assert f"the smallest square input of at least {SMALL_HW} pixels they take" in models
    side = {tested[n] for n in big}
    assert len(side) == 1 and side == {smallest[n] for n in big}, (tested, smallest)
    assert f"{side.pop()}x{tested[big[0]]} for the 299x299 networks, their smallest" in models
    g, bn = "googlenet", "googlenet_bn"
    assert tested[g] == tested[bn] == SMALL_HW
    assert (f"{SMALL_HW}x{SMALL_HW} for `{g}` and `{bn}`, whose smallest are "
            f"{smallest[g]}x{smallest[g]} and {smallest[bn]}x{smallest[bn]}") in models
    assert f"takes any size from {smallest[g]} px up" in " ".join(_doc("docs", "cost.md").split())



def _defined(name, text):
    """Whether ``text`` (Python source) defines ``name``: a function, class, assignment,
    dataclass field, class attribute or parameter."""
    n = re.escape(name)
    return bool(re.search(rf"^\s*(?:def |class )?{n}\b\s*[(=:]|[(,]\s*{n}\s*[:=,)]", text,
                          re.M))


def test_contributing_names_only_files_and_tests_that_exist():
    """docs/contributing.md points at files, tests and names; each exists: every
    ``path::test``, every path, and every code name in backticks is defined in the tree."""
    text = _doc("docs", "contributing.md")
    paths = set(re.findall(r"`((?:src|tests|benchmarks|scripts|docs)/[\w./-]+?)(?:::(\w+))?`",
                           text))
    assert len(paths) > 20
    for path, test in sorted(paths):
        assert os.path.exists(os.path.join(ROOT, path)), path
        if test:
            assert re.search(rf"^def {test}\(", _doc(path), re.M), f"{path}::{test}"
    tree = "\n".join(open(os.path.join(folder, f)).read()
                     for top in ("src", "tests", "scripts", "benchmarks")
                     for folder, _, files in os.walk(os.path.join(ROOT, top))
                     for f in files if f.endswith(".py"))
    names = set(re.findall(r"`([A-Za-z_]\w*)(?:\(|`)", text))  # `name`, `name(...)`
    code = {n for n in names if "_" in n.strip("_") or re.match(r"[A-Z][a-z]+[A-Z]", n)
            or n in {"build", "head", "count", "Source", "drop", "renames", "classifier",
                     "mean", "std"}}
    assert {"classifier_paths", "taken_sizes", "checkpoint_sources", "Source"} <= code
    missing = sorted(n for n in code if not _defined(n, tree))
    assert not missing, f"docs/contributing.md names what the code does not define: {missing}"


def test_errors_md_names_every_exception_class():
    """The opening of docs/errors.md names each class of ``inceptionzoo.errors``, no other, and
    the one that is also a TypeError."""
    from inceptionzoo import errors

    opening = " ".join(_doc("docs", "errors.md").split("\n## ")[0].split())
    named = set(re.findall(r"`(\w+Error)`", opening)) - {"ValueError", "TypeError", "OSError",
                                                           "ModuleNotFoundError"}
    assert named == set(errors.__all__)
    typed = [n for n in errors.__all__ if issubclass(getattr(errors, n), TypeError)]
    assert typed and all(f"`{n}` (an argument of the wrong type) is also a `TypeError`" in opening
                         for n in typed)


def test_training_md_own_images_commands_are_true():
    """training.md's own-images block evaluates the checkpoint a default run writes last, and
    names the extra that brings im2rec's OpenCV (issue 18: it evaluated `-0010` after a
    2-epoch run, and packing failed in a `[cpu]` install)."""
    import configparser

    from inceptionzoo.packing import RECORDIO_EXTRA
    from inceptionzoo.train import RECIPES

    text = open(os.path.join(ROOT, "docs", "training.md")).read()
    block = text[text.index("inceptionzoo train googlenet --data-dir photos/"):]
    block = block[:block.index("```")]
    assert "--recipe" not in block and "--epochs" not in block  # the default recipe
    m = re.search(r"--params runs/rec/googlenet-(\d{4})\.params", block)
    assert m and int(m.group(1)) == RECIPES["default"].epochs, m and m.group(0)
    assert f"'.[cpu,{RECORDIO_EXTRA}]'" in block
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    extra = cfg["options.extras_require"][RECORDIO_EXTRA]
    assert "opencv-python" in extra, extra


# --- every command of the docs' shell blocks, run -------------------------------------------

#: commands of the docs' shell blocks that this test does not run, by a regular expression on
#: the command line, with the reason (each names what the block needs that a test run lacks)
NOT_RUN = {
    r"^inceptionzoo bench\b": "a benchmark: it needs a quiet machine (benchmarks/rerun_docs.sh)",
    r"^inceptionzoo convert\b": "a torchvision / timm / gluoncv checkpoint, made in the PyTorch "
                                "side environment (tests/test_convert.py runs these)",
    r"--launcher ssh": "hosts reachable over ssh (tests/test_distributed.py runs a real sshd)",
    r"--precision (int8|bf16)": "calibrated and guarded exports (30-45 s each on MNIST): "
                                "tests/test_quantization.py runs them",
    r"^inceptionzoo serve\b": "a server that runs until it is stopped (tests/test_serve.py "
                              "starts it, sends requests and stops it with SIGTERM)",
    r"(photos|imgs|rec)/|cat\.jpg|grace_hopper\.jpg|v[34]\.params|weights/googlenet_bn": (
        "your own ImageNet-size photos or converted ImageNet weights (tests/test_finetune.py)"),
}


def doc_shell_commands(text):
    """The ``inceptionzoo ...`` lines of a markdown text's shell blocks (fences without a
    language), in order: ``\\`` continuations joined, ``# ...`` comments split off (returned
    beside the line), ``[`` ``]`` around optional parts dropped (the option is given)."""
    found = []
    for lang, block in re.findall(r"^```([^\n]*)\n(.*?)^```", text, re.M | re.S):
        if lang.strip():
            continue
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line, _, comment = line.partition(" #")
            line = " ".join(line.split())
            if line.startswith("inceptionzoo "):
                found.append((re.sub(r"\[([^\[\]]*)\]", r"\1", line), comment.strip()))
    return found


def _written(argv, comment):
    """The files and folders a command line says it writes: its ``--out`` folder and a
    ``# writes PATH`` comment."""
    paths = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--out"]
    paths += re.findall(r"writes ([\w./-]+)", comment)
    return paths


def test_doc_shell_commands_reads_blocks_and_their_comments():
    text = ("x\n```\ninceptionzoo tune deploy/ --batch-sizes 1,8   # writes deploy/t.json\n"
            "inceptionzoo export m --pretrained \\\n    --out d/ [--json]\nls\n```\n"
            "```python\ninceptionzoo.get_model('x')\n```\n")
    assert doc_shell_commands(text) == [
        ("inceptionzoo tune deploy/ --batch-sizes 1,8", "writes deploy/t.json"),
        ("inceptionzoo export m --pretrained --out d/ --json", "")]
    assert _written(["export", "m", "--out", "d/"], "writes deploy/t.json") == [
        "d/", "deploy/t.json"]


@pytest.fixture(scope="module")
def doc_data(tmp_path_factory, mnist_dir):
    """What the docs' placeholders stand for: ``DIR`` (MNIST files: 300 training and 100 test
    digits) and ``digits/`` (5 classes of real digits as image folders, train/ and val/)."""
    from _sample_data import write_image_folder, write_mnist_subset
    from inceptionzoo.mnist import load_mnist

    root = tmp_path_factory.mktemp("doc-data")
    mnist = write_mnist_subset(str(root / "mnist"), mnist_dir, 300, 100)
    for split, train, n in (("train", True, 20), ("val", False, 10)):
        x, y = load_mnist(mnist_dir, train=train)
        write_image_folder(str(root / "digits" / split), x, y, per_class=n, classes=range(5))
    return {"DIR": mnist, "digits/": str(root / "digits") + "/"}


@pytest.mark.slow  # every command of the docs, trainings and the demo included: minutes
@pytest.mark.parametrize("page", ["README.md"] + [
    os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs")))
    if f.endswith(".md")])
def test_every_command_in_the_docs_runs(page, doc_data, tmp_path):
    """Each ``inceptionzoo`` line of the page's shell blocks runs, in order, in a fresh folder
    (its own weights folder and HOME), with exit status 0, and writes what it says it writes;
    the lines of NOT_RUN are left out for the reason given there."""
    import shlex
    import subprocess

    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    env = dict(os.environ, HOME=str(tmp_path / "home"), INCEPTIONZOO_HOME=str(tmp_path / "w"))
    env.pop("INCEPTIONZOO_DATA", None)
    work = tmp_path / "work"
    work.mkdir()
    ran = 0
    for line, comment in doc_shell_commands(_doc(page)):
        if any(re.search(pattern, line) for pattern in NOT_RUN):
            continue
        argv = [doc_data.get(a, a) for a in shlex.split(line)]
        assert not [p for p in _written(argv, comment) if os.path.isabs(p)], (
            f"{page}: {line}: writes outside the run's folder (an absolute path outlives the "
            "run and makes the next run's command meet an existing output)")
        argv = [exe if a == "inceptionzoo" else a for a in argv]
        run = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                             timeout=900)
        assert run.returncode == 0, f"{page}: {line}\n{run.stderr[-3000:]}"
        for path in _written(argv, comment):
            full = work / os.path.expanduser(path)
            assert full.exists() and (not full.is_dir() or any(full.iterdir())), (
                f"{page}: {line}: wrote no {path}")
        ran += 1
    shown = [ln for ln, _ in doc_shell_commands(_doc(page))]
    assert ran or not shown or all(any(re.search(p, ln) for p in NOT_RUN) for ln in shown)


# --- statements of README.md and docs/ that were false (issue 28), each checked ---------------

def test_make_test_installs_what_the_suite_needs_when_missing(tmp_path):
    """`make test` depends on `system-deps`, which installs Java (MMS) and OpenSSH's server and
    client (the ssh launcher's tests) with apt-get when missing, as .ci/run did: here on a
    machine that lacks all three (an empty PATH), with `echo` for sudo so nothing installs."""
    import shutil
    import subprocess

    make = shutil.which("make")
    if make is None:
        pytest.skip("no make here")
    assert re.search(r"^test:.*\bsystem-deps\b", _doc("Makefile"), re.M)
    empty = tmp_path / "bin"
    empty.mkdir()
    run = subprocess.run([make, "-s", "system-deps", "SUDO=echo", "SSHD=/nonexistent"],
                         cwd=ROOT, env={"PATH": str(empty)}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert re.search(r"apt-get install .*openjdk-\d+-jre-headless", out), out
    assert re.search(r"apt-get install .*openssh-server openssh-client", out), out
    present = subprocess.run([make, "-s", "system-deps", "SUDO=false"], cwd=ROOT,
                             capture_output=True, text=True)
    if shutil.which("java") and shutil.which("ssh") and os.path.exists("/usr/sbin/sshd"):
        assert present.returncode == 0 and "apt-get" not in present.stdout  # nothing to do
    ci = _doc(".ci", "run")
    assert "apt-get" not in ci and re.search(r"^make test$", ci, re.M)  # one place: the Makefile


def test_install_commands_use_the_checkout_form():
    """inceptionzoo is not on the package index: no page tells to `pip install
    'inceptionzoo[...]'`; the extras install from the checkout (`'.[cpu,...]'`)."""
    for page in _pages_md():
        assert "inceptionzoo[" not in _doc(page), page
    assert "pip install -c constraints.txt '.[cpu]'" in _doc("docs", "index.md")


def _pages_md():
    return ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(
        os.path.join(ROOT, "docs"))) if f.endswith(".md")]


def test_models_md_normalisation_is_model_info():
    from inceptionzoo import model_info

    text = " ".join(_doc("docs", "models.md").split())
    assert model_info("googlenet").mean == (0.0,) * 3 and model_info("googlenet").std == (1.0,) * 3
    assert "`googlenet`, the paper's layout, for which no weights exist, has mean 0 and std 1" \
        in text
    for name in ("googlenet_bn", "inception_v3", "inception_v4", "inception_resnet_v2"):
        assert model_info(name).mean == (0.5,) * 3 == model_info(name).std, name


def test_api_md_model_info_fields_and_network_classes():
    """The ModelInfo bullet names every field of the dataclass; every class of the Networks
    section imports from ``inceptionzoo.models``."""
    import dataclasses

    import inceptionzoo.models
    from inceptionzoo import ModelInfo

    sections = _sections(os.path.join(ROOT, "docs", "api.md"))
    body = next(b for h, b in sections.items() if h.startswith("Registry"))
    bullet = body[body.index("- `ModelInfo`"):]
    bullet = bullet[:bullet.index("\n- ")]
    named = set(re.findall(r"`(\w+)`", bullet))
    fields = {f.name for f in dataclasses.fields(ModelInfo)}
    assert fields <= named, sorted(fields - named)
    networks = next(b for h, b in sections.items() if h.startswith("Networks"))
    classes = re.findall(r"`([A-Z]\w+)\(", networks)
    assert {"GoogLeNet", "InceptionMNIST", "InceptionV3", "InceptionV4",
            "InceptionResNetV2"} <= set(classes)
    for name in classes:
        assert hasattr(inceptionzoo.models, name), name


def test_the_quick_suites_skip_is_described_as_it_reads():
    """README.md and docs/contributing.md quote the reason of the quick suite's one skip, the
    optional PyTorch peer of tests/test_bench.py (pytest.importorskip('torch'))."""
    assert 'pytest.importorskip("torch")' in _doc("tests", "test_bench.py")
    for page in ("README.md", os.path.join("docs", "contributing.md")):
        assert "`could not import 'torch'`" in " ".join(_doc(page).split()), page


def test_rerun_docs_parts_and_sections_are_all_named():
    script = _doc("benchmarks", "rerun_docs.sh")
    parts = set(re.findall(r"\$PART == (\w+)", script)) | {"all"}
    text = " ".join(_doc("docs", "benchmarks.md").split())
    m = re.search(r"`benchmarks/rerun_docs\.sh \[([\w|]+)\]`", text)
    assert m and set(m.group(1).split("|")) == parts, (m and m.group(1), parts)
    paragraph = text[m.start():m.start() + 2000]
    for section in re.findall(r"--doc-section ([\w-]+)", script):
        assert f"`{section}`" in paragraph, section


def test_errors_md_says_what_the_command_line_raises():
    """The opening names no plain ValueError of the cli package (it raises InceptionZooError),
    and bench's errors name the command."""
    import ast
    import pathlib

    from inceptionzoo import cli

    files = sorted(pathlib.Path(cli.__file__).parent.glob("*.py"))
    assert len(files) > 1  # the package's modules, not only its __init__
    plain = [(f.name, n.lineno) for f in files for n in ast.walk(ast.parse(f.read_text()))
             if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
             and getattr(n.exc.func, "id", "") == "ValueError"]
    assert plain == []
    text = " ".join(_doc("docs", "errors.md").split())
    assert "plain `ValueError`, until" not in text
    assert "one line `inceptionzoo bench: error: ...`" in text


def test_weights_md_tables_are_the_declared_sources_and_tags():
    """docs/weights.md's two tables name every source network the model files declare, with
    the model it converts to, and each model's tags (in declaration order) and their sources:
    a new source or tag makes this fail until the page lists it."""
    from inceptionzoo import list_models, model_weights
    from inceptionzoo._registry import checkpoint_sources

    text = _doc("docs", "weights.md")
    rows = re.findall(r"^\| `(\w+:\w+)` \| .* \| `(\w+)` \|$", text, re.M)
    want = {(f"{k}:{n}", s.model) for (k, n), s in checkpoint_sources().items()}
    assert len(rows) == len(set(rows)) and set(rows) == want, set(rows) ^ want
    tagged = {}
    for names, tags, sources in re.findall(r"^\| (`\w+`(?:, `\w+`)*) \| (`\w+`(?:, `\w+`)*) \| "
                                           r"(.*) \|$", text, re.M):
        for name in re.findall(r"`(\w+)`", names):
            tagged[name] = (re.findall(r"`(\w+)`", tags), re.findall(r"`([\w:]+)`", sources))
    declared = {}
    for name in list_models():
        specs = model_weights(name)
        if specs:
            sources = [s.source for s in specs if s.source != "shipped"]
            declared[name] = ([s.tag for s in specs], sources)
    assert set(tagged) == set(declared), set(tagged) ^ set(declared)
    for name, (tags, sources) in declared.items():
        assert tagged[name][0] == tags, name
        assert all(s in tagged[name][1] for s in sources), name


def test_api_md_lists_every_field_of_the_options_records():
    """docs/api.md's Training section names each field of TrainOptions and EvaluateOptions
    (the one declaration, in inceptionzoo.options)."""
    import dataclasses

    from inceptionzoo.options import EvaluateOptions, TrainOptions

    text = _sections(os.path.join(ROOT, "docs", "api.md"))["Training (`inceptionzoo.train`)"]
    for record in (TrainOptions, EvaluateOptions):
        missing = [f.name for f in dataclasses.fields(record)
                   if not re.search(rf"`{f.name}(=[^`]*)?`", text)]
        assert not missing, (record.__name__, missing)
