"""The way back: zoo ``.params`` -> torchvision / timm / gluoncv checkpoints
(``inceptionzoo.convert_back``, ``inceptionzoo convert --to``).

- Round trip: every source checkpoint the zoo converts (the reference checkpoints of
  tests/test_convert.py, random weights and BN statistics), converted to the zoo and back,
  gives the source file's tensors bit-exactly (gluoncv: the same bytes).
- Fine-tuned and back: for every network, a fine-tune on an image folder here (one epoch, every
  parameter trained, 3 classes, at its smallest input), converted back to each of its sources;
  the source library's own network, built by the line ``convert_back`` returns and loaded
  strictly, gives the zoo network's logits within the converter's tolerance (1e-4 of the
  largest logit). torchvision / timm run in the PyTorch side environment, gluoncv here.
- docs/weights.md's "Back to PyTorch / gluoncv" commands run as written.
"""
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from conftest import ROOT, test_shape, torch_references
from inceptionzoo import get_model
from inceptionzoo.checkpoint_filter import BN_COUNTER
from inceptionzoo.checkpoints import read_checkpoint
from inceptionzoo.cli import main
from inceptionzoo.convert import SOURCES, ConversionError, convert
from inceptionzoo.convert_back import checkpoint_keys, convert_back
from inceptionzoo.weights import WeightsError
from _sample_data import write_image_folder
from test_builder import write_converted
from test_convert import (CASES, GLUONCV_CASES, _gluoncv_reference, _rel_err,  # noqa: F401
                          references)

TORCH_SOURCES = sorted(f"{s}:{n}" for s, n in SOURCES if s != "gluoncv")
EXE = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")


# --- the inverse filters ------------------------------------------------------------------

def test_every_torch_source_has_its_keys_and_they_cover_the_zoo_network():
    """The keys shipped for each torch source, through the inverse of its checkpoint filter,
    name every parameter of the zoo network once (with and without the auxiliary head)."""
    assert sorted(checkpoint_keys()) == TORCH_SOURCES, (
        "rerun .venv-torch/bin/python tests/reference/make_checkpoint_keys.py "
        f"src/inceptionzoo/checkpoint_keys.json {' '.join(TORCH_SOURCES)}")
    for spec in TORCH_SOURCES:
        source = SOURCES[tuple(spec.split(":"))]
        for aux in ([False, True] if source.aux_prefix else [False]):
            net = get_model(source.model, **({"aux_logits": True} if aux else {}))
            names = source.source_names(checkpoint_keys()[spec], net.prefix, aux)
            assert sorted(names) == sorted(net.collect_params()), spec
            assert all(source.zoo_name(k, net.prefix) == z for z, k in names.items())


def test_a_filter_that_cannot_be_inverted_is_an_error():
    from inceptionzoo.checkpoint_filter import Source

    source = Source(renames=((r"^b\.", "a."),), model="m")
    assert source.source_names(["a.w", "c.w"], "m_") == {"m_a_w": "a.w", "m_c_w": "c.w"}
    with pytest.raises(ConversionError, match="maps both 'a.w' and 'b.w' onto 'm_a_w'"):
        source.source_names(["a.w", "b.w"], "m_")


# --- round trip: source -> zoo -> source ---------------------------------------------------

def _assert_same_tensors(got, want, path, ordered):
    if not ordered:  # a safetensors header is sorted: no order to keep
        got, want = dict(sorted(got.items())), dict(sorted(want.items()))
    assert list(got) == list(want), (path, set(got) ^ set(want))
    for key, value in want.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, (path, key)
        np.testing.assert_array_equal(got[key], value, err_msg=f"{path}: {key}")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.parametrize("case", list(CASES) + ["tv_inception_v3_299"])
