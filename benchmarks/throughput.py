"""Throughput and latency of the zoo's networks, hybridized against imperative and against the
same network in other runtimes (developer tooling: it lives beside the package, not in it).

    python benchmarks/throughput.py --models inception_mnist --batch-sizes 1,32,256 \
        --peer torch --peer onnxruntime --json out.json --plot out.png

Every configuration (model, mode, batch size) runs in a fresh worker process: its peak memory
is its own, and no oneDNN primitive cache or thread pool carries over between modes. In a
worker: build and initialise the model, prepare the mode, warm up outside the timed region
(graph construction, oneDNN primitive creation), then

- latency: ``--latency-iters`` single calls, each ended by ``wait_to_read()`` -> p50 / p90;
- throughput: ``--repeats`` timed runs of enough calls to last ``--run-seconds``, each ended by
  ``mx.nd.waitall()`` -> images/s, median and spread (min..max).

With ``--trials N`` each configuration runs in N fresh workers (at each batch size, the
contenders one after another, N rounds), and a row reports the medians over them (p50 with the range of the workers' p50s): on small shared machines latency moves more
between processes than within one.

Modes (inference): ``imperative``; ``hybrid`` (``hybridize()``); ``static``
(``hybridize(static_alloc=True, static_shape=True)``); ``mkldnn`` (CPU: ``optimize_for(x,
backend='MKLDNN')``, static, fused conv+ReLU and oneDNN subgraphs); ``int8`` (CPU:
``quantization.quantize``, oneDNN INT8, calibrated here on random inputs since only speed is measured);
``cudagraph`` (GPU: static
with ``MXNET_ENABLE_CUDA_GRAPHS=1``); ``recommended`` (:class:`inceptionzoo.graph_tuning.TunedGraph`:
static graphs specialised by batch size, the library's inference path, warmed up with
``warmup([batch])`` before timing, as the Predictor does at load time); ``serving``
(:func:`inceptionzoo.serving.load_graph` with ``runtime='auto'`` on the network's export: MXNet
or ONNX Runtime in this process, whichever it found faster at load; numpy in, logits out; the
row records the runtime). Training: ``train-imperative``, ``train-hybrid``
(forward + backward + SGD update). Peers, each at its best and each in a process that never imports MXNet (two OpenMP runtimes in
one process slow PyTorch down): ``torch-eager``, ``torch-compile`` and ``torch-compile-frozen``
(the same network in PyTorch, built by ``peers/torch_inception.py`` from a description and
weights the MXNet side wrote to files; ``torch.compile`` with inductor, without and with
``torch._inductor.config.freezing = True``, PyTorch's recommended setting for CPU inference), run
by ``benchmarks/torch_worker.py`` in the PyTorch venv of ``make torch-env``; ``onnxruntime`` (the
network's own ONNX export in ONNX Runtime with every graph optimisation, run by
``benchmarks/ort_worker.py`` with the main venv's python). Every contender runs the same weights
(written once per model by ``--prepare``), and a peer is timed only after its logits of a check
input matched MXNet's (else its row says ``refused: ...``). gluoncv's models are peers of the
ImageNet networks: ``benchmarks/imagenet_inception.py``.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import tempfile

import numpy as np

from _timing import time_calls

HERE = os.path.dirname(os.path.abspath(__file__))
#: The PyTorch venv (`make torch-env`): torch 2.14 needs numpy 2, which MXNet 1.9.1 cannot use.
TORCH_PYTHON = os.environ.get("INCEPTIONZOO_TORCH_PYTHON",
                              os.path.join(HERE, "..", ".venv-torch", "bin", "python"))

#: The mode that runs the library's inference path (:class:`inceptionzoo.graph_tuning.TunedGraph`,
#: which the Predictor uses).
RECOMMENDED_MODE = "recommended"

#: The mode that runs what a server runs: :func:`inceptionzoo.serving.load_graph` with
#: ``runtime='auto'`` on the network's export (numpy in, logits out; MXNet or ONNX Runtime, the
#: faster at this batch size as timed at load).
SERVING_MODE = "serving"

INFER_MODES = ["imperative", "hybrid", "static", "mkldnn", "int8", "recommended", SERVING_MODE]
GPU_MODES = ["imperative", "hybrid", "static", "cudagraph", "recommended"]
TRAIN_MODES = ["train-imperative", "train-hybrid"]
PEER_MODES = {"torch": ["torch-eager", "torch-compile", "torch-compile-frozen"],
              "onnxruntime": ["onnxruntime"]}


def prepare_inference(net, mode, x):
    """Make ``net`` run in inference ``mode`` on inputs shaped like ``x``; return the callable."""
    if mode == "imperative":
        return net
    if mode == "hybrid":
        net.hybridize()
    elif mode in ("static", "cudagraph"):
        if mode == "cudagraph":
            os.environ["MXNET_ENABLE_CUDA_GRAPHS"] = "1"
        net.hybridize(static_alloc=True, static_shape=True)
    elif mode == "mkldnn":
        net.optimize_for(x, backend="MKLDNN", static_alloc=True, static_shape=True)
    elif mode == "int8":  # speed only: calibrated on random inputs (see quantization.quantize)
        from inceptionzoo.quantization import quantize
        from inceptionzoo.runtimes import sample_input

        calib = sample_input(100, x.shape[1:], "float32", seed=1)
        return quantize(net, calib)
    elif mode == "recommended":
        from inceptionzoo.graph_tuning import TunedGraph

        graph = TunedGraph.from_block(net, merge=True)  # as the Predictor builds it
        graph.warmup([x.shape[0]])  # picks the graph for this batch size, as a server does
        return graph
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return net


def prepare(model, folder, seed=0, check_batch=2):
    """Write what every contender of ``model`` runs from: the zoo network with random weights
    (``net.params``), a check input and MXNet's logits of it (``.npy``), the network's ONNX
    export and, where it has one, the description and weights of its PyTorch twin.

    Parameters
    ----------
    model : str
        A registered zoo network.
    folder : str
        Where the files go.
    seed : int
        Seed of the weights and of the check input.
    check_batch : int
        Images in the check input.

    Returns
    -------
    dict
        Paths by role: ``params``, ``check_input``, ``check_logits``, ``onnx``, and ``twin`` /
        ``weights`` (absent without a twin).
    """
    import mxnet as mx

    from inceptionzoo import get_model
    from inceptionzoo.export import export
    from inceptionzoo.runtimes import sample_input
    from peers.gluon_twin import describe

    mx.random.seed(seed)
    net = get_model(model)
    net.initialize(mx.init.Xavier())
    x = sample_input(check_batch, net.info.input_shape, "float32", seed=seed)
    logits = net(mx.nd.array(x)).asnumpy()
    paths = {k: os.path.join(folder, f) for k, f in (
        ("params", "net.params"), ("check_input", "check_input.npy"),
        ("check_logits", "check_logits.npy"))}
    net.save_parameters(paths["params"])
    np.save(paths["check_input"], x)
    np.save(paths["check_logits"], logits)
    paths["onnx"] = export(net, os.path.join(folder, "onnx", model), onnx=True)["onnx"]
    try:
        layers, arrays = describe(net)
    except TypeError:  # no PyTorch twin (batch-norm networks: imagenet_inception.py)
        return paths
    paths["twin"], paths["weights"] = (os.path.join(folder, "twin.json"),
                                       os.path.join(folder, "twin.npz"))
    with open(paths["twin"], "w") as f:
        json.dump(layers, f)
    np.savez(paths["weights"], **arrays)
    return paths


def mx_train_step(net, x, y):
    """The training step the ``train-*`` modes time (and the profiles run): forward, softmax
    cross-entropy, backward, and a ``gluon.Trainer`` SGD update (lr 0.01) of every parameter.

    Parameters
    ----------
    net : mxnet.gluon.Block
        An initialised network (hybridized or not).
    x, y : mxnet.nd.NDArray
        A batch of inputs and its class labels.

    Returns
    -------
    callable
        One step per call; returns the loss without waiting for it.
    """
    import mxnet as mx

    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def call():
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
        return loss

    return call


def _mx_worker(spec):
    from inceptionzoo import get_model  # first: it sets MXNet's OpenMP threads before MXNet loads

    import mxnet as mx
    from inceptionzoo._context import parse_ctx
    from inceptionzoo.runtimes import sample_input

    ctx = parse_ctx(spec["ctx"])[0]
    net = get_model(spec["model"])
    if spec.get("params"):  # the weights every contender runs
        net.load_parameters(spec["params"], ctx=ctx)
    else:
        net.initialize(mx.init.Xavier(), ctx=ctx)
    x = mx.nd.array(sample_input(spec["batch"], net.info.input_shape, "float32"), ctx=ctx)

    def sync(out, all_=False):
        if all_:
            mx.nd.waitall()
        else:
            (out[0] if isinstance(out, (list, tuple)) else out).wait_to_read()

    mode = spec["mode"]
    if mode.startswith("train-"):
        if mode == "train-hybrid":
            net.hybridize(static_alloc=True, static_shape=True)
        call = mx_train_step(net, x, mx.nd.array(np.arange(spec["batch"]) % net.info.classes,
                                                  ctx=ctx))
    elif mode == SERVING_MODE:
        from inceptionzoo.serving import load_graph

        from inceptionzoo.export import export

        # beside the prepared files, which the harness removes
        folder = tempfile.mkdtemp(dir=os.path.dirname(spec["params"]) if spec.get("params")
                                  else None)

        export(net, os.path.join(folder, spec["model"]), onnx=True)
        graph = load_graph(folder, runtime="auto", warmup=[spec["batch"]])
        x_np = x.asnumpy().astype(np.float32)

        def call():
            return graph(x_np)
    else:
        call_net = prepare_inference(net, mode, x)

        def call():
            return call_net(x)
    if mode == SERVING_MODE:
        res = time_calls(call, spec["batch"], spec["run_seconds"], spec["repeats"],
                         spec["latency_iters"], lambda out, all_=False: None)
        res["runtime"] = graph.runtime_for(spec["batch"])
        if res["runtime"] == "onnxruntime":
            res["threads"] = graph.ort.threads.get(spec["batch"], 0)
        return res
    res = time_calls(call, spec["batch"], spec["run_seconds"], spec["repeats"],
                     spec["latency_iters"], sync)
    if mode == "recommended" and ctx.device_type == "cpu":  # the graph variant it picked
        res["graph"] = call_net.choice[spec["batch"]]
    return res


def _worker(spec):
    t0 = time.perf_counter()
    res = _mx_worker(spec)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["wall_seconds"] = time.perf_counter() - t0
    # MXNet's OpenMP threads: the user's setting, or the one inceptionzoo set before MXNet loaded
    res["mxnet_omp_threads"] = os.environ.get("OMP_NUM_THREADS") or os.environ.get(
        "MXNET_OMP_MAX_THREADS")
    return res


def _ort_worker(spec):
    """Prepare ``spec['model']`` (random weights) and run ``benchmarks/ort_worker.py`` on its
    ONNX export with ``spec`` (the profile of ``benchmarks/ort_profile.py``)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = _prepared(spec["model"], tmp)
        return _run_peer_process(_command(dict(spec, mode="onnxruntime", **paths)), 900)


