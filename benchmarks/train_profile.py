"""Where a training step of Inception-v3 goes, MXNet beside PyTorch eager: the seconds of one step
(forward, backward, SGD update; median of the timed steps after two warm-up steps) and the
milliseconds per step of each kind of operator (MXNet's profiler, ``aggregate_stats``, with
operator bulking off so that each operator is timed on its own; ``torch.profiler`` self CPU
time), each in its own process (MXNet and torch never share one):

    python benchmarks/train_profile.py --batch 8 --steps 3 --rounds 2

MXNet runs the step ``benchmarks/throughput.py``'s ``train-hybrid`` mode times
(``throughput.mx_train_step``: the zoo's ``inception_v3``, ``hybridize(static_alloc=True,
static_shape=True)``, ``gluon.Trainer`` SGD lr 0.01, ``SoftmaxCrossEntropyLoss``) twice:
importing inceptionzoo first, as the library runs it
(one OpenMP thread per physical core, ``inceptionzoo._openmp``), and with MXNet's own thread
count (``MXNET_OMP_MAX_THREADS`` = half the logical CPUs, what MXNet 1.9.1 picks on x86 without
a setting). PyTorch runs torchvision's ``inception_v3`` (no auxiliary head) in eager mode with
``torch.optim.SGD``, as ``torch_worker.py``'s ``torch-train-eager``. Random weights and inputs
(speed does not depend on them). The configurations alternate ``--rounds`` times.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
TORCH_PYTHON = os.environ.get("INCEPTIONZOO_TORCH_PYTHON",
                              os.path.join(HERE, "..", ".venv-torch", "bin", "python"))

#: kind of work -> (MXNet operator names, PyTorch operator names)
KINDS = [
    ("convolution forward", ("Convolution",), ("aten::mkldnn_convolution",)),
    ("convolution backward (data + weights)", ("_backward_Convolution",),
     ("aten::convolution_backward",)),
    ("batch norm forward (training)", ("BatchNorm",), ("aten::native_batch_norm",)),
    ("batch norm backward", ("_backward_BatchNorm",), ("aten::native_batch_norm_backward",)),
    ("ReLU forward + backward", ("Activation", "_backward_Activation"),
     ("aten::relu_", "aten::clamp_min_", "aten::threshold_backward")),
    ("pooling forward", ("Pooling",), ("aten::max_pool2d_with_indices", "aten::avg_pool2d",
                                       "aten::adaptive_avg_pool2d", "aten::mean")),
    ("pooling backward", ("_backward_Pooling",), ("aten::max_pool2d_with_indices_backward",
                                                  "aten::avg_pool2d_backward")),
    ("concat forward + backward", ("Concat", "_backward_Concat"), ("aten::cat",)),
    ("gradient sums, zero-fill", ("add_n", "_zeros_without_dtype", "ElementWiseSum"),
     ("aten::add_", "aten::fill_", "aten::zero_")),
    ("optimizer update", ("multi_sgd_update", "sgd_update", "multi_sgd_mom_update"),
     ("optimizer",)),
]


def kind_of(name, framework):
    """The row of :data:`KINDS` an operator belongs to, or ``'other'``.

    Parameters
    ----------
    name : str
        MXNet operator name or PyTorch profiler key.
    framework : str
        ``'mxnet'`` or ``'torch'``.

    Returns
    -------
    str
    """
    col = 1 if framework == "mxnet" else 2
    for row in KINDS:
        if name in row[col]:
            return row[0]
    return "other"


def _mxnet_child(batch, steps, profile):
    import inceptionzoo  # noqa: F401  (first: it sets MXNet's OpenMP threads, as for a user)
    import mxnet as mx
    import numpy as np
    from inceptionzoo.runtimes import sample_input
    from throughput import mx_train_step

    net = inceptionzoo.get_model("inception_v3")
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.array(sample_input(batch, (3, 299, 299), "float32"))
    y = mx.nd.array(np.arange(batch) % net.info.classes)
    call = mx_train_step(net, x, y)  # the step of throughput.py's train-hybrid mode

    def step():
        call()
        mx.nd.waitall()

    out = {"threads": os.environ.get("OMP_NUM_THREADS") or os.environ.get(
        "MXNET_OMP_MAX_THREADS"), "seconds": _timed(step, steps)}
    if profile:
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.devnull)
        mx.profiler.set_state("run")
        for _ in range(profile):
            step()
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(format="json"))["Time"]["operator"]
        out["ops"] = {name: s["Total"] / profile for name, s in stats.items()}
    return out


def _timed(step, steps):
    for _ in range(2):
        step()
    seconds = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    return seconds


def _torch_child(batch, steps, profile):
    import torch
    import torchvision
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, aux_logits=False,
                                            transform_input=False, init_weights=False).train()
    x = torch.rand(batch, 3, 299, 299)
    y = torch.arange(batch) % 1000
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def forward_backward():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    def step():
        forward_backward()
        opt.step()

    out = {"threads": str(torch.get_num_threads()), "torch": torch.__version__,
           "seconds": _timed(step, steps)}
    if profile:
        ops = {}
        for _ in range(profile):
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                forward_backward()
            for e in prof.key_averages():
                ops[e.key] = ops.get(e.key, 0.0) + e.self_cpu_time_total / 1e3 / profile
            t0 = time.perf_counter()  # the update on its own: eager CPU ops are synchronous
            opt.step()
            ops["optimizer"] = ops.get("optimizer", 0.0) + \
                (time.perf_counter() - t0) * 1e3 / profile
        out["ops"] = ops
    out["mxnet_imported"] = "mxnet" in sys.modules  # must stay False
    return out


def _run(framework, batch, steps, profile, env=None):
    python = TORCH_PYTHON if framework == "torch" else sys.executable
    cmd = [python, os.path.abspath(__file__), "--child", framework, "--batch", str(batch),
           "--steps", str(steps), "--profile", str(profile)]
    env = dict(os.environ, **(env or {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [
        os.path.join(HERE, "..", "src"), os.environ.get("PYTHONPATH")]))
    if framework == "torch":
        env.pop("PYTHONPATH")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"{framework} child failed: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _grouped(ops, framework):
    rows = {}
    for name, ms in ops.items():
        if framework == "torch" and name in ("aten::convolution", "aten::_convolution"):
            continue  # parents of mkldnn_convolution: their self time is the dispatch
        kind = kind_of(name, framework)
        rows[kind] = rows.get(kind, 0.0) + ms
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed steps per process")
    p.add_argument("--rounds", type=int, default=1, help="alternations of the configurations")
    p.add_argument("--profile-steps", type=int, default=1, help="profiled steps (0: none)")
    p.add_argument("--child", choices=["mxnet", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--profile", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child = _mxnet_child if args.child == "mxnet" else _torch_child
        print(json.dumps(child(args.batch, args.steps, args.profile)))
        return 0
    mxnet_own = str(max((os.cpu_count() or 2) // 2, 1))
    configs = [("MXNet, inceptionzoo's threads", "mxnet", None),
               (f"MXNet, MXNet's own threads ({mxnet_own})", "mxnet",
                {"MXNET_OMP_MAX_THREADS": mxnet_own}),
               ("PyTorch eager", "torch", None)]
    seconds = {name: [] for name, _, _ in configs}
    threads = {}
    for _ in range(args.rounds):
        for name, framework, env in configs:
            res = _run(framework, args.batch, args.steps, 0, env)
            seconds[name] += res["seconds"]
            threads[name] = res["threads"]
    print(f"Inception-v3 training step, batch {args.batch}, {os.cpu_count()} CPUs "
          f"(median of {args.steps} steps x {args.rounds} rounds; min..max)\n")
    print("| configuration | OpenMP threads | s / step | min..max |")
    print("|---|---:|---:|---|")
    for name, _, _ in configs:
        s = seconds[name]
        print(f"| {name} | {threads[name]} | {statistics.median(s):.2f} | "
              f"{min(s):.2f}..{max(s):.2f} |")
    if not args.profile_steps:
        return 0
    mx_env = {"MXNET_EXEC_BULK_EXEC_TRAIN": "0"}  # one profiler row per operator
    prof = {"mxnet": _grouped(_run("mxnet", args.batch, 1, args.profile_steps, mx_env)["ops"],
                              "mxnet"),
            "own": _grouped(_run("mxnet", args.batch, 1, args.profile_steps,
                                 dict(mx_env, MXNET_OMP_MAX_THREADS=mxnet_own))["ops"], "mxnet"),
            "torch": _grouped(_run("torch", args.batch, 1, args.profile_steps)["ops"], "torch")}
    print(f"\nms per step by kind of work (profiled steps: {args.profile_steps}; MXNet with "
          "operator bulking off)\n")
    print(f"| kind | MXNet, inceptionzoo's threads | MXNet, own threads ({mxnet_own}) | "
          "PyTorch eager |")
    print("|---|---:|---:|---:|")
    kinds = [k[0] for k in KINDS] + ["other"]
    for kind in kinds + ["total"]:
        vals = [sum(prof[f].values()) if kind == "total" else prof[f].get(kind, 0.0)
                for f in ("mxnet", "own", "torch")]
        print(f"| {kind} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
