import os
import re
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from inceptionzoo._registry import models_markdown

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
    version tested, the OpenJDK that .ci/run installs."""
    tested = re.search(r"openjdk-(\d+)-jre", _doc(".ci", "run")).group(1)
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
    named = set(re.findall(r"`(\w+Error)`", opening)) - {"ValueError", "TypeError", "OSError"}
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
    assert f"inceptionzoo[cpu,{RECORDIO_EXTRA}]" in block
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    extra = cfg["options.extras_require"][RECORDIO_EXTRA]
    assert "opencv-python" in extra, extra