def probe_gpu(index=0, timeout=120):
    """Check, in a subprocess with a timeout, that the installed MXNet can run on GPU
    ``index``. Returns ``{'name', 'compute_capability', 'supported', 'reason'}``."""
    info = {"name": None, "compute_capability": None, "supported": False, "reason": ""}
    try:
        q = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=name,compute_cap",
                            "--format=csv,noheader"], capture_output=True, text=True,
                           timeout=30)
        if q.returncode == 0 and q.stdout.strip():
            name, cc = [s.strip() for s in q.stdout.strip().split(",")]
            info.update(name=name, compute_capability=cc)
    except (OSError, subprocess.TimeoutExpired):
        pass
    cc = info["compute_capability"]
    if cc and float(cc) > 8.6:
        info["reason"] = (f"compute capability {cc}: MXNet 1.9.1 GPU wheels carry code for "
                          "sm_50..sm_86 only and no PTX")
        return info
    code = ("import mxnet as mx, sys\n"
            f"n = mx.context.num_gpus()\nassert n > {index}, f'MXNet sees {{n}} GPU(s)'\n"
            f"x = mx.nd.ones((64, 64), ctx=mx.gpu({index}))\n"
            "print(float(mx.nd.dot(x, x).sum().asscalar()))\n")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        info["reason"] = f"a GPU probe did not finish in {timeout} s"
        return info
    if p.returncode != 0 or p.stdout.strip() != str(float(64 ** 3)):
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        info["reason"] = f"MXNet cannot run on gpu{index}: {last}"
        return info
    info["supported"] = True
    return info


