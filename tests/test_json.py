"""Every JSON file the library reads goes through one bounded reader (inceptionzoo._io.read_json):
a file nested 100,000 levels deep, or larger than any the library writes, is one clear error of
the caller's kind, never a RecursionError."""
import os
import re

import pytest

import inceptionzoo
from inceptionzoo import get_model
from inceptionzoo._io import JSON_MAX_DEPTH, parse_json, read_json
from inceptionzoo.errors import InceptionZooError, WeightsError
from test_builder import write_converted

DEEP = b"[" * 100000 + b"]" * 100000


@pytest.mark.parametrize("text,words", [
    (DEEP, "nested 100000 levels deep, expected at most 32"),
    (b"{" * 40, "nested 40 levels deep"),
    (b'{"a": ' * 33 + b"1" + b"}" * 33, "nested 33 levels deep"),
    (b"\xff\xfe", "not UTF-8 text"),
    (b'{"a": 1', "not a JSON file: Expecting"),
    (b"", "not a JSON file: Expecting value"),
])
def test_parse_json_refuses_with_the_callers_error(text, words):
    with pytest.raises(WeightsError, match=re.escape(words)):
        parse_json(text, "f.json", WeightsError)


def test_brackets_inside_strings_do_not_count():
    deep_string = '"' + "[" * 1000 + '\\"{' + '"'
    assert parse_json(f'{{"k": [{deep_string}]}}', "f.json") == {"k": ["[" * 1000 + '"{']}
    nested = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH
    assert parse_json(nested, "f.json") is not None


def test_read_json_checks_the_size_before_reading_all(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b"[" + b"0," * 100 + b"0]")
    with pytest.raises(InceptionZooError, match="larger than 50 bytes"):
        read_json(path, InceptionZooError, max_bytes=50)
    with pytest.raises(InceptionZooError, match="cannot read .*No such file"):
        read_json(tmp_path / "none.json", InceptionZooError)


def test_a_deep_sidecar_is_a_weights_error(tmp_path):
    path, _ = write_converted("inception_mnist", tmp_path / "w.params")
    (tmp_path / "w.json").write_bytes(DEEP)
    with pytest.raises(WeightsError, match=r"w\.json: not a JSON file of this library: nested "
                                           r"100000 levels deep"):
        get_model("inception_mnist", pretrained=path)


def test_a_deep_metrics_json_is_a_clear_train_error(tmp_path, mnist_dir, capsys):
    from inceptionzoo.cli import main
    from _sample_data import write_mnist_subset

    data = write_mnist_subset(str(tmp_path / "data"), mnist_dir, 20, 20)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_bytes(DEEP)
    code = main(["train", "inception_mnist", "--out", str(tmp_path / "run"), "--resume",
                 "--epochs", "1", "--no-progress", "--data-dir", data])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nested 100000 levels deep" in err, err


# MXNet's own `Symbol.tojson()` output, parsed in memory (never a user's file):
# symbol_graphs.symbol_graph
_OWN_JSON = {"symbol_graphs.py"}


def test_no_module_parses_json_by_itself():
    root = os.path.dirname(inceptionzoo.__file__)
    found = []
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if f.endswith(".py") and rel not in _OWN_JSON | {"_io.py"}:
                text = open(os.path.join(d, f)).read()
                found += [f"{rel}: {m}" for m in re.findall(r"json\.loads?\(", text)]
    assert found == []
