import os
import re

from conftest import ROOT
from inceptionzoo._registry import models_markdown

BEGIN, END = "<!-- models-table:begin -->", "<!-- models-table:end -->"


def test_model_table_matches_registry():
    text = open(os.path.join(ROOT, "docs", "models.md")).read()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    assert m, "docs/models.md lost its table markers"
    assert m.group(1) == models_markdown(), (
        "docs/models.md is out of date: regenerate with `inceptionzoo list --markdown`")


def test_docs_name_only_public_things():
    import inceptionzoo

    api = open(os.path.join(ROOT, "docs", "api.md")).read()
    for name in inceptionzoo.__all__:
        if not name.startswith("_"):
            assert name in api, f"docs/api.md does not document {name}"


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