def _command(spec):
    """The process that runs one configuration: MXNet modes in this file's worker, ONNX Runtime
    in ``ort_worker.py`` (main venv's python, no MXNet), PyTorch in ``torch_worker.py`` (the
    PyTorch venv)."""
    if spec["mode"] == "onnxruntime":
        return [sys.executable, os.path.join(HERE, "ort_worker.py"), spec["onnx"],
                json.dumps(spec)]
    if spec["mode"].startswith("torch"):
        return [TORCH_PYTHON, os.path.join(HERE, "torch_worker.py"),
                json.dumps(dict({"source": "twin"}, **spec))]
    return [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]


def _run_peer_process(cmd, timeout):
    """Run one worker; its last stdout line is the JSON result, else an ``error``."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if p.returncode != 0:
        lines = p.stderr.strip().splitlines() or ["failed"]
        last = lines[-1]
        for marker in ("PeerMismatch: ", "RuntimeError: "):  # the check's own message
            if marker in last:
                last = last.split(marker, 1)[1]
        return {"error": last}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _run_worker(spec, timeout):
    return _run_peer_process(_command(spec), timeout)


def _prepared(model, folder, timeout=1800):
    """:func:`prepare` in a fresh process (the harness itself runs no network)."""
    os.makedirs(folder, exist_ok=True)
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import throughput; "
            "print(json.dumps(throughput.prepare(sys.argv[2], sys.argv[3])))")
    res = _run_peer_process([sys.executable, "-c", code, HERE, model, folder], timeout)
    if "error" in res:
        raise RuntimeError(f"preparing {model} failed: {res['error']}")
    return res


def _combine(trials):
    """One row from several workers' results for the same configuration: medians of their
    medians and p50/p90, the overall min..max, the largest peak memory, and each trial's p50."""
    errors = [t["error"] for t in trials if "error" in t]
    if errors:
        return {"error": errors[0]}
    med = statistics.median
    out = dict(trials[0], images_per_sec=med([t["images_per_sec"] for t in trials]),
               images_per_sec_min=min(t["images_per_sec_min"] for t in trials),
               images_per_sec_max=max(t["images_per_sec_max"] for t in trials),
               p50_ms=med([t["p50_ms"] for t in trials]),
               p90_ms=med([t["p90_ms"] for t in trials]),
               peak_rss_mb=max(t["peak_rss_mb"] for t in trials),
               trials=len(trials), p50_ms_trials=[t["p50_ms"] for t in trials])
    if "graph" in trials[0]:
        out["graph"] = [t["graph"] for t in trials]
    for key in ("runtime", "threads"):  # what each trial's serving graph / ONNX Runtime chose
        picked = sorted({str(t[key]) for t in trials if key in t})
        if len(picked) > 1:
            out[key] = "/".join(picked)
    return out


