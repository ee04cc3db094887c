"""The ImageNet networks on CPU: the zoo's MXNet paths (the recommended static graphs, and the
serving graph of ``load_graph(runtime='auto')``) against gluoncv's model (static), ONNX Runtime
on the zoo's ONNX export, and torchvision's / timm's model in PyTorch eager and under
``torch.compile`` (with inductor freezing); with ``--train``, a training step (forward,
backward, SGD update) of hybridized MXNet against PyTorch eager and ``torch.compile``.

    python benchmarks/imagenet_inception.py --networks googlenet,inception_v3,inception_v4,\\
        inception_resnet_v2 --batch-sizes 1,16 --json out.json
    python benchmarks/imagenet_inception.py --train --networks inception_v3 --batch-sizes 16,32

Fair by construction: every contender runs alone in a fresh process, and no peer's process
imports MXNet (PyTorch in the venv of ``make torch-env``, ONNX Runtime with the main venv's
python; gluoncv needs MXNet itself, so its process runs nothing but gluoncv). All run the same
weights, passed as files: the PyTorch library's network with random weights and batch-norm
statistics (``torch_worker.py --make-weights``), converted for the zoo with ``inceptionzoo
convert`` and exported to ONNX from there; gluoncv's own random weights, converted the same way
for its reference. Before timing, each peer's logits of a check input must be the zoo network's
(``_peer.check_same_function``), else its row says ``refused: ...``. ``googlenet`` here is
torchvision's GoogLeNet, the zoo's ``googlenet_bn`` (also gluoncv's ``googlenet``). The timing
(warm-up, latency p50 / p90, throughput over ``--repeats`` runs) is ``benchmarks/_timing.py``'s.
Numbers depend on the machine's load: measure on an idle machine. A quick check that everything
runs::

    python benchmarks/imagenet_inception.py --networks googlenet --batch-sizes 1 \\
        --run-seconds 0.01 --repeats 1 --latency-iters 1
"""
import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import throughput as bench  # noqa: E402
from _peer import batch_of, check_same_function  # noqa: E402
from _timing import time_calls  # noqa: E402



def _networks():
    """Every zoo network a PyTorch library's network converts to, from the sources the model
    files declare: row name (the PyTorch network's) -> (zoo network, PyTorch library (torchvision
    before timm), its name, gluoncv's name or None)."""
    from inceptionzoo._registry import checkpoint_sources  # before MXNet: its threads

    by_model = {}
    for (kind, name), source in checkpoint_sources().items():
        by_model.setdefault(source.model, {}).setdefault(kind, name)
    return {kinds[lib]: (zoo, lib, kinds[lib], kinds.get("gluoncv"))
            for zoo, kinds in by_model.items()
            for lib in [next((k for k in ("torchvision", "timm") if k in kinds), None)] if lib}


#: row name -> (zoo network, PyTorch library, its name, gluoncv's name or None)
NETWORKS = _networks()
INFER_MODES = ["recommended", bench.SERVING_MODE, "gluoncv-static", "onnxruntime", "torch-eager",
               "torch-compile-frozen"]
TRAIN_MODES = ["train-hybrid", "torch-train-eager", "torch-train-compile"]
#: every mode this script knows (``static``, ``imperative`` and unfrozen ``torch-compile`` on
#: request)
MODES = ["imperative", "static"] + INFER_MODES + ["torch-compile"] + TRAIN_MODES


def prepare(network, folder, checkpoint=None, gluoncv_params=None, check_batch=2):
    """The zoo network's weights (converted from ``checkpoint`` when given, else random), a
    check input, its logits, the ONNX export, and the logits of gluoncv's weights converted.

    Parameters
    ----------
    network : str
        A key of :data:`NETWORKS`.
    folder : str
        Where the files go.
    checkpoint : str, optional
        The PyTorch library's ``state_dict`` (``torch_worker.py --make-weights``).
    gluoncv_params : str, optional
        gluoncv's random weights (``--gluoncv-weights``).
    check_batch : int
        Images in the check input.

    Returns
    -------
    dict
        Paths by role: ``params``, ``check_input``, ``check_logits``, ``onnx`` and, with
        ``gluoncv_params``, ``gluoncv_check_logits``.
    """
    from inceptionzoo import get_model  # before MXNet: its threads (inceptionzoo._openmp)
    from inceptionzoo.convert import convert
    import mxnet as mx
    import numpy as np

    from inceptionzoo.export import export
    from inceptionzoo.runtimes import sample_input

    zoo, lib, name, gname = NETWORKS[network]
    net = get_model(zoo)
    paths = {k: os.path.join(folder, f) for k, f in (
        ("params", "net.params"), ("check_input", "check_input.npy"),
        ("check_logits", "check_logits.npy"))}
    if checkpoint:
        convert(f"{lib}:{name}", checkpoint, paths["params"])
        net.load_parameters(paths["params"])
    else:
        mx.random.seed(0)
        net.initialize(mx.init.Xavier())
    x = sample_input(check_batch, net.info.input_shape, "float32")
    np.save(paths["check_input"], x)
    np.save(paths["check_logits"], net(mx.nd.array(x)).asnumpy())
    net.save_parameters(paths["params"])
    paths["onnx"] = export(net, os.path.join(folder, "onnx", zoo), onnx=True)["onnx"]
    if gluoncv_params:
        out = os.path.join(folder, "gluoncv-as-zoo.params")
        convert(f"gluoncv:{gname}", gluoncv_params, out)
        other = get_model(zoo)
        other.load_parameters(out)
        paths["gluoncv_check_logits"] = os.path.join(folder, "gluoncv_check_logits.npy")
        np.save(paths["gluoncv_check_logits"], other(mx.nd.array(x)).asnumpy())
    return paths