def test_round_trip_gives_the_source_tensors_bit_exactly(references, case, fmt, tmp_path):
    spec = CASES.get(case, "torchvision:inception_v3")
    aux = case == "tv_inception_v3_299"  # converted with its auxiliary head: it goes back too
    source = SOURCES[tuple(spec.split(":"))]
    ckpt = str(references / case / f"model.{fmt}")
    want = read_checkpoint(ckpt, spec.split(":")[0])
    kept = {k for k in want if source.keeps(k, aux)}  # the aux heads (torchvision) are not
    want = {k: v for k, v in want.items() if k in kept  # BN counters of the BNs kept: 0 here
            or (k.endswith(BN_COUNTER) and k[:-len(BN_COUNTER)] + "running_mean" in kept)}
    assert aux or not any("aux" in k.lower() for k in want)
    zoo = str(tmp_path / "zoo.params")
    convert(spec, ckpt, zoo, aux_logits=aux)
    for out_fmt in ("pth", "safetensors"):
        out = str(tmp_path / f"back.{out_fmt}")
        meta = convert_back(spec, zoo, out)
        assert meta["tensors"] == len(want) and meta["aux_logits"] == aux
        _assert_same_tensors(read_checkpoint(out, spec.split(":")[0]), want, out,
                             ordered=fmt == out_fmt == "pth")


@pytest.mark.parametrize("name,size,zoo", GLUONCV_CASES)
def test_gluoncv_round_trip_gives_the_same_file(name, size, zoo, tmp_path):
    original = tmp_path / f"{name}.params"
    x, ref = _gluoncv_reference(name, size, str(original))
    convert(f"gluoncv:{name}", str(original), str(tmp_path / "zoo.params"))
    out = tmp_path / "back.params"
    meta = convert_back(f"gluoncv:{name}", str(tmp_path / "zoo.params"), str(out))
    assert out.read_bytes() == original.read_bytes()  # names, order, aliases, values
    assert meta["model"] == zoo and meta["classes"] == 1000
    logits = _gluoncv_logits(meta["load"], x)
    assert _rel_err(logits, ref) == 0.0


def _gluoncv_logits(code, x):
    """Run a ``load`` line of gluoncv here (MXNet); the logits of ``model`` on ``x``."""
    from inceptionzoo._gluoncv import import_gluoncv

    scope = {"gluoncv": import_gluoncv(), "mx": mx}
    exec(code, scope)
    return scope["model"](mx.nd.array(x)).asnumpy()


# --- errors and overwriting ------------------------------------------------------------------

@pytest.fixture(scope="module")
def zoo_googlenet(tmp_path_factory):
    """A converted googlenet_bn file (random weights, 10 classes) with its sidecar."""
    from test_convert import _zoo_as_gluoncv

    folder = tmp_path_factory.mktemp("zoo")
    _zoo_as_gluoncv(folder / "g.params", 0)
    convert("gluoncv:googlenet", str(folder / "g.params"), str(folder / "zoo.params"))
    return folder / "zoo.params"