def run_trials(keys, trials, run_one):
    """Run each of ``keys`` ``trials`` times in rounds, every key once per round (the
    contenders one after another, so that a slow spell of the machine hits them alike).

    Parameters
    ----------
    keys : list
        The contenders, in the order each round runs them.
    trials : int
        Rounds.
    run_one : callable
        ``run_one(key)`` -> one worker's result dict.

    Returns
    -------
    dict
        Key -> its one result, or with several trials the medians over them (``_combine``).
    """
    results = {}
    for _ in range(trials):
        for key in keys:
            results.setdefault(key, []).append(run_one(key))
    return {k: got[0] if trials == 1 else _combine(got) for k, got in results.items()}


def run(models, modes, batch_sizes, ctx="cpu", run_seconds=0.5, repeats=5,
        latency_iters=50, timeout=900, log=print, trials=1):
    """Run every configuration (``trials`` times, each in a fresh worker); return the result
    rows."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1 (fresh workers per configuration); got "
                         f"{trials}")
    gpu = None
    if ctx.startswith("gpu"):
        gpu = probe_gpu(int(ctx[3:] or 0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            files = None if gpu is not None and not gpu["supported"] else \
                _prepared(model, os.path.join(tmp, model))
            for batch in batch_sizes:
                todo = []
                for mode in modes:
                    row = {"model": model, "ctx": ctx, "mode": mode, "batch": batch}
                    if gpu is not None and not gpu["supported"]:
                        row["error"] = "unsupported: " + gpu["reason"]
                    elif mode.startswith("torch") and "twin" not in files:
                        row["error"] = (f"unsupported: {model} has no PyTorch twin here "
                                        "(ImageNet networks: benchmarks/imagenet_inception.py)")
                    elif mode.startswith("torch") and not os.path.isfile(TORCH_PYTHON):
                        row["error"] = (f"unsupported: no PyTorch venv at {TORCH_PYTHON} (make "
                                        "torch-env, or set INCEPTIONZOO_TORCH_PYTHON)")
                    elif mode in ("mkldnn", "int8", "onnxruntime", SERVING_MODE) and \
                            ctx != "cpu" or mode == "cudagraph" and ctx == "cpu":
                        continue
                    todo.append(row)
                row_of = {row["mode"]: row for row in todo}
                results = run_trials(
                    [row["mode"] for row in todo if "error" not in row], trials,
                    lambda mode: _run_worker(dict(
                        row_of[mode], run_seconds=run_seconds, repeats=repeats,
                        latency_iters=latency_iters, **files), timeout))
                for row in todo:
                    row.update(results.get(row["mode"], {}))
                    rows.append(row)
                    log(_line(row))
    for row in rows:  # speed-up against imperative (training: against train-imperative)
        base_mode = "train-imperative" if row["mode"].startswith("train") else "imperative"
        base = [r for r in rows if r["model"] == row["model"] and r["batch"] == row["batch"]
                and r["mode"] == base_mode and "images_per_sec" in r]
        if base and "images_per_sec" in row:
            row["speedup"] = row["images_per_sec"] / base[0]["images_per_sec"]
    return rows


def _line(row):
    if "error" in row:
        return f"{row['model']} {row['mode']} b{row['batch']}: {row['error']}"
    return (f"{row['model']} {row['mode']} b{row['batch']}: {row['images_per_sec']:.0f} img/s,"
            f" p50 {row['p50_ms']:.3f} ms")


def _mode_cell(row):
    """The mode, with the runtime the serving graph picked and ONNX Runtime's threads."""
    cell = row["mode"]
    if "runtime" in row:
        cell += f": {row['runtime']}"
    if row.get("threads") == 1:
        cell += ", 1 thread"
    return cell


