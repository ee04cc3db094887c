"""One weights spec, one builder: ``pretrained`` means the same for every registered network
(True / a path / False), ``classes=N`` loads all but the classifier, sidecars are validated
field by field, the preprocessing of ``evaluate`` / ``train`` comes from the weights, 1000-class
weights are labelled with the ImageNet-1k names, and no model module imports the converter.

Converted files are made here without torch: a zoo network with random weights (and random BN
statistics) saved with the sidecar the converter would write."""
import dataclasses
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from conftest import ROOT, is_big, model_params, test_shape
from inceptionzoo import (InceptionZooError, UnknownModelError, get_model, list_models,
                          model_info, model_weights)
from inceptionzoo._io import sha1_file
from inceptionzoo.weights import WeightsError
from inceptionzoo.weights_spec import (IMAGENET_1K, WeightsSpec, imagenet_classes,
                                       sidecar_path)

IMAGENET = [n for n in list_models() if is_big(n)]  # the ImageNet-size networks


def spec_for(name, **changes):
    """The spec a converted file of ``name`` gets: the model's first declared one, or (no
    weights declared: ``googlenet``) one written here."""
    declared = model_weights(name)
    if declared:
        spec = dataclasses.replace(declared[0], source="test:random")
    else:
        i = model_info(name)
        spec = WeightsSpec(name, i.classes, i.input_shape, i.resize_size, i.mean, i.std,
                           "test:random", class_names=IMAGENET_1K if i.classes == 1000 else None)
    return dataclasses.replace(spec, **changes)


def write_converted(name, path, seed=0, spec_changes=None, **options):
    """A ``.params`` file of model ``name`` with random weights and its sidecar; returns
    ``(path, {structural name: array})``."""
    mx.random.seed(seed)
    net = get_model(name, **options)
    net.initialize(mx.init.Xavier(magnitude=2))
    rs = np.random.RandomState(seed)
    for key, p in net._collect_params_with_prefix().items():
        if key.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rs.normal(0, .2, p.shape)))
        elif key.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rs.uniform(.5, 1.5, p.shape)))
    path = str(path)
    net.save_parameters(path)
    spec = spec_for(name, file=os.path.basename(path), sha1=sha1_file(path), options=options,
                    **(spec_changes or {}))
    with open(sidecar_path(path), "w") as f:
        json.dump(spec.to_dict(), f)
    return path, {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}


def params_of(net):
    return {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}


# --- layout: one builder, no import cycle ----------------------------------------------------

def test_no_model_module_imports_the_converter():
    code = "import sys, inceptionzoo; print('inceptionzoo.convert' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
    models = os.path.join(ROOT, "src", "inceptionzoo", "models")
    for f in os.listdir(models):
        if f.endswith(".py"):
            text = open(os.path.join(models, f)).read()
            assert not re.search(r"^\s*(from\s+\S*convert\s+import|import\s+\S*convert)", text,
                                 re.M), f


@pytest.mark.parametrize("name", list_models())
def test_every_factory_goes_through_the_builder(name):
    net = get_model(name)
    assert hasattr(net, "weights") and net.weights is None  # set by _builder.build


# --- the declared specs ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list_models())
def test_model_info_takes_the_first_declared_specs_preprocessing(name):
    """The resize is the first declared spec's (torchvision's Inception-v3: 342, timm's
    Inception-v4: floor(299 / 0.875) = 341); without weights, the input size itself."""
    info = model_info(name)
    declared = model_weights(name)
    assert info.resize_size == (declared[0].resize_size if declared
                                else min(info.input_shape[1:]))
    for spec in model_weights(name):
        assert spec.model == name
        assert WeightsSpec.from_dict(spec.to_dict()) == spec  # the one schema round-trips
    if model_weights(name):
        first = model_weights(name)[0]
        assert (info.crop_pct, info.interpolation, info.class_names) == \
            (first.crop_pct, first.interpolation, first.class_names)
        c = info.input_shape[0]
        assert info.mean == (first.mean if len(first.mean) == c else first.mean * c)
        assert info.std == (first.std if len(first.std) == c else first.std * c)