def _gluoncv_net(spec):
    # inceptionzoo first: MXNet then runs one OpenMP thread per core (inceptionzoo._openmp), as
    # the zoo's own workers do
    from inceptionzoo._gluoncv import import_gluoncv  # gluoncv with torch hidden; no network

    import mxnet as mx

    net = import_gluoncv().model_zoo.get_model(spec["gluoncv"], pretrained=False)
    return mx, net


def gluoncv_weights(spec):
    """gluoncv's network with its own random initialisation (batch-norm statistics drawn away
    from 0 / 1), saved to ``spec['out']``."""
    from peers.gluon_twin import randomise_bn_statistics

    mx, net = _gluoncv_net(spec)
    mx.random.seed(0)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, spec["size"], spec["size"])))
    randomise_bn_statistics(net)
    net.save_parameters(spec["out"])
    return {"out": spec["out"]}


def gluoncv_worker(spec):
    """gluoncv's network, static, alone in its process: checked, then timed."""
    import resource
    import time

    t0 = time.perf_counter()
    mx, net = _gluoncv_net(spec)
    net.load_parameters(spec["gluoncv_params"])
    net.hybridize(static_alloc=True, static_shape=True)
    parity = check_same_function(lambda x: net(mx.nd.array(x)).asnumpy(),
                                 dict(spec, check_logits=spec["gluoncv_check_logits"]))
    x = mx.nd.array(batch_of(spec))

    def sync(out, all_=False):
        mx.nd.waitall() if all_ else out.wait_to_read()

    res = time_calls(lambda: net(x), spec["batch"], spec["run_seconds"], spec["repeats"],
                     spec["latency_iters"], sync)
    res.update(parity, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               wall_seconds=time.perf_counter() - t0,
               inceptionzoo_networks_run=0)  # only gluoncv's network ran here
    return res


def _self(flag, spec):
    return [sys.executable, os.path.abspath(__file__), flag, json.dumps(spec)]


def _files(network, modes, folder, timeout):
    """Weights and check files of one network (see :func:`prepare`), each step in its own
    process; peers that cannot run here are returned with the reason."""
    zoo, lib, name, gname = NETWORKS[network]
    os.makedirs(folder, exist_ok=True)
    unsupported = {}
    checkpoint = None
    if os.path.isfile(bench.TORCH_PYTHON):
        checkpoint = os.path.join(folder, f"{name}.pth")
        res = bench._run_peer_process(
            [bench.TORCH_PYTHON, os.path.join(HERE, "torch_worker.py"), "--make-weights",
             json.dumps({"source": lib, "name": name, "checkpoint": checkpoint})], timeout)
        if "error" in res:
            raise RuntimeError(f"{lib} {name}: making its weights failed: {res['error']}")
    else:
        for m in modes:
            if m.startswith("torch"):
                unsupported[m] = (f"unsupported: no PyTorch venv at {bench.TORCH_PYTHON} "
                                  "(make torch-env, or set INCEPTIONZOO_TORCH_PYTHON)")
    gparams = None
    if "gluoncv-static" in modes:
        if gname is None:
            unsupported["gluoncv-static"] = f"unsupported: gluoncv has no {network}"
        else:
            gparams = os.path.join(folder, "gluoncv.params")
            size = 224 if zoo == "googlenet_bn" else 299
            res = bench._run_peer_process(_self("--gluoncv-weights", {
                "gluoncv": gname, "size": size, "out": gparams}), timeout)
            if "error" in res:
                raise RuntimeError(f"gluoncv {gname}: making its weights failed: {res['error']}")
    res = bench._run_peer_process(_self("--prepare", {
        "network": network, "folder": folder, "checkpoint": checkpoint,
        "gluoncv_params": gparams}), timeout)
    if "error" in res:
        raise RuntimeError(f"preparing {network} failed: {res['error']}")
    return dict(res, gluoncv_params=gparams, gluoncv=gname, checkpoint=checkpoint), unsupported


