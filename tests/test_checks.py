"""One validator for counts (``inceptionzoo._checks``): every public entry point that takes an
"integer >= 1" refuses ``True`` and ``0`` (and floats, strings) with one ``InceptionZooError``
naming the argument, and takes a numpy integer as the integer it is (issue 30)."""
import dataclasses
import os
import re

import mxnet as mx
import numpy as np
import pytest

from inceptionzoo import InceptionZooError, get_model
from inceptionzoo._checks import check_count, check_counts, is_integer

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                   "inceptionzoo")


@pytest.mark.parametrize("value, ok", [
    (3, True), (np.int64(3), True), (np.uint8(3), True), (True, False), (False, False),
    (np.bool_(True), False), (3.0, False), ("3", False), (None, False)])
def test_is_integer(value, ok):
    assert is_integer(value) is ok


def test_check_count_names_range_and_value():
    assert check_count("classes", np.int64(3)) == 3 and type(check_count("x", np.int64(3))) is int
    for bad in (True, 0, -1, 2.0, "2", None):
        with pytest.raises(InceptionZooError, match=re.escape(
                f"classes must be an integer >= 1; got {bad!r}")):
            check_count("classes", bad)
    with pytest.raises(InceptionZooError, match=r"port must be an integer in 1\.\.9; got 10"):
        check_count("port", 10, 1, 9)
    assert check_counts("batch sizes", (np.int64(2), 5)) == [2, 5]
    for bad in ([0], [True], [1.5], "12", 3):
        with pytest.raises(InceptionZooError, match="batch sizes must be"):
            check_counts("batch sizes", bad)


def test_no_other_count_check_is_left():
    """The hand-written forms of the check that drifted (``isinstance(v, int)`` then ``< 1``)
    are gone from the package: every count goes through ``_checks`` (which the ``.mar``'s
    serving core carries too)."""
    pattern = re.compile(r"isinstance\(\w+(\.\w+)?, (int|\(int, np\.integer\)|numbers\.Integral)\)"
                         r".{0,80}(< ?1\b|>= ?1\b)", re.S)
    found = []
    for name in sorted(os.listdir(SRC)) + [f"models/{n}" for n in os.listdir(f"{SRC}/models")]:
        if name.endswith(".py") and name != "_checks.py":
            text = open(os.path.join(SRC, name)).read()
            found += [f"{name}: {m.group(0)[:60]!r}" for m in pattern.finditer(text)]
    assert not found, found


# --- each public entry point -----------------------------------------------------------------

def _refuses(call, name, values=(True, 0)):
    for value in values:
        with pytest.raises(InceptionZooError, match=re.escape(name) + " must be .*; got "
                           + re.escape(repr(value))):
            call(value)


def test_networks_take_numpy_counts_and_refuse_bools():
    net = get_model("inception_mnist", classes=np.int64(3))
    assert net.classes == 3 and type(net.classes) is int and net.info.classes == 3
    assert get_model("inception_mnist", num_classes=np.int64(3)).classes == 3
    assert get_model("inception_mnist", in_chans=np.int64(3)).in_channels == 3
    _refuses(lambda v: get_model("inception_mnist", classes=v), "classes (num_classes)",
             (True, -1))
    _refuses(lambda v: get_model("inception_mnist", in_channels=v), "in_channels")
    net.reset_classifier(np.int64(4))
    assert net.classes == 4
    _refuses(net.reset_classifier, "classes", (True, -1))


def test_training_takes_numpy_counts_and_refuses_bools():
    from inceptionzoo.train import RECIPES, TrainOptions, _check_options, check_recipe, train

    check_recipe(dataclasses.replace(RECIPES["default"], epochs=np.int64(3),
                                     batch_size=np.int64(3)))
    _check_options(TrainOptions(classes=np.int64(3), epochs=np.int64(3), batch_size=np.int64(3),
                                seed=np.int64(3)))
    _refuses(lambda v: train(epochs=v), "epochs")
    _refuses(lambda v: train(batch_size=v), "batch size")
    _refuses(lambda v: train(classes=v), "classes")


def test_evaluation_takes_numpy_counts_and_refuses_bools(mnist_dir):
    from inceptionzoo.train import evaluate

    _refuses(lambda v: evaluate(pretrained=True, batch_size=v), "batch size")
    _refuses(lambda v: evaluate(pretrained=True, classes=v), "classes")
    _refuses(lambda v: evaluate(pretrained=True, data_threads=v), "data threads")
    got = evaluate(pretrained=True, data_dir=mnist_dir, batch_size=np.int64(5000),
                   classes=np.int64(10), data_threads=np.int64(1))
    assert got["num_samples"] == 10000 and got["accuracy"] > 0.99


def test_data_sources_take_numpy_counts_and_refuse_bools(mnist_dir):
    from inceptionzoo import model_info
    from inceptionzoo.datasets import open_sources

    info = model_info("inception_mnist")
    _refuses(lambda v: open_sources(info, mnist_dir, threads=v), "data threads")
    _, val = open_sources(info, mnist_dir, threads=np.int64(3), train=False)
    assert val is not None


def test_packing_refuses_bools(tmp_path):
    from inceptionzoo.packing import write_recordio

    (tmp_path / "data" / "a").mkdir(parents=True)
    for name in ("threads", "quality"):
        _refuses(lambda v: write_recordio(str(tmp_path / "data"), str(tmp_path / "out"),
                                          **{name: v}), name)


def test_launch_refuses_bools():
    from inceptionzoo.launch import launch

    _refuses(lambda v: launch(["true"], workers=v), "--workers")
    _refuses(lambda v: launch(["true"], servers=v), "--servers")


def test_graphs_and_the_predictor_take_numpy_counts_and_refuse_bools(tmp_path):
    from inceptionzoo.export import export
    from inceptionzoo.graph_tuning import TunedGraph
    from inceptionzoo.serving import PredictionError, Predictor

    net = get_model("inception_mnist", pretrained=True)
    graph = TunedGraph.from_block(net)
    assert set(graph.warmup([np.int64(2)], calls=1)) == {2}
    for bad in ([True], [0], [1.7]):
        with pytest.raises(InceptionZooError, match="batch sizes must be integers >= 1"):
            graph.warmup(bad)
    export(net, str(tmp_path / "inception_mnist"))
    p = Predictor(str(tmp_path), runtime="mxnet")
    image = np.zeros((28, 28), np.uint8)
    assert len(p.predict(image, top_k=np.int64(3))[0]) == 3
    _refuses(lambda v: p.predict(image, top_k=v), "top_k")
    for bad in ([True], [0]):
        with pytest.raises(PredictionError, match="batch sizes must be integers >= 1"):
            p.warmup(bad)
    assert mx.nd.zeros((1,)).shape == (1,)
