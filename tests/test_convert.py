"""Checkpoint conversion: every source network (torchvision, timm, gluoncv) with random weights
and random BN statistics, converted, gives the source's logits (in the zoo, imperative and
through the exported symbol + params), and bad input gets one clear error.

The torch side runs in its own venv (``make torch-env`` -> ``.venv-torch``) through
``tests/reference/make_references.py``; MXNet 1.9.1 needs numpy<1.24 and cannot share a venv
with torchvision / timm."""
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from conftest import torch_references
from inceptionzoo import get_model, model_info
from inceptionzoo._io import sha1_file
from inceptionzoo.cost import num_params
from inceptionzoo.convert import SOURCES, ConversionError, convert, sidecar_path
from inceptionzoo.export import export
from inceptionzoo.weights import WeightsError


#: the libraries whose networks tests/reference/make_references.py builds (in the PyTorch side
#: environment), with the prefix of their reference cases
TORCH_LIBRARIES = {"torchvision": "tv", "timm": "timm"}

#: reference case (a folder of references) -> SOURCE:NAME: one per source the model files
#: declare, but gluoncv's (built in this venv: GLUONCV_CASES)
CASES = {f"{TORCH_LIBRARIES.get(k, k)}_{n}": f"{k}:{n}" for k, n in SOURCES if k != "gluoncv"}


def torch_cases(cases, **settings):
    """``CASES_JSON`` of tests/reference/make_references.py and make_photo_references.py: the
    source network of each case of ``cases`` that a torch library builds, with ``settings``."""
    out = {}
    for case in cases:
        kind, name = CASES[case].split(":")
        if kind in TORCH_LIBRARIES:
            out[case] = dict(source=kind, name=name,
                             classifier=SOURCES[kind, name].classifier, **settings)
    return json.dumps(out)


def reference_cases():
    """``CASES_JSON`` of the ``references`` fixture: every case a torch library builds, and
    torchvision's Inception-v3 at 299 with its auxiliary head."""
    cases = json.loads(torch_cases(CASES))
    cases["tv_inception_v3_299"] = dict(cases["tv_inception_v3"], size=299, batch=1, aux=True)
    return json.dumps(cases)


@pytest.fixture(scope="session")
def references(tmp_path_factory):
    """Folder of reference checkpoints and logits, generated once per session (or, while
    developing, an existing one named by $INCEPTIONZOO_REFERENCES)."""
    return torch_references("make_references.py", tmp_path_factory.mktemp("references"),
                            reference_cases(), reuse_env="INCEPTIONZOO_REFERENCES")