def table(rows):
    """Markdown table of result rows."""
    out = ["| model | ctx | mode | batch | images/s (min..max) | p50 ms | p90 ms | speed-up | "
           "peak MB |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['ctx']} | {r['mode']} | {r['batch']} | "
                       f"{r['error']} | | | | |")
            continue
        sp = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
        p50 = f"{r['p50_ms']:.3f}"
        if len(r.get("p50_ms_trials", [])) > 1:
            p50 += f" ({min(r['p50_ms_trials']):.3f}..{max(r['p50_ms_trials']):.3f})"
        out.append(f"| {r['model']} | {r['ctx']} | {_mode_cell(r)} | {r['batch']} | "
                   f"{r['images_per_sec']:,.0f} ({r['images_per_sec_min']:,.0f}.."
                   f"{r['images_per_sec_max']:,.0f}) | {p50} | {r['p90_ms']:.3f} | "
                   f"{sp} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(out)


def _torch_version():
    """torch's version in the PyTorch venv (the peers' environment), or None."""
    if not os.path.isfile(TORCH_PYTHON):
        return None
    p = subprocess.run([TORCH_PYTHON, "-c", "import torch; print(torch.__version__)"],
                       capture_output=True, text=True)
    return p.stdout.strip() or None


def environment():
    """Machine, versions and the MXNet/OpenMP environment variables, for the JSON report."""
    import mxnet as mx
    import numpy as np

    from inceptionzoo import __version__

    from inceptionzoo.export_runner import machine_name

    cpu = machine_name()
    versions = {"inceptionzoo": __version__, "mxnet": mx.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    from inceptionzoo.runtimes import import_onnxruntime

    ort = import_onnxruntime()
    if ort is not None:
        versions["onnxruntime"] = ort.__version__
    torch_version = _torch_version()
    if torch_version:
        versions["torch"] = torch_version
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("MXNET_", "OMP_", "KMP_", "DNNL_", "MKLDNN_", "OPENBLAS_"))}
    return {"machine": {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count()},
            "versions": versions, "mxnet_features": [f.name for f in
                                                     mx.runtime.Features().values()
                                                     if f.enabled],
            "env": env}