def test_declared_sources_are_the_converters():
    from inceptionzoo.convert import SOURCES

    for (kind, src), source in SOURCES.items():
        tags = [s.source for s in model_weights(source.model)]
        assert f"{kind}:{src}" in tags, (kind, src)


def test_shipped_manifest_entries_are_specs():
    from inceptionzoo.weights import manifest_path

    with open(manifest_path()) as f:
        manifest = json.load(f)
    for name, entry in manifest.items():
        spec = WeightsSpec.from_dict(entry, manifest_path())
        assert spec.source == "shipped" and model_weights(name)[0] == dataclasses.replace(
            spec, tag="mnist")


# --- pretrained=PATH / True / False ----------------------------------------------------------

@pytest.mark.parametrize("name", model_params())
def test_pretrained_path_loads_that_file(name, tmp_path):
    path, saved = write_converted(name, tmp_path / f"{name}.params", seed=3)
    net = get_model(name, pretrained=path)
    got = params_of(net)
    assert set(got) == set(saved)
    for key in saved:
        np.testing.assert_array_equal(got[key], saved[key], err_msg=key)
    spec = spec_for(name)
    assert net.weights.sha1 == sha1_file(path) and net.info.pretrained["sha1"] == sha1_file(path)
    assert net.info.resize_size == spec.resize_size
    assert net.info.mean[0] == spec.mean[0] and net.info.class_names == spec.class_names


@pytest.mark.parametrize("name", model_params())
def test_pretrained_true_is_the_default_tag(name, tmp_path):
    home = tmp_path / "home"
    declared = model_weights(name)
    if not declared:
        with pytest.raises(WeightsError, match=f"model '{name}' declares no weights"):
            get_model(name, pretrained=True, root=str(home))
        return
    default = declared[0]
    if default.source == "shipped":  # found without any folder
        net = get_model(name, pretrained=True, root=str(home))
        assert net.weights.source == "shipped" and net.weights.tag == default.tag
        assert net.info.pretrained["sha1"] == default.sha1
        return
    with pytest.raises(WeightsError) as exc:
        get_model(name, pretrained=True, root=str(home))
    msg = str(exc.value)
    assert f"no weights {name}.{default.tag} ({default.source})" in msg
    # the command that makes it: convert --out FOLDER writes FOLDER/NAME.TAG.params
    assert f"`inceptionzoo convert {default.source} CHECKPOINT --out {home}`" in msg
    home.mkdir()
    _, saved = write_converted(name, home / f"{name}.{default.tag}.params", seed=4,
                               spec_changes={"source": default.source})
    net = get_model(name, pretrained=True, root=str(home))
    assert net.weights.tag == default.tag and net.info.pretrained["tag"] == default.tag
    np.testing.assert_array_equal(params_of(net)[net.classifier_names()[0]],
                                  saved[net.classifier_names()[0]])
    os.environ["INCEPTIONZOO_HOME"] = str(home)  # the weights folder is read at call time
    try:
        assert get_model(name, pretrained=True).weights.sha1 == \
            sha1_file(home / f"{name}.{default.tag}.params")
    finally:
        del os.environ["INCEPTIONZOO_HOME"]