def _zoo_input(pixels, info):
    mean = np.array(info.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.array(info.std, np.float32).reshape(1, -1, 1, 1)
    return ((pixels - mean) / std).astype(np.float32)


def _rel_err(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.parametrize("case", list(CASES))
def test_converted_network_gives_the_source_logits(references, case, fmt, tmp_path):
    folder = references / case
    ref_meta = json.loads((folder / "meta.json").read_text())
    out = tmp_path / f"{case}.params"
    meta = convert(CASES[case], str(folder / f"model.{fmt}"), str(out))
    side = json.loads(open(sidecar_path(str(out))).read())
    assert side == meta and side["sha1"] == sha1_file(str(out))
    assert side["checkpoint_sha1"] == sha1_file(str(folder / f"model.{fmt}"))
    # the preprocessing the weights need: the source's, with torchvision's transform_input
    # (ImageNet-normalised -> (x - 0.5) / 0.5) folded into mean / std
    want_mean = [0.5] * 3 if ref_meta["transform_input"] else ref_meta["mean"]
    want_std = [0.5] * 3 if ref_meta["transform_input"] else ref_meta["std"]
    np.testing.assert_allclose(side["mean"], want_mean, rtol=1e-6)
    np.testing.assert_allclose(side["std"], want_std, rtol=1e-6)
    assert side["input_size"][1] == ref_meta["input_size"]
    assert side["crop_pct"] == pytest.approx(ref_meta["crop_pct"], rel=1e-6)
    assert side["interpolation"] == ref_meta["interpolation"]

    net = get_model(side["model"], pretrained=str(out))
    assert net.info.mean == tuple(side["mean"]) and net.info.pretrained["sha1"] == side["sha1"]
    pixels = np.load(folder / "pixels.npy")
    ref = np.load(folder / "logits.npy")
    x = _zoo_input(pixels, net.info)
    errors = {}
    for n in (3, 1):
        errors[f"imperative b{n}"] = _rel_err(net(mx.nd.array(x[:n])).asnumpy(), ref[:n])
    if fmt == "safetensors":  # the deployable form: exported symbol + params
        paths = export(net, str(tmp_path / "export" / side["model"]))
        loaded = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
        for n in (3, 1):
            errors[f"exported b{n}"] = _rel_err(loaded(mx.nd.array(x[:n])).asnumpy(), ref[:n])
    print(case, fmt, errors)
    assert max(errors.values()) <= 1e-4, errors


@pytest.mark.slow
def test_inception_v3_at_299_with_its_aux_head(references, tmp_path):
    folder = references / "tv_inception_v3_299"
    out = tmp_path / "v3aux.params"
    meta = convert("torchvision:inception_v3", str(folder / "model.safetensors"), str(out),
                   aux_logits=True)
    assert meta["options"] == {"aux_logits": True}
    net = get_model("inception_v3", pretrained=str(out))
    ref = json.loads((folder / "meta.json").read_text())
    assert net.aux_logits and num_params(net) == net.info.num_params == ref["params"]
    x = _zoo_input(np.load(folder / "pixels.npy"), net.info)
    net.hybridize(static_alloc=True, static_shape=True)
    logits, aux = net(mx.nd.array(x))
    assert _rel_err(logits.asnumpy(), np.load(folder / "logits.npy")) <= 1e-4
    assert _rel_err(aux.asnumpy(), np.load(folder / "aux.npy")) <= 1e-4
    with pytest.raises(WeightsError, match="aux_logits=True"):
        get_model("inception_v3", pretrained=str(out), aux_logits=False)


@pytest.mark.slow
def test_one_error_lists_every_missing_unexpected_and_misshaped_tensor(references, tmp_path):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(references / "tv_googlenet" / "model.safetensors"))
    del tensors["inception4a.branch2.1.bn.running_var"]
    tensors["inception4a.extra.weight"] = np.zeros(3, np.float32)
    tensors["conv1.conv.weight"] = tensors["conv1.conv.weight"][:, :, :5, :5].copy()
    save_file(tensors, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ConversionError) as exc:
        convert("torchvision:googlenet", str(tmp_path / "bad.safetensors"),
                str(tmp_path / "bad.params"))
    msg = str(exc.value)
    assert msg.startswith(f"{str(tmp_path / 'bad.safetensors')!r} does not fit"), msg  # the file
    assert "(3 problems: 1 missing, 1 unexpected, 1 mis-shaped)" in msg, msg
    assert "missing: googlenet_bn_inception4a_b3_bn_running_var (208,)" in msg
    assert "unexpected: inception4a.extra.weight" in msg
    assert "mis-shaped: conv1.conv.weight (64, 3, 5, 5)" in msg and "(64, 3, 7, 7)" in msg
    assert not os.path.exists(tmp_path / "bad.params")  # nothing written
    wrong_family = r"does not fit 'inception_v3' \(\d+ problems: \d+ missing, \d+ unexpected"
    with pytest.raises(ConversionError, match=wrong_family):
        convert("timm:inception_v3", str(references / "tv_googlenet" / "model.pth"),
                str(tmp_path / "v3.params"))                       # another family's tensors
    with pytest.raises(ConversionError, match="no classifier 'last_linear.weight': not a "
                                              "timm:inception_v4 checkpoint"):
        convert("timm:inception_v4", str(references / "timm_inception_v3" / "model.pth"),
                str(tmp_path / "v4.params"))


@pytest.mark.slow
def test_cli_convert(references, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    ckpt = references / "tv_googlenet" / "model.pth"
    out = tmp_path / "g.params"
    p = subprocess.run([exe, "convert", "torchvision:googlenet", str(ckpt), "--out", str(tmp_path),
                        "--name", "g", "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got == {"model": "googlenet_bn", "params": str(out), "sha1": sha1_file(str(out))}
    # export reads the sidecar beside --params (the weights' own preprocessing)
    p = subprocess.run([exe, "export", "googlenet_bn", "--params", str(out), "--out",
                        str(tmp_path / "deploy")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    meta = json.loads((tmp_path / "deploy" / "googlenet_bn-meta.json").read_text())
    assert meta["model"] == "googlenet_bn" and meta["classes"] == 1000
    p = subprocess.run([exe, "convert", "torchvision:googlenet", str(ckpt), "--out",
                        str(tmp_path), "--name", "g2"], capture_output=True, text=True)
    assert p.returncode == 0 and "torchvision:googlenet -> googlenet_bn" in p.stdout, p.stderr


@pytest.mark.slow
def test_two_sources_of_one_network_keep_their_own_weights_by_tag(references, tmp_path):
    """torchvision's and timm's Inception-v3 converted into one weights folder: both stay, and
    each tag gives its own source's logits."""
    from inceptionzoo.cli import main

    home = tmp_path / "home"
    for case in ("tv_inception_v3", "timm_inception_v3"):
        assert main(["convert", CASES[case], str(references / case / "model.pth"), "--out",
                     str(home)]) == 0
    assert sorted(os.listdir(home)) == [
        "inception_v3.timm_in1k.json", "inception_v3.timm_in1k.params",
        "inception_v3.tv_in1k.json", "inception_v3.tv_in1k.params"]
    for case, tag in (("tv_inception_v3", "tv_in1k"), ("timm_inception_v3", "timm_in1k")):
        net = get_model(f"inception_v3.{tag}", pretrained=True, root=str(home))
        assert net.weights.tag == tag and net.weights.source == CASES[case]
        assert net.weights.checkpoint_sha1 == sha1_file(str(references / case / "model.pth"))
        x = _zoo_input(np.load(references / case / "pixels.npy"), net.info)
        got = net(mx.nd.array(x)).asnumpy()
        assert _rel_err(got, np.load(references / case / "logits.npy")) <= 1e-4, case


# --- gluoncv (MXNet; no side environment needed) ---------------------------------------------

def _gluoncv_reference(name, size, path, seed=0):
    from inceptionzoo._gluoncv import import_gluoncv

    mx.random.seed(seed)
    net = import_gluoncv().model_zoo.get_model(name, pretrained=False)
    net.initialize(mx.init.Xavier(magnitude=2))
    x = mx.nd.array(np.random.RandomState(seed).rand(3, 3, size, size).astype(np.float32))
    net(x[:1])  # gluoncv's inceptionv3 defers its shapes
    rs = np.random.RandomState(seed + 1)
    draw = {"running_mean": lambda s: rs.normal(0, .2, s), "beta": lambda s: rs.normal(0, .2, s),
            "running_var": lambda s: rs.uniform(.5, 2, s), "gamma": lambda s: rs.uniform(.5, 1.5, s)}
    for key, p in net.collect_params().items():
        for suffix, fn in draw.items():
            if key.endswith(suffix):
                p.set_data(mx.nd.array(fn(p.shape)))
    net.save_parameters(path)
    return x, net(x).asnumpy()


#: gluoncv's networks (every gluoncv source declared), checked against gluoncv's own (in the
#: main venv) at the zoo network's input size; above 224 pixels marked slow
GLUONCV_CASES = [pytest.param(n, size, s.model, marks=[pytest.mark.slow] * (size > 224))
                 for (k, n), s in SOURCES.items() if k == "gluoncv"
                 for size in [model_info(s.model).input_shape[1]]]


@pytest.mark.parametrize("name,size,zoo", GLUONCV_CASES)
def test_gluoncv_checkpoint(name, size, zoo, tmp_path):
    x, ref = _gluoncv_reference(name, size, str(tmp_path / f"{name}.params"))
    out = tmp_path / "zoo.params"
    meta = convert(f"gluoncv:{name}", str(tmp_path / f"{name}.params"), str(out))
    assert meta["model"] == zoo and meta["mean"] == [0.485, 0.456, 0.406]
    net = get_model(zoo, pretrained=str(out))
    assert net.info.std == (0.229, 0.224, 0.225)
    for n in (3, 1):
        assert _rel_err(net(x[:n]).asnumpy(), ref[:n]) <= 1e-4
    # a tampered file is refused
    with open(out, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\1")
    with pytest.raises(WeightsError, match="corrupt or was replaced"):
        get_model(zoo, pretrained=str(out))


# --- errors and metadata ----------------------------------------------------------------------

def test_conversion_errors(tmp_path):
    with pytest.raises(ConversionError, match="expected SOURCE:NAME"):
        convert("inception_v3", "x.pth", str(tmp_path / "o.params"))
    with pytest.raises(ConversionError, match="unknown source network 'timm:resnet50'; known: "
                                              "gluoncv:googlenet, .*torchvision:inception_v3"):
        convert("timm:resnet50", "x.pth", str(tmp_path / "o.params"))
    with pytest.raises(ConversionError, match="does not exist"):
        convert("timm:inception_v4", str(tmp_path / "none.pth"), str(tmp_path / "o.params"))
    (tmp_path / "junk.pth").write_bytes(b"not a zip")
    with pytest.raises(ConversionError, match="not a zip-format torch checkpoint"):
        convert("timm:inception_v4", str(tmp_path / "junk.pth"), str(tmp_path / "o.params"))
    (tmp_path / "junk.safetensors").write_bytes(b"\x05\0\0\0\0\0\0\0{}")
    with pytest.raises(ConversionError, match="cannot read .* as safetensors"):
        convert("timm:inception_v4", str(tmp_path / "junk.safetensors"),
                str(tmp_path / "o.params"))
    with pytest.raises(ConversionError, match="must end in .params"):
        convert("timm:inception_v4", str(tmp_path / "junk.pth"), str(tmp_path / "o.bin"))
    for spec in ("timm:inception_v4", "torchvision:googlenet"):  # googlenet has aux1/aux2
        with pytest.raises(ConversionError, match="heads, if its checkpoint has them, are not "
                           "converted.*without --aux-logits.*torchvision:inception_v3"):
            convert(spec, str(tmp_path / "junk.pth"), str(tmp_path / "o.params"),
                    aux_logits=True)
    assert not [p for p in os.listdir(tmp_path) if p.endswith((".params", ".json"))]


def test_cli_convert_bad_input_exits_2(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    p = subprocess.run([exe, "convert", "timm:inception_v9", str(tmp_path / "x.pth"), "--out",
                        str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown source network 'timm:inception_v9'" in p.stderr


@pytest.mark.parametrize("name", sorted({s.model for s in SOURCES.values()}))
def test_imagenet_networks_ship_no_weights(name, tmp_path):
    with pytest.raises(WeightsError, match="inceptionzoo convert"):
        get_model(name, pretrained=True)
    with pytest.raises(WeightsError, match="does not exist"):
        get_model(name, pretrained=str(tmp_path / "none.params"))
    (tmp_path / "lone.params").write_bytes(b"")  # no sidecar: read as a plain Gluon file
    with pytest.raises(WeightsError, match="lone.params"):
        get_model(name, pretrained=str(tmp_path / "lone.params"))


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_counts_equal_the_reference_implementations(references, case):
    """The zoo network's parameters, counted on the built network, == torch's
    ``sum(p.numel())`` on the source network without its auxiliary heads (and with them, when
    the source was built with them, == ours with ``aux_logits=True``); the registry's
    MACs == torch's FlopCounterMode / 2 at the design size (both recorded by
    tests/reference/make_references.py)."""
    ref = json.loads((references / case / "meta.json").read_text())
    name = SOURCES[tuple(CASES[case].split(":"))].model
    info = model_info(name)
    assert num_params(get_model(name)) == info.num_params == ref["params"] - ref["aux_params"]
    if ref["aux_params"]:  # built with its auxiliary heads: so is ours with aux_logits=True
        assert num_params(get_model(name, aux_logits=True)) == ref["params"]
    assert info.input_shape[1] == ref["input_size"]
    assert info.macs == ref["macs"]


# --- the output: never the checkpoint, params + sidecar as a pair --------------------------

def _zoo_as_gluoncv(path, seed):
    """A gluoncv:googlenet checkpoint (tensors in the zoo network's order, the classifier named
    as gluoncv names it) with seeded random weights and 10 classes; returns its arrays."""
    mx.random.seed(seed)
    net = get_model("googlenet_bn", classes=10)
    net.initialize(mx.init.Xavier())
    arrays = {("output.weight" if name.endswith("output_weight") else f"t{i}"): p.data()
              for i, (name, p) in enumerate(net.collect_params().items())}
    mx.nd.save(str(path), arrays)
    return arrays


@pytest.fixture(scope="module")
def gluoncv_pair(tmp_path_factory):
    """Two different gluoncv:googlenet checkpoints."""
    folder = tmp_path_factory.mktemp("gluoncv")
    for seed in (0, 1):
        _zoo_as_gluoncv(folder / f"g{seed}.params", seed)
    return folder / "g0.params", folder / "g1.params"


def test_convert_never_replaces_its_checkpoint(gluoncv_pair, tmp_path, monkeypatch):
    ckpt = tmp_path / "same.params"
    ckpt.write_bytes(gluoncv_pair[0].read_bytes())
    original = ckpt.read_bytes()
    (tmp_path / "sub").mkdir()
    os.symlink(ckpt, tmp_path / "link.params")
    os.link(ckpt, tmp_path / "hard.params")
    os.symlink(ckpt, tmp_path / "side.json")  # the sidecar of side.params is the checkpoint
    monkeypatch.chdir(tmp_path)
    for out in [str(ckpt), "same.params", "./same.params", "sub/../same.params",
                str(tmp_path / "link.params"), "hard.params", "side.params"]:
        with pytest.raises(ConversionError, match="would replace the checkpoint"):
            convert("gluoncv:googlenet", str(ckpt), out)
        assert ckpt.read_bytes() == original, out
    assert sorted(os.listdir(tmp_path)) == ["hard.params", "link.params", "same.params",
                                            "side.json", "sub"]
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    p = subprocess.run([exe, "convert", "gluoncv:googlenet", "same.params", "--out", ".",
                        "--name", "same"], capture_output=True, text=True)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "would replace the checkpoint" in p.stderr and ckpt.read_bytes() == original


def test_a_conversion_whose_output_changed_meanwhile_loses(gluoncv_pair, tmp_path, monkeypatch):
    import inceptionzoo.convert as conv

    out = tmp_path / "g.params"
    real = conv.read_checkpoint

    def other_writer_meanwhile(*args):
        tensors = real(*args)
        out.write_bytes(b"the other's params")
        (tmp_path / "g.json").write_text("{}")
        return tensors

    monkeypatch.setattr(conv, "read_checkpoint", other_writer_meanwhile)
    with pytest.raises(ConversionError, match="written by another process while this "
                                              "conversion ran; nothing written"):
        convert("gluoncv:googlenet", str(gluoncv_pair[0]), str(out))
    assert out.read_bytes() == b"the other's params" and (tmp_path / "g.json").read_text() == "{}"
    assert sorted(os.listdir(tmp_path)) == ["g.json", "g.params"]  # no temporary left
    monkeypatch.undo()
    with pytest.raises(ConversionError, match="exists; pass overwrite=True"):
        convert("gluoncv:googlenet", str(gluoncv_pair[0]), str(out))  # no race: refused
    meta = convert("gluoncv:googlenet", str(gluoncv_pair[0]), str(out), overwrite=True)
    assert meta["sha1"] == sha1_file(str(out)) and meta["classes"] == 10
    assert get_model("googlenet_bn", pretrained=str(out)).info.pretrained["sha1"] == meta["sha1"]


_CRASH_BETWEEN_RENAMES = r"""
import os, sys
real = os.replace
def replace(src, dst):
    real(src, dst)
    if dst.endswith(".json"):
        os._exit(3)  # the process dies after the sidecar's rename, before the params'
os.replace = replace
from inceptionzoo.convert import convert
convert("gluoncv:googlenet", sys.argv[1], sys.argv[2], overwrite=True)
"""


@pytest.mark.slow
def test_a_crash_between_the_two_renames_never_loads_wrong(gluoncv_pair, tmp_path):
    out = tmp_path / "g.params"
    first = convert("gluoncv:googlenet", str(gluoncv_pair[0]), str(out))
    p = subprocess.run([sys.executable, "-c", _CRASH_BETWEEN_RENAMES, str(gluoncv_pair[1]),
                        str(out)], capture_output=True, text=True)
    assert p.returncode == 3, p.stderr
    side = json.loads((tmp_path / "g.json").read_text())
    assert side["checkpoint_sha1"] == sha1_file(str(gluoncv_pair[1]))  # the new sidecar
    assert sha1_file(str(out)) == first["sha1"] != side["sha1"]         # the old params
    with pytest.raises(WeightsError, match="corrupt or was replaced"):
        get_model("googlenet_bn", pretrained=str(out))


_RACER = r"""
import os, sys, time
import inceptionzoo.convert as conv
real, barrier = conv.read_checkpoint, sys.argv[3]
def read_then_wait(*args):
    tensors = real(*args)
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 300
    while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return tensors
conv.read_checkpoint = read_then_wait
from inceptionzoo.cli import main
folder, name = os.path.split(sys.argv[2])
sys.exit(main(["convert", "gluoncv:googlenet", sys.argv[1], "--out", folder, "--name",
               name[:-len(".params")]]))
"""


@pytest.mark.slow
def test_two_converts_racing_to_one_output(gluoncv_pair, tmp_path):
    """Two processes, both past reading before either writes: one wins, the other exits 2 with
    one line, and the params and sidecar are the winner's pair."""
    out, barrier = tmp_path / "race.params", tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(ckpt), str(out), str(barrier)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for ckpt in gluoncv_pair]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    winner = [i for i, r in enumerate(results) if r[0] == 0][0]
    loser_err = results[1 - winner][2].strip()
    assert len(loser_err.splitlines()) == 1 and "written by another process" in loser_err
    side = json.loads((tmp_path / "race.json").read_text())
    assert side["sha1"] == sha1_file(str(out))
    assert side["checkpoint_sha1"] == sha1_file(str(gluoncv_pair[winner]))
    net = get_model("googlenet_bn", pretrained=str(out))
    want = mx.nd.load(str(gluoncv_pair[winner]))["output.weight"].asnumpy()
    np.testing.assert_array_equal(net.output.weight.data().asnumpy(), want)
    assert sorted(os.listdir(tmp_path)) == ["barrier", "race.json", "race.params"]


def test_convert_into_a_folder_writes_the_tag_of_its_source(gluoncv_pair, tmp_path):
    meta = convert("gluoncv:googlenet", str(gluoncv_pair[0]), str(tmp_path))
    assert meta["file"] == "googlenet_bn.gluon_in1k.params" and meta["tag"] == "gluon_in1k"
    net = get_model("googlenet_bn", pretrained="gluon_in1k", root=str(tmp_path))
    assert net.weights.sha1 == sha1_file(str(tmp_path / meta["file"])) and net.classes == 10


def test_non_numeric_weights_are_refused(gluoncv_pair, tmp_path):
    arrays = mx.nd.load(str(gluoncv_pair[0]))
    arrays["t3"] = arrays["t3"].copy()
    arrays["t3"][0] = np.nan
    arrays["t5"] = arrays["t5"].astype("int32")
    mx.nd.save(str(tmp_path / "bad.params"), arrays)
    with pytest.raises(ConversionError) as exc:
        convert("gluoncv:googlenet", str(tmp_path / "bad.params"), str(tmp_path / "o.params"))
    msg = str(exc.value)
    assert "2 non-numeric" in msg and "non-numeric: t3 holds 1 NaN or infinite value(s)" in msg
    assert "non-numeric: t5 has dtype int32" in msg
    assert not (tmp_path / "o.params").exists()


# --- the filters live with the models ---------------------------------------------------------

def test_a_new_source_is_declared_in_the_model_file_only(tmp_path):
    """A model registered with ``sources=`` converts through ``convert('SOURCE:NAME')`` with
    its own filter; convert.py is not edited (and names no model family)."""
    from safetensors.numpy import save_file

    from inceptionzoo import register_model
    from inceptionzoo._registry import _unregister
    from inceptionzoo.checkpoint_filter import Source
    from inceptionzoo.models.inception_mnist import InceptionMNIST
    from inceptionzoo.weights_spec import WeightsSpec

    spec = WeightsSpec("zz_filtered", 10, (1, 28, 28), 28, (0.0,), (1.0,), "zzsrc:mnist",
                       tag="zz")

    @register_model("zz_filtered", description="t", input_shape=(1, 28, 28), classes=10,
                    variant="reduced", num_params=0, weights=[spec],
                    sources={"ZZSRC:mnist": Source(renames=((r"^trunk\.", ""),),
                                                   drop=r"^extra\.",
                                                   classifier="trunk.output_weight")})
    def zz_filtered(classes=10, **kwargs):
        return InceptionMNIST(classes=classes, prefix="zz_filtered_")

    try:
        assert SOURCES["zzsrc", "mnist"].model == "zz_filtered"
        ref = zz_filtered(classes=4)
        ref.initialize(mx.init.Xavier())
        tensors = {"trunk." + k[len("zz_filtered_"):]: p.data().asnumpy()
                   for k, p in ref.collect_params().items()}
        tensors["extra.unused"] = np.zeros(3, np.float32)
        save_file(tensors, str(tmp_path / "zz.safetensors"))
        meta = convert("zzsrc:MNIST", str(tmp_path / "zz.safetensors"),
                       str(tmp_path / "zz.params"))
        assert (meta["model"], meta["classes"], meta["source"]) == ("zz_filtered", 4,
                                                                      "zzsrc:mnist")
        net = zz_filtered(classes=4)
        net.load_parameters(str(tmp_path / "zz.params"))
        x = mx.nd.random.uniform(shape=(2, 1, 28, 28))
        np.testing.assert_array_equal(net(x).asnumpy(), ref(x).asnumpy())
    finally:
        _unregister("zz_filtered")
    assert ("zzsrc", "mnist") not in SOURCES
    text = open(os.path.join(os.path.dirname(__file__), "..", "src", "inceptionzoo",
                             "convert.py")).read()
    assert not re.search(r"^\s*(from|import)\s+\S*models", text, re.M)
    assert not re.search(r"googlenet|inception_v4|AuxLogits|last_linear", text)


def test_every_source_has_a_reference_case():
    """Each declared source is checked against its own library: gluoncv's network in this
    venv (GLUONCV_CASES), a torch library's built by tests/reference/make_references.py, or,
    for any other source, the references folder of its case that $INCEPTIONZOO_REFERENCES
    names (the checkpoint, pixels, logits and meta.json that the source's own library made,
    as make_references.py writes them)."""
    gluon = {("gluoncv", c.values[0]) for c in GLUONCV_CASES}
    given = os.environ.get("INCEPTIONZOO_REFERENCES")
    for case, spec in CASES.items():
        kind = spec.split(":")[0]
        assert kind in TORCH_LIBRARIES or (given and os.path.isfile(
            os.path.join(given, case, "meta.json"))), (
            f"{spec}: no reference case: tests/reference/make_references.py builds "
            f"{sorted(TORCH_LIBRARIES)} networks; give the references of {case!r} in "
            "$INCEPTIONZOO_REFERENCES")
    assert set(SOURCES) == {tuple(v.split(":")) for v in CASES.values()} | gluon


@pytest.mark.parametrize("sources, words", [
    ({"zzsrc:other": "not a filter"}, "must map 'SOURCE:NAME' to a checkpoint_filter.Source"),
    ({"nocolon": None}, "must map 'SOURCE:NAME'"),
    ({"zzsrc:other": "Source()"}, "has no WeightsSpec with source='zzsrc:other'"),
    ({"torchvision:inception_v3": "Source()"}, "already converts to 'inception_v3'"),
])
def test_declared_sources_are_checked_at_registration(sources, words):
    from inceptionzoo import register_model
    from inceptionzoo.checkpoint_filter import Source

    sources = {k: Source() if v == "Source()" else v for k, v in sources.items()}
    with pytest.raises(ValueError, match=re.escape(words)):
        register_model("zz_bad_sources", description="t", input_shape=(1, 28, 28),
                       classes=10, variant="reduced", num_params=0,
                       sources=sources)(lambda **kw: None)
    assert "zz_bad_sources" not in __import__("inceptionzoo").list_models()


def test_a_checkpoint_that_does_not_fit_is_named(tmp_path):
    """The mismatch error names the checkpoint, as every other ConversionError does (it said
    "the checkpoint does not fit ...")."""
    path = tmp_path / "small.params"
    mx.nd.save(str(path), {"output.weight": mx.nd.zeros((10, 1024)),
                           "output.bias": mx.nd.zeros((10,))})
    with pytest.raises(ConversionError, match=rf"^{re.escape(repr(str(path)))} does not fit "
                       r"'googlenet_bn' \(\d+ problems"):
        convert("gluoncv:googlenet", str(path), str(tmp_path / "o.params"))