def test_convert_back_errors(zoo_googlenet, tmp_path, monkeypatch):
    zoo = str(zoo_googlenet)
    with pytest.raises(ConversionError, match="unknown source network 'timm:resnet50'"):
        convert_back("timm:resnet50", zoo, str(tmp_path / "o.pth"))
    with pytest.raises(ConversionError, match=r"a torchvision checkpoint is a \.pth / \.pt / "
                                              r"\.bin / \.safetensors file; got '.*o\.params'"):
        convert_back("torchvision:googlenet", zoo, str(tmp_path / "o.params"))
    with pytest.raises(ConversionError, match=r"a gluoncv checkpoint is a \.params file"):
        convert_back("gluoncv:googlenet", zoo, str(tmp_path / "o.pth"))
    with pytest.raises(ConversionError, match="zoo weights .* do not exist"):
        convert_back("torchvision:googlenet", str(tmp_path / "none.params"),
                     str(tmp_path / "o.pth"))
    with pytest.raises(WeightsError, match="holds weights of 'googlenet_bn', not "
                                           "'inception_v3'"):
        convert_back("timm:inception_v3", zoo, str(tmp_path / "o.pth"))
    with pytest.raises(ConversionError, match="would replace the checkpoint"):
        convert_back("gluoncv:googlenet", zoo, zoo, overwrite=True)
    (tmp_path / "lone.params").write_bytes(zoo_googlenet.read_bytes())  # plain Gluon file:
    lone = convert_back("torchvision:googlenet", str(tmp_path / "lone.params"),  # the one load
                        str(tmp_path / "lone.pth"))  # path reads it (default transform)
    same = convert_back("torchvision:googlenet", zoo, str(tmp_path / "same.pth"))
    from inceptionzoo.checkpoints import read_checkpoint

    a, b = (read_checkpoint(str(tmp_path / f), "torchvision") for f in ("lone.pth", "same.pth"))
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert lone["classes"] == same["classes"] == 10
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "safetensors.numpy", None)  # as if not installed
        with pytest.raises(ConversionError, match="writing .safetensors needs the safetensors "
                                                  r"package: in the inceptionzoo checkout, pip install "
                                                  r"-c constraints.txt -e '\.\[cpu,convert"):
            convert_back("torchvision:googlenet", zoo, str(tmp_path / "o.safetensors"))
        m.setattr("inceptionzoo.convert_back.import_gluoncv", _no_gluoncv)  # the name it calls
        with pytest.raises(ConversionError, match="writing a gluoncv checkpoint needs gluoncv: "
                                                  "gluoncv is not installed"):
            convert_back("gluoncv:googlenet", zoo, str(tmp_path / "o.params"))
    assert sorted(os.listdir(tmp_path)) == ["lone.params", "lone.pth", "same.pth"]  # no more


def _no_gluoncv():
    raise ImportError("gluoncv is not installed: pip install 'inceptionzoo[gluoncv]'")


def test_a_zoo_tensor_without_a_place_in_the_source_is_an_error(zoo_googlenet, tmp_path,
                                                                monkeypatch):
    """A key list that lacks a layer of the zoo network: one error listing what is left over,
    nothing written."""
    import inceptionzoo.convert_back as back

    path = str(zoo_googlenet)
    keys = {k: [n for n in v if not n.startswith("fc.")] for k, v in
            checkpoint_keys().items()}
    monkeypatch.setattr(back, "checkpoint_keys", lambda: keys)
    with pytest.raises(ConversionError, match=r"'googlenet_bn' does not fit "
                                              r"torchvision:googlenet \(2 problems: 2 "
                                              r"unexpected\):\n  unexpected: googlenet_bn_"
                                              r"output_weight has no place"):
        convert_back("torchvision:googlenet", path, str(tmp_path / "o.pth"))
    assert not (tmp_path / "o.pth").exists()