def run(networks, modes, batch_sizes, run_seconds=2.0, repeats=3, latency_iters=5,
        timeout=1800, log=print, trials=1):
    """Every (network, batch size, mode), each in a fresh process; the result rows.

    Parameters
    ----------
    networks : list of str
        Keys of :data:`NETWORKS`.
    modes : list of str
        Of :data:`MODES`.
    batch_sizes : list of int
    run_seconds, repeats, latency_iters
        As for ``_timing.time_calls``.
    timeout : int
        Seconds per process.
    log : callable
        Gets one line per row.
    trials : int
        Fresh processes per row, in rounds (each round runs every mode once, so that a slow
        spell of the machine hits the contenders alike); a row reports the medians over them.

    Returns
    -------
    list of dict
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for network in networks:
            zoo, lib, name, _ = NETWORKS[network]
            files, unsupported = _files(network, modes, os.path.join(tmp, network), timeout)
            for batch in batch_sizes:  # the contenders one after another at each batch size

                def run_one(mode):
                    spec = dict(model=zoo, ctx="cpu", mode=mode, batch=batch,
                                run_seconds=run_seconds, repeats=repeats,
                                latency_iters=latency_iters, source=lib, name=name,
                                classes=1000, **files)  # the MXNet worker builds zoo
                    cmd = _self("--gluoncv-worker", spec) if mode == "gluoncv-static" \
                        else bench._command(spec)
                    return bench._run_peer_process(cmd, timeout)

                done = bench.run_trials([m for m in modes if m not in unsupported], trials,
                                        run_one)
                for mode in modes:
                    row = {"model": network, "ctx": "cpu", "mode": mode, "batch": batch}
                    if mode in unsupported:
                        row["error"] = unsupported[mode]
                    else:
                        row.update(done[mode])
                        row["model"] = network
                    rows.append(row)
                    log(bench._line(row))
    for row in rows:  # speed-up against MXNet's recommended path (training: train-hybrid)
        base_mode = "train-hybrid" if "train" in row["mode"] else "recommended"
        base = [r for r in rows if r["model"] == row["model"] and r["batch"] == row["batch"]
                and r["mode"] == base_mode and "images_per_sec" in r]
        if base and "images_per_sec" in row:
            row["speedup"] = row["images_per_sec"] / base[0]["images_per_sec"]
    return rows


def main(argv=None):
    """Run the benchmark from the command line.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        0 when every row was measured or is unsupported here, 1 otherwise.
    """
    p = argparse.ArgumentParser(prog="benchmarks/imagenet_inception.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default="inception_v3",
                   help=f"comma-separated, of {', '.join(NETWORKS)}")
    p.add_argument("--batch-sizes", default=None, help="default 1,16 (--train: 16,32)")
    p.add_argument("--modes", default=None,
                   help=f"comma-separated, of {', '.join(MODES)} (default "
                   f"{','.join(INFER_MODES)}; --train: {','.join(TRAIN_MODES)})")
    p.add_argument("--train", action="store_true", help="time a training step instead")
    p.add_argument("--run-seconds", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-iters", type=int, default=5)
    p.add_argument("--trials", type=int, default=1,
                   help="fresh processes per row, the modes alternating; medians reported")
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--doc", help="markdown file whose section --doc-section this run rewrites")
    p.add_argument("--doc-section", default="imagenet",
                   help="the section between <!-- bench:NAME:begin/end --> markers")
    for flag in ("--worker", "--prepare", "--gluoncv-weights", "--gluoncv-worker"):
        p.add_argument(flag, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.prepare:
        print(json.dumps(prepare(**json.loads(args.prepare))))
        return 0
    if args.gluoncv_weights:
        print(json.dumps(gluoncv_weights(json.loads(args.gluoncv_weights))))
        return 0
    if args.gluoncv_worker:
        print(json.dumps(gluoncv_worker(json.loads(args.gluoncv_worker))))
        return 0
    networks = args.networks.split(",")
    modes = args.modes.split(",") if args.modes else (TRAIN_MODES if args.train else INFER_MODES)
    bad = [n for n in networks if n not in NETWORKS] + [m for m in modes if m not in MODES]
    try:
        batches = [int(b) for b in (args.batch_sizes or ("16,32" if args.train else "1,16"))
                   .split(",")]
    except ValueError:
        p.error(f"--batch-sizes takes integers separated by commas; got {args.batch_sizes!r}")
    if bad:
        p.error(f"unknown network(s) or mode(s): {', '.join(bad)}")
    if args.trials < 1:
        p.error(f"--trials must be at least 1; got {args.trials}")
    rows = run(networks, modes, batches, args.run_seconds, args.repeats, args.latency_iters,
               args.timeout, log=lambda s: print(s, file=sys.stderr, flush=True),
               trials=args.trials)
    print(bench.table(rows))
    if args.json:
        from inceptionzoo._io import write_json

        write_json(args.json, rows)
    if args.doc:
        command = " ".join(["benchmarks/imagenet_inception.py"] + list(
            sys.argv[1:] if argv is None else argv))
        bench.update_doc(args.doc, args.doc_section, rows, command)
    return 0 if all("error" not in r or r["error"].startswith("unsupported") for r in rows) \
        else 1


if __name__ == "__main__":
    sys.exit(main())