def test_each_tag_has_its_own_file_and_both_spellings_load_it(tmp_path):
    name, tags = "googlenet_bn", model_weights("googlenet_bn")
    saved = {}
    for seed, spec in enumerate(tags):
        _, saved[spec.tag] = write_converted(name, tmp_path / f"{name}.{spec.tag}.params",
                                             seed=seed, spec_changes={
                                                 "source": spec.source, "mean": spec.mean,
                                                 "std": spec.std})
    assert len(saved) == 2
    head = "output.weight"
    for spec in tags:
        for net in (get_model(name, pretrained=spec.tag, root=str(tmp_path)),
                    get_model(f"{name}.{spec.tag}", pretrained=True, root=str(tmp_path)),
                    get_model(name.upper() + "." + spec.tag.upper(), pretrained=True,
                              root=str(tmp_path))):
            assert net.weights.tag == spec.tag and net.weights.source == spec.source
            assert net.info.mean == spec.mean and net.info.pretrained["tag"] == spec.tag
            np.testing.assert_array_equal(params_of(net)[head], saved[spec.tag][head])
    assert not np.array_equal(saved["tv_in1k"][head], saved["gluon_in1k"][head])
    with pytest.raises(WeightsError, match="holds weights from gluoncv:googlenet, not "
                                           "googlenet_bn.tv_in1k's torchvision:googlenet"):
        os.replace(tmp_path / f"{name}.gluon_in1k.params", tmp_path / f"{name}.tv_in1k.params")
        os.replace(tmp_path / f"{name}.gluon_in1k.json", tmp_path / f"{name}.tv_in1k.json")
        get_model(name, pretrained="tv_in1k", root=str(tmp_path))
    with pytest.raises(InceptionZooError, match="the name names the weights already"):
        get_model(f"{name}.tv_in1k", pretrained="gluon_in1k", root=str(tmp_path))
    with pytest.raises(UnknownModelError, match="no weights tagged 'bogus'; its tags: "
                                                "tv_in1k, gluon_in1k"):
        get_model(f"{name}.bogus")
    with pytest.raises(WeightsError, match="neither a weights tag of 'googlenet_bn' \\(its tags: "
                                           "tv_in1k, gluon_in1k\\) nor a file"):
        get_model(name, pretrained="bogus")
    assert get_model(f"{name}.tv_in1k").weights is None  # no pretrained=True: no weights


def test_a_file_converted_by_the_previous_version_still_loads_or_says_how_to_move_it(tmp_path):
    name = "googlenet_bn"
    old = tmp_path / f"{name}.params"
    write_converted(name, old, spec_changes={"source": "gluoncv:googlenet"})
    with pytest.warns(DeprecationWarning, match=rf"the weight file name {name}\.params is "
                      rf"deprecated and goes in the next release: move it .* {name}\.gluon_in1k"):
        net = get_model(name, pretrained="gluon_in1k", root=str(tmp_path))
    assert net.weights.tag == "gluon_in1k" and net.weights.sha1 == sha1_file(old)
    with pytest.raises(WeightsError) as exc:
        get_model(name, pretrained=True, root=str(tmp_path))  # tv_in1k: not that file
    new = tmp_path / f"{name}.gluon_in1k.params"
    assert (f"`mv {old} {new}; mv {tmp_path / (name + '.json')} "
            f"{tmp_path / (name + '.gluon_in1k.json')}`") in str(exc.value)


