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


def test_training_md_own_images_commands_are_true():
    """training.md's own-images block evaluates the checkpoint a default run writes last, and
    names the extra that brings im2rec's OpenCV (issue 18: it evaluated `-0010` after a
    2-epoch run, and packing failed in a `[cpu]` install)."""
    import configparser

    from inceptionzoo.datasets import RECORDIO_EXTRA
    from inceptionzoo.train import RECIPES

    text = open(os.path.join(ROOT, "docs", "training.md")).read()
    block = text[text.index("inceptionzoo train --model googlenet --data-dir photos/"):]
    block = block[:block.index("```")]
    assert "--recipe" not in block and "--epochs" not in block  # the default recipe
    m = re.search(r"--params runs/rec/googlenet-(\d{4})\.params", block)
    assert m and int(m.group(1)) == RECIPES["default"].epochs, m and m.group(0)
    assert f"inceptionzoo[cpu,{RECORDIO_EXTRA}]" in block
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    extra = cfg["options.extras_require"][RECORDIO_EXTRA]
    assert "opencv-python" in extra, extra