def test_both_directions_refuse_an_existing_output_without_overwrite(zoo_googlenet, tmp_path,
                                                                     capsys, monkeypatch):
    zoo = str(zoo_googlenet)
    out = tmp_path / "g.pth"
    assert main(["convert", "--to", "torchvision:googlenet", zoo, str(out)]) == 0
    first = out.read_bytes()
    assert "googlenet_bn -> torchvision:googlenet" in capsys.readouterr().out
    out.write_bytes(b"mine")
    assert main(["convert", "--to", "torchvision:googlenet", zoo, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inceptionzoo convert: error: ") and "exists; pass overwrite=True " \
        "(--overwrite) to replace it" in err and len(err.splitlines()) == 1
    assert out.read_bytes() == b"mine"
    assert main(["convert", "--to", "torchvision:googlenet", zoo, str(out), "--overwrite",
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["file"] == str(out) and got["classes"] == 10 and out.read_bytes() == first
    # the forward direction: the params file or its sidecar, refused alike
    ckpt = zoo_googlenet.parent / "g.params"
    for existing in ("z.params", "z.json"):
        folder = tmp_path / existing.replace(".", "_")
        folder.mkdir()
        (folder / existing).write_text("mine")
        assert main(["convert", "gluoncv:googlenet", str(ckpt), "--out", str(folder),
                     "--name", "z"]) == 2
        assert "exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
        assert os.listdir(folder) == [existing]
        assert main(["convert", "gluoncv:googlenet", str(ckpt), "--out", str(folder),
                     "--name", "z", "--overwrite"]) == 0
        assert sorted(os.listdir(folder)) == ["z.json", "z.params"]
    assert main(["convert", "--to", "torchvision:googlenet", zoo, str(out), "--out", "x"]) == 2
    assert "takes no --out" in capsys.readouterr().err
    home = tmp_path / "home"  # without --out: the weights folder
    monkeypatch.setenv("INCEPTIONZOO_HOME", str(home))
    assert main(["convert", "gluoncv:googlenet", str(ckpt)]) == 0
    assert sorted(os.listdir(home)) == ["googlenet_bn.gluon_in1k.json",
                                        "googlenet_bn.gluon_in1k.params"]


# --- fine-tuned here, loaded there ----------------------------------------------------------

def _folder(root, side, classes=3):
    rs = np.random.RandomState(0)
    for split, n in (("train", 2 * classes), ("val", classes)):
        x = rs.randint(0, 256, size=(n, side, side, 3)).astype(np.uint8)
        write_image_folder(str(root / split), x, np.arange(n) % classes)
    return root


def _fine_tuned(name, tmp_path):
    """A 3-class fine-tune of random converted weights at the network's smallest input (every
    parameter trained, one epoch); returns the checkpoint."""
    side = test_shape(name)[1]
    weights, _ = write_converted(name, tmp_path / f"{name}.params", seed=1, spec_changes=dict(
        input_size=(3, side, side), resize_size=side))
    data = _folder(tmp_path / "imgs", side + 8)
    assert main(["train", name, "--params", weights, "--classes", "3", "--data-dir", str(data),
                 "--epochs", "1", "--batch-size", "3", "--lr", "0.01", "--no-progress", "--out",
                 str(tmp_path / "run")]) == 0
    return str(tmp_path / "run" / f"{name}-0001.params")


def _side_logits(tmp_path, jobs):
    """Run the jobs (``{"code", "cwd", "input", "output"}``) in the PyTorch side environment;
    return their logits."""
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    torch_references("run_converted_back.py", tmp_path, path)
    return [np.load(job["output"]) for job in jobs]


#: zoo network -> the sources it converts from (each file type used once at least)
NETWORKS = {name: sorted(f"{s}:{n}" for (s, n), src in SOURCES.items() if src.model == name)
            for name in sorted({src.model for src in SOURCES.values()})}


def _input(name, kind, seed=2):
    """A normalised batch of 2 for comparing with ``kind``'s network: the smallest input for
    torchvision / timm (adaptive pooling), the design size for gluoncv (whose final pooling
    has a fixed window)."""
    from inceptionzoo import model_info

    side = (model_info(name).input_shape if kind == "gluoncv" else test_shape(name))[1]
    return np.random.RandomState(seed).normal(0, 1, (2, 3, side, side)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NETWORKS if n != "googlenet_bn"])  # docs' test
def test_fine_tuned_here_loaded_there(name, tmp_path):
    ckpt = _fine_tuned(name, tmp_path)
    net = get_model(name, pretrained=ckpt)
    jobs, got, want = [], [], {}
    for i, spec in enumerate(NETWORKS[name]):
        kind = spec.split(":")[0]
        x = _input(name, kind)
        want[spec] = net(mx.nd.array(x)).asnumpy()
        assert want[spec].shape == (2, 3)
        suffix = ".params" if kind == "gluoncv" else (".pth", ".safetensors")[i % 2]
        meta = convert_back(spec, ckpt, str(tmp_path / f"back{i}{suffix}"))
        assert meta["classes"] == 3
        if kind == "gluoncv":
            got.append((spec, _gluoncv_logits(meta["load"], x)))
        else:
            np.save(tmp_path / f"x{i}.npy", x)
            jobs.append({"code": meta["load"], "cwd": str(tmp_path), "input": str(tmp_path /
                         f"x{i}.npy"), "output": str(tmp_path / f"logits{i}.npy"), "spec": spec})
    got += [(job["spec"], logits) for job, logits in zip(jobs, _side_logits(tmp_path, jobs))]
    assert sorted(s for s, _ in got) == NETWORKS[name]
    errors = {spec: _rel_err(logits, want[spec]) for spec, logits in got}
    print(name, errors)
    assert max(errors.values()) <= 1e-4, errors


# --- docs/weights.md, "Back to PyTorch / gluoncv" -------------------------------------------

def _docs_blocks():
    text = open(os.path.join(ROOT, "docs", "weights.md")).read()
    m = re.search(r"<!-- way-back:begin -->\n(.*?)<!-- way-back:end -->", text, re.S)
    assert m, "docs/weights.md lost its way-back markers"
    return re.findall(r"```(\w*)\n(.*?)```", m.group(1), re.S)


@pytest.mark.slow
def test_docs_way_back_runs_as_written(tmp_path):
    """The section's commands run verbatim in a folder holding weights/googlenet_bn.params
    (random converted weights, at GoogLeNet's smallest input) and photos/ (3 classes); its
    torch block runs in the side environment, its gluoncv block here; both give the
    fine-tuned zoo network's logits."""
    blocks = _docs_blocks()
    shell = [line for lang, body in blocks if lang == "" for line in body.splitlines() if line]
    code = {lang_code: body for lang_code, body in (
        (("torch" if "torch" in body else "gluoncv"), body) for lang, body in blocks
        if lang == "python")}
    assert shell and set(code) == {"torch", "gluoncv"}, blocks
    backs = sorted(line.split()[3] for line in shell if "--to" in line)
    assert backs == NETWORKS["googlenet_bn"]  # every source of googlenet_bn, checked below
    side = test_shape("googlenet_bn")[1]
    (tmp_path / "weights").mkdir()
    write_converted("googlenet_bn", tmp_path / "weights" / "googlenet_bn.params", seed=1,
                    spec_changes=dict(input_size=(3, side, side), resize_size=side))
    _folder(tmp_path / "photos", side + 8)
    for line in shell:
        argv = line.split()
        assert argv[0] == "inceptionzoo", line
        p = subprocess.run([EXE] + argv[1:], cwd=tmp_path, capture_output=True, text=True)
        assert p.returncode == 0, (line, p.stderr)
    ckpts = sorted((tmp_path / "runs" / "back").glob("googlenet_bn-*.params"))
    net = get_model("googlenet_bn", pretrained=str(ckpts[-1]))
    x = _input("googlenet_bn", "torchvision")
    np.save(tmp_path / "x.npy", x)
    torch_logits, = _side_logits(tmp_path, [{"code": code["torch"], "cwd": str(tmp_path),
                                             "input": str(tmp_path / "x.npy"),
                                             "output": str(tmp_path / "torch.npy")}])
    errors = {"torchvision": _rel_err(torch_logits, net(mx.nd.array(x)).asnumpy())}
    x = _input("googlenet_bn", "gluoncv")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        gluon_logits = _gluoncv_logits(code["gluoncv"], x)
    finally:
        os.chdir(cwd)
    want = net(mx.nd.array(x)).asnumpy()
    errors["gluoncv"] = _rel_err(gluon_logits, want)
    assert want.shape == (2, 3) and max(errors.values()) <= 1e-4, errors


def test_a_written_checkpoint_does_not_depend_on_the_clock(monkeypatch, tmp_path):
    """The same tensors give the same bytes whenever written (zip entries carry no write
    time): test_both_directions_refuse_an_existing_output_without_overwrite compares two
    writes a moment apart."""
    import time as time_module

    from inceptionzoo import torch_archive

    items = [("archive/data.pkl", b"x"), ("archive/version", b"3\n")]
    torch_archive.write_entries(str(tmp_path / "a.pth"), items)
    later = time_module.time() + 86400 * 3
    monkeypatch.setattr(time_module, "time", lambda: later)
    monkeypatch.setattr(time_module, "localtime", lambda *a: time_module.gmtime(later))
    torch_archive.write_entries(str(tmp_path / "b.pth"), items)
    assert (tmp_path / "a.pth").read_bytes() == (tmp_path / "b.pth").read_bytes()