def test_list_models_and_the_cli_show_each_tag(tmp_path, capsys):
    from inceptionzoo.cli import main

    assert "inception_v3.tv_in1k" in list_models(pretrained=True)
    assert list_models("inception_v3", pretrained=True) == [
        "inception_v3.tv_in1k", "inception_v3.timm_in1k", "inception_v3.gluon_in1k"]
    assert list_models("*.mnist", pretrained=True) == ["inception_mnist.mnist",
                                                       "inception_naive_mnist.mnist"]
    path, _ = write_converted("inception_v4", tmp_path / "inception_v4.timm_in1k.params",
                              spec_changes={"source": "timm:inception_v4"})
    assert main(["list", "--weights", "--weights-dir", str(tmp_path), "--include", "inception_v*",
                 "inception_mnist"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"inception_v4.timm_in1k (default): present: {path} (SHA-1 {sha1_file(path)})" in out
    assert (f"inception_v3.timm_in1k: absent; get it: inceptionzoo convert timm:inception_v3 "
            f"CHECKPOINT --out {tmp_path}") in out
    shipped = model_weights("inception_mnist")[0]
    assert any(line.startswith("inception_mnist.mnist (default): present: ") and shipped.sha1
               in line for line in out), out
    assert main(["info", "inception_v3", "--weights-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pretrained:" not in out and (
        f"inception_v3.tv_in1k (default): absent; get it: inceptionzoo convert "
        f"torchvision:inception_v3 CHECKPOINT --out {tmp_path}") in out


@pytest.mark.parametrize("name", list_models())
def test_model_info_says_which_weights_are_loaded_never_which_could_be(name):
    assert model_info(name).pretrained is None
    assert get_model(name).info.pretrained is None


@pytest.mark.parametrize("name", list_models())
def test_pretrained_false_loads_nothing(name):
    for value in (False, None):
        net = get_model(name, pretrained=value)
        assert net.weights is None
        assert all(p._data is None for p in net.collect_params().values())


@pytest.mark.parametrize("name", model_params())
def test_other_classes_load_everything_but_the_classifier(name, tmp_path):
    path, saved = write_converted(name, tmp_path / f"{name}.params", seed=5)
    net = get_model(name, pretrained=path, classes=3)
    head = set(net.classifier_names())
    got = params_of(net)
    for key, value in saved.items():
        if key in head:
            assert got[key].shape[0] == 3 and np.isfinite(got[key]).all()
        else:
            np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert net.classes == 3 and net.info.classes == 3 and net.info.class_names is None
    assert net.info.labels() == ["0", "1", "2"]
    assert net.info.pretrained["sha1"] == sha1_file(path)
    x = mx.nd.random.uniform(shape=(2,) + test_shape(name))
    assert net(x).shape == (2, 3)


def test_shipped_weights_with_other_classes(tmp_path):
    net = get_model("inception_mnist", pretrained=True, classes=5)
    shipped = params_of(get_model("inception_mnist", pretrained=True))
    got = params_of(net)
    assert got["output.weight"].shape == (5, 2304)
    for key in shipped:
        if not key.startswith("output."):
            np.testing.assert_array_equal(got[key], shipped[key], err_msg=key)


def test_a_shipped_file_needs_no_sidecar():
    from inceptionzoo.weights import find_weights

    path = find_weights("inception_mnist")
    assert not os.path.exists(sidecar_path(path))
    assert get_model("inception_mnist", pretrained=path).weights.source == "shipped"


def test_a_converted_file_is_checked(tmp_path):
    path, _ = write_converted("inception_mnist", tmp_path / "w.params")
    with pytest.raises(WeightsError, match="holds weights of 'inception_mnist', not "
                                           "'inception_naive_mnist'"):
        get_model("inception_naive_mnist", pretrained=path)
    with open(path, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\1")
    with pytest.raises(WeightsError, match="corrupt or was replaced"):
        get_model("inception_mnist", pretrained=path)
    with pytest.raises(WeightsError, match="pretrained must be True, False, a tag \\(mnist\\) "
                                           "or the path"):
        get_model("inception_mnist", pretrained=3)
    with pytest.raises(WeightsError, match="a file that does not exist"):
        get_model("inception_mnist", pretrained=str(tmp_path / "none.params"))
    (tmp_path / "lone.params").write_bytes(b"x")  # no sidecar: read as a plain Gluon file
    with pytest.raises(WeightsError, match="lone.params.*not an MXNet|lone.params.*truncated"):
        get_model("inception_mnist", pretrained=str(tmp_path / "lone.params"))


def test_options_come_from_the_sidecar(tmp_path):
    path, _ = write_converted("inception_mnist", tmp_path / "rgb.params", in_channels=3,
                              spec_changes={"input_size": (3, 28, 28)})
    net = get_model("inception_mnist", pretrained=path)
    assert net.in_channels == 3 and net.info.input_shape == (3, 28, 28)
    # another in_channels than the weights' adapts their first convolution (timm's in_chans)
    grey = get_model("inception_mnist", pretrained=path, in_channels=1)
    assert grey.in_channels == 1 and grey.info.input_shape == (1, 28, 28)
    np.testing.assert_allclose(grey.stem.weight.data().asnumpy(),
                               net.stem.weight.data().asnumpy().sum(axis=1, keepdims=True),
                               rtol=1e-6)
    # an option that changes the layers must be the weights'
    path, _ = write_converted("googlenet", tmp_path / "bn.params", batch_norm=True)
    assert get_model("googlenet", pretrained=path).conv1[1].name.endswith("bn")
    with pytest.raises(WeightsError, match="was converted with batch_norm=True; got "
                                           "batch_norm=False"):
        get_model("googlenet", pretrained=path, batch_norm=False)


# --- sidecar errors: WeightsError naming the file and the field -------------------------------

def _mutate(d, key, value):
    d = dict(d)
    if value is KeyError:
        del d[key]
    else:
        d[key] = value
    return d


SIDECAR_DAMAGE = {
    "a JSON list": (lambda d: [d], "expected a JSON object"),
    "no mean": (lambda d: _mutate(d, "mean", KeyError), "'mean'"),
    "no resize_size": (lambda d: _mutate(d, "resize_size", KeyError), "'resize_size'"),
    "an unknown field": (lambda d: _mutate(d, "colour", "red"), "'colour'"),
    "an unknown option": (lambda d: _mutate(d, "options", {"bogus": 1}), "'options' has 'bogus'"),
    "an option of a bad type": (lambda d: _mutate(d, "options", {"block": [1]}), "'options'"),
    "classes a str": (lambda d: _mutate(d, "classes", "10"), "'classes' must be an integer"),
    "classes 0": (lambda d: _mutate(d, "classes", 0), "'classes' must be an integer >= 1"),
    "a bool resize": (lambda d: _mutate(d, "resize_size", True), "'resize_size'"),
    "crop_pct 0": (lambda d: _mutate(d, "crop_pct", 0), "'crop_pct' must be a number in"),
    "an unknown filter": (lambda d: _mutate(d, "interpolation", "cubic"), "'interpolation'"),
    "std 0": (lambda d: _mutate(d, "std", [0.0]), "'std': std must be > 0"),
    "mean NaN": (lambda d: _mutate(d, "mean", [float("nan")]), "'mean'"),
    "mean of 2 values": (lambda d: _mutate(d, "mean", [0.1, 0.2]),
                         "'mean': mean needs one value or one per input channel (1)"),
    "input_size of 2": (lambda d: _mutate(d, "input_size", [28, 28]), "'input_size'"),
    "a short sha1": (lambda d: _mutate(d, "sha1", "abc"), "'sha1' must be null or 40"),
    "no sha1": (lambda d: _mutate(d, "sha1", None), "'sha1' is null"),
    "too few names": (lambda d: _mutate(d, "class_names", ["a"]), "'class_names' has 1 names"),
    "imagenet names for 10": (lambda d: _mutate(d, "class_names", IMAGENET_1K),
                              "'class_names' is 'imagenet-1k' but 'classes' is 10"),
    "model a number": (lambda d: _mutate(d, "model", 7), "'model' must be a model name"),
    "3 channels for a 1-channel net": (lambda d: _mutate(d, "input_size", [3, 28, 28]),
                                       "'input_size' [3, 28, 28] does not fit the network"),
    "a size the net cannot take": (lambda d: _mutate(d, "input_size", [1, 5, 5]),
                                   "'input_size' [1, 5, 5] does not fit the network"),
    "a huge resize": (lambda d: _mutate(d, "resize_size", 10 ** 7),
                      "'resize_size' must be at most 224"),
}


@pytest.mark.parametrize("case", list(SIDECAR_DAMAGE))
def test_a_bad_sidecar_is_a_weights_error_naming_file_and_field(case, tmp_path):
    damage, words = SIDECAR_DAMAGE[case]
    path, _ = write_converted("inception_mnist", tmp_path / "w.params")
    with open(sidecar_path(path)) as f:
        d = json.load(f)
    with open(sidecar_path(path), "w") as f:
        json.dump(damage(d), f)
    with pytest.raises(WeightsError) as exc:
        get_model("inception_mnist", pretrained=path)
    msg = str(exc.value)
    assert sidecar_path(path) in msg and words in msg, msg


def test_a_sidecar_of_an_older_version_says_to_convert_again(tmp_path):
    path, _ = write_converted("inception_mnist", tmp_path / "w.params")
    with open(sidecar_path(path)) as f:
        d = json.load(f)
    d["params"], d["input_shape"] = d.pop("file"), d.pop("input_size")
    del d["resize_size"]
    with open(sidecar_path(path), "w") as f:
        json.dump(d, f)
    with pytest.raises(WeightsError, match="a sidecar of an older inceptionzoo .* re-run "
                                           "`inceptionzoo convert`"):
        get_model("inception_mnist", pretrained=path)


def test_a_sidecar_that_is_not_json(tmp_path):
    path, _ = write_converted("inception_mnist", tmp_path / "w.params")
    with open(sidecar_path(path), "wb") as f:
        f.write(b"\xff{")
    with pytest.raises(WeightsError, match=r"w\.json: not a JSON file: not UTF-8 text"):
        get_model("inception_mnist", pretrained=path)


def test_spec_declarations_are_checked():
    with pytest.raises(ValueError, match="field 'interpolation'"):
        WeightsSpec("m", 10, (1, 28, 28), 28, (0,), (1,), "x", interpolation="bogus")


# --- the weights' preprocessing in evaluate and train -----------------------------------------

@pytest.fixture
def digits_folder(tmp_path, mnist_dir):
    from inceptionzoo.mnist import load_mnist
    from _sample_data import write_image_folder

    x, y = load_mnist(mnist_dir, train=False)
    for split, start in (("train", 0), ("val", 5000)):
        write_image_folder(str(tmp_path / "digits" / split), x[start:start + 400],
                           y[start:start + 400], per_class=4)
    return tmp_path / "digits"


def _recording(monkeypatch):
    import inceptionzoo.evaluation as e
    import inceptionzoo.train as t

    seen = []
    real = t.open_sources

    def spy(info, *args, **kwargs):
        seen.append(info)
        return real(info, *args, **kwargs)

    monkeypatch.setattr(t, "open_sources", spy)
    monkeypatch.setattr(e, "open_sources", spy)
    return seen


def test_evaluate_and_train_use_the_weights_preprocessing(digits_folder, tmp_path,
                                                          monkeypatch):
    from inceptionzoo.train import evaluate, train

    path, _ = write_converted("inception_mnist", tmp_path / "w.params",
                              spec_changes={"mean": (0.25,), "std": (0.5,), "resize_size": 32})
    seen = _recording(monkeypatch)
    r = evaluate("inception_mnist", params=path, data_dir=str(digits_folder))
    assert r["num_samples"] == 40
    assert (seen[-1].mean, seen[-1].std, seen[-1].resize_size) == ((0.25,), (0.5,), 32)
    m = train("inception_mnist", data_dir=str(digits_folder), pretrained=path, epochs=1,
              batch_size=20, progress=False, log=lambda *a: None)
    assert m["classes"] == 10 and m["pretrained"] == path
    assert (seen[-1].mean, seen[-1].std) == ((0.25,), (0.5,))
    # a plain parameter file (a checkpoint, no sidecar) keeps the registry's preprocessing
    plain = tmp_path / "plain.params"
    m["net"].save_parameters(str(plain))
    evaluate("inception_mnist", params=str(plain), data_dir=str(digits_folder))
    assert seen[-1].mean == model_info("inception_mnist").mean
    m = train("inception_mnist", data_dir=str(digits_folder), pretrained=str(plain), epochs=1,
              batch_size=20, progress=False, log=lambda *a: None, classes=12)
    assert m["classes"] == 12 and seen[-1].mean == model_info("inception_mnist").mean
    got = params_of(m["net"])
    assert got["output.weight"].shape == (12, 2304) and got["stem.weight"].shape == (8, 1, 3, 3)


# --- class names ------------------------------------------------------------------------------

def test_imagenet_class_names_ship_with_the_package():
    names = imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[1] == "goldfish" and names[-1] == "toilet tissue"
    with open(os.path.join(ROOT, "src", "inceptionzoo", "pretrained",
                           "imagenet_classes.txt")) as f:
        synsets = [line.split("\t")[0] for line in f]
    assert synsets[0] == "n01440764" and synsets == sorted(synsets)
    assert model_info("inception_v3").labels()[:2] == ["tench", "goldfish"]
    assert model_info("inception_mnist").labels() == [str(i) for i in range(10)]


def test_thousand_class_weights_predict_named_classes(tmp_path):
    from inceptionzoo.export import export
    from inceptionzoo.serving import Predictor

    path, _ = write_converted("googlenet_bn", tmp_path / "g.params")
    net = get_model("googlenet_bn", pretrained=path)
    paths = export(net, str(tmp_path / "deploy" / "googlenet_bn"))
    meta = json.loads(open(paths["meta"]).read())
    assert meta["labels"][:3] == ["tench", "goldfish", "great white shark"]
    with open(paths["synset"]) as f:
        assert f.readline().strip() == "tench"
    p = Predictor(str(tmp_path / "deploy"), name="googlenet_bn")
    x = (np.random.RandomState(0).rand(224, 224, 3) * 255).astype(np.uint8)
    top = p.predict(x, top_k=3)[0]
    assert len(top) == 3 and all(label in imagenet_classes() for label, _ in top), top


def _doc_block(path, marker):
    text = open(os.path.join(ROOT, "docs", path)).read()
    m = re.search(rf"<!-- {marker}:begin -->\n```python\n(.*?)```\n<!-- {marker}:end -->", text,
                  re.S)
    assert m, f"docs/{path} lost its {marker} example"
    return m.group(1)


def run_checked(code, filename):
    """Run ``code`` line by line; a line ``EXPR  # LITERAL`` must give that value."""
    import ast

    env = {}
    for line in code.splitlines():
        stmt, _, comment = line.partition("  # ")
        exec(compile(stmt, filename, "exec"), env)
        comment = comment.strip()
        if comment[:1] in ("(", "[") and not stmt.lstrip().startswith(("net =", "x =", "from")):
            assert eval(stmt, env) == ast.literal_eval(comment), line


def test_the_load_example_of_weights_md_runs(tmp_path, monkeypatch):
    from PIL import Image

    home = tmp_path / "home"
    home.mkdir()
    for seed, spec in enumerate(model_weights("googlenet_bn")):
        write_converted("googlenet_bn", home / f"googlenet_bn.{spec.tag}.params", seed=seed,
                        spec_changes={"source": spec.source, "mean": spec.mean,
                                      "std": spec.std})
    write_converted("googlenet_bn", tmp_path / "g.params", seed=7)
    net = get_model("googlenet_bn")
    net.initialize()
    net.save_parameters(str(tmp_path / "plain.params"))
    for name in ("cat.jpg", "dog.jpg"):
        Image.new("RGB", (300, 260), (120, 30, 200)).save(tmp_path / name)
    monkeypatch.setenv("INCEPTIONZOO_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    run_checked(_doc_block("weights.md", "load"), "docs/weights.md")


def test_the_commands_take_a_tag_where_they_take_pretrained(tmp_path):
    from inceptionzoo.cli import _settle, build_parser, main

    for argv in (["train", "inception_mnist", "--pretrained", "mnist", "--data-dir", "d"],
                 ["evaluate", "inception_mnist", "--pretrained", "mnist"],
                 ["export", "inception_mnist", "--pretrained", "mnist", "--out", "o"]):
        args = _settle(build_parser().parse_args(argv))
        assert args.pretrained == "mnist" and args.model == "inception_mnist", argv
    args = _settle(build_parser().parse_args(["evaluate", "inception_mnist", "--pretrained"]))
    assert args.pretrained is True
    assert main(["export", "inception_mnist", "--pretrained", "mnist", "--out",
                 str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "inception_mnist-meta.json").read_text())
    assert meta["model"] == "inception_mnist"
    assert main(["export", "inception_mnist", "--pretrained", "bogus", "--out",
                 str(tmp_path / "b")]) == 2
