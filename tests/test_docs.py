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
    text = open(os.path.join(ROOT, "docs", "benchmarks.md")).read()
    for section in ("mnist", "targets", "googlenet"):
        m = re.search(f"<!-- bench:{section}:begin -->\n(.*?)\n<!-- bench:{section}:end -->",
                      text, re.S)
        assert m, section
        assert "| model | ctx | mode |" in m.group(1)
        assert "Measured with `benchmarks/throughput.py" in m.group(1)
    assert os.path.isfile(os.path.join(ROOT, "docs", "throughput.png"))