def plot(rows, path):
    """PNG: images/s against batch size, one line per mode, one panel per model."""
    from inceptionzoo._plot import pyplot, save_figure

    models = sorted({r["model"] for r in rows})
    fig, axes = pyplot().subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        for mode in dict.fromkeys(r["mode"] for r in rows if r["model"] == model):
            pts = sorted((r["batch"], r["images_per_sec"]) for r in rows
                         if r["model"] == model and r["mode"] == mode and "images_per_sec" in r)
            if pts:
                ax.plot(*zip(*pts), "o-", label=mode)
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="images/s", title=model)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def build_parser(prog="benchmarks/throughput.py"):
    p = argparse.ArgumentParser(
        prog=prog, usage="%(prog)s [MODEL[,MODEL...]] [options]",
        description=" ".join(__doc__.split("\n\n")[0].split()) + " MODEL, a first argument "
        "that is not an option, is --models.")
    p.add_argument("--models", default="inception_mnist", help="comma-separated names")
    p.add_argument("--modes", default=None,
                   help=f"comma-separated (default: {','.join(INFER_MODES + TRAIN_MODES)} on "
                   f"CPU, {','.join(GPU_MODES + TRAIN_MODES)} on GPU)")
    p.add_argument("--batch-sizes", default="1,32,256")
    p.add_argument("--ctx", default="cpu", help="cpu or gpuN")
    p.add_argument("--peer", choices=sorted(PEER_MODES), action="append",
                   help="also time a peer at its best, each in a process without MXNet: torch "
                   "(the same network in PyTorch, in the venv of `make torch-env`: eager, "
                   "compiled, compiled with freezing) or onnxruntime (its ONNX export); "
                   "repeatable")
    p.add_argument("--run-seconds", type=float, default=0.5, help="length of one timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--latency-iters", type=int, default=50)
    p.add_argument("--trials", type=int, default=1,
                   help="run each configuration in this many fresh workers; the table shows "
                   "medians over them and, for p50, the range of the trials' p50s")
    p.add_argument("--json", help="write results, machine, versions and env here")
    p.add_argument("--plot", help="write a PNG of images/s against batch size here")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown only")
    p.add_argument("--doc", help="markdown file whose section --doc-section this run rewrites")
    p.add_argument("--doc-section", default="results",
                   help="the section between <!-- bench:NAME:begin/end --> markers")
    return p


def _doc_section(section):
    """The markers of a doc section and the pattern that finds it."""
    import re

    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    return begin, end, re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)


def replace_section(path, section, body):
    """Replace the text between ``<!-- bench:SECTION:begin -->`` and ``... :end -->`` of a
    markdown file with ``body``, atomically.

    Parameters
    ----------
    path : str
    section : str
    body : str
    """
    from inceptionzoo._io import atomic_path

    begin, end, pattern = _doc_section(section)
    with open(path) as f:
        text = f.read()
    if not pattern.search(text):
        raise ValueError(f"{path} has no section {begin} ... {end}")
    text = pattern.sub(lambda m: f"{begin}\n{body}\n{end}", text)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def _check_output(flag, path):
    """Refuse, before anything runs, an output file that cannot be written."""
    from inceptionzoo._io import ensure_writable_dir

    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path}: a folder; expected a file path")
    try:
        ensure_writable_dir(os.path.dirname(path))
    except OSError as err:
        raise ValueError(f"{flag} {path}: {err}") from None


def plan(args):
    """The configurations a command line asks for (unknown models or modes and bad batch
    sizes are refused here).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by :func:`build_parser`.

    Returns
    -------
    tuple of (list of str, list of str, list of int)
        Models, modes (the peers' after the others) and batch sizes, in the order
        :func:`run` measures them (model, then batch size, then mode: the contenders of one
        batch size run one after another).
    """
    import re

    from inceptionzoo import model_info
    from inceptionzoo.cli import _batch_sizes

    models = [model_info(m).name for m in args.models.split(",")]  # unknown names fail here
    if not re.fullmatch(r"cpu|gpu\d+", args.ctx):
        raise ValueError(f"--ctx must be cpu or gpuN; got {args.ctx!r}")
    known = dict.fromkeys(INFER_MODES + GPU_MODES + TRAIN_MODES
                          + [m for ms in PEER_MODES.values() for m in ms])
    if args.modes:
        modes = args.modes.split(",")
        bad = [m for m in modes if m not in known]
        if bad:
            raise ValueError(f"--modes: unknown mode(s) {', '.join(map(repr, bad))}; expected "
                             f"some of {', '.join(known)}")
    else:
        modes = (GPU_MODES if args.ctx.startswith("gpu") else INFER_MODES) + TRAIN_MODES
    for peer in args.peer or []:
        modes += PEER_MODES[peer]
    return models, modes, _batch_sizes(args.batch_sizes)


def check_args(args):
    """Check every argument before a worker starts; return what :func:`plan` returns.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`build_parser`.

    Returns
    -------
    (list of str, list of str, list of int)
    """
    import math

    models, modes, batches = plan(args)
    if not (math.isfinite(args.run_seconds) and args.run_seconds > 0):
        raise ValueError(f"--run-seconds must be a finite number > 0; got {args.run_seconds}")
    for flag in ("repeats", "latency_iters", "trials"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be an integer >= 1; got "
                             f"{getattr(args, flag)}")
    for flag in ("json", "plot"):
        if getattr(args, flag):
            _check_output(f"--{flag}", getattr(args, flag))
    if args.doc:
        begin, end, pattern = _doc_section(args.doc_section)
        try:
            with open(args.doc) as f:
                found = pattern.search(f.read())
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"--doc {args.doc}: cannot read it ({err})") from None
        if not found:
            raise ValueError(f"--doc {args.doc} has no section {begin} ... {end}")
        _check_output("--doc", args.doc)
    return models, modes, batches


def measured_with(command):
    """The line under a table: the command, the machine and the versions."""
    env = environment()
    return (f"Measured with `{command}` on {env['machine']['cores']} cores "
            f"({env['machine']['cpu'] or platform.machine()}), MXNet {env['versions']['mxnet']}"
            + "".join(f", {k} {env['versions'][k]}" for k in ("onnxruntime", "torch")
                      if k in env["versions"]) + ".")


def update_doc(path, section, rows, command):
    """Replace the marked section of a markdown file with the table, the command and the
    machine, atomically."""
    replace_section(path, section, f"{table(rows)}\n\n{measured_with(command)}")


def main(argv=None, prog="benchmarks/throughput.py"):
    """Run the harness from the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``). A first argument that is not an option is taken
        as ``--models``.
    prog : str
        Program name for help and the recorded command.

    Returns
    -------
    int
        0 when every configuration ran (or is unsupported here), 1 when one failed, 2 on bad
        input (one line on stderr).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # `throughput.py MODEL[,MODEL] ...`
        argv = ["--models", argv[0]] + argv[1:]
    args = build_parser(prog).parse_args(argv)
    try:
        return _main(args, argv, prog)
    except (ValueError, OSError) as err:  # unknown model, bad sizes, outputs: one line
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def _main(args, argv, prog):
    models, modes, batches = check_args(args)  # before any worker starts
    rows = run(models, modes, batches, ctx=args.ctx, run_seconds=args.run_seconds,
               repeats=args.repeats, latency_iters=args.latency_iters, trials=args.trials,
               log=(lambda *a: None) if args.markdown else
               (lambda s: print(s, file=sys.stderr, flush=True)))
    print(table(rows))
    if args.json:
        from inceptionzoo._io import write_json

        write_json(args.json, dict(environment(), recommended_mode=RECOMMENDED_MODE,
                                   command=" ".join([prog] + argv), results=rows))
    if args.plot:
        plot(rows, args.plot)
    if args.doc:
        update_doc(args.doc, args.doc_section, rows, " ".join([prog] + argv))
    return 0 if all("error" not in r or r["error"].startswith("unsupported") for r in rows) \
        else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))))
    else:
        sys.exit(main())
