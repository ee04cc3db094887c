"""Where the time goes inside oneDNN: run a model under DNNL_VERBOSE=1 and sum the execution
time of each primitive per call (the profiles quoted in docs/benchmarks.md and docs/training.md).

    python benchmarks/onednn_profile.py --model inception_mnist --batch 1               # inference, static
    python benchmarks/onednn_profile.py --model inception_mnist --batch 1 --mode recommended
    python benchmarks/onednn_profile.py --model inception_mnist --batch 100 --train     # SGD step

Times are oneDNN's own (ms); MXNet's operator dispatch around them is not included.
"""
import argparse
import collections
import os
import subprocess
import sys

CHILD = r"""
import os, sys
from inceptionzoo import get_model  # first, as a user of the library: MXNet's OpenMP threads
import mxnet as mx, numpy as np
env = os.environ
print('THREADS', env.get('OMP_NUM_THREADS') or env.get('MXNET_OMP_MAX_THREADS'), flush=True)
from throughput import mx_train_step, prepare_inference
model, batch, mode, train, iters = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == '1', int(sys.argv[5])
mx.random.seed(0)
net = get_model(model)
net.initialize(mx.init.Xavier())
x = mx.nd.random.uniform(shape=(batch,) + tuple(net.info.input_shape))
if train:
    net.hybridize(static_alloc=True, static_shape=True)
    call = mx_train_step(net, x, mx.nd.array(np.arange(batch) % net.info.classes))
else:
    f = prepare_inference(net, mode, x)
    call = lambda: f(x)
for _ in range(5):
    call().wait_to_read()
if not train and mode in ('static', 'recommended'):
    import json
    sym = f.symbols[f.choice[batch]] if mode == 'recommended' else net(mx.sym.var('data'))
    ops = [n['op'] for n in json.loads(sym.tojson())['nodes'] if n['op'] != 'null']
    graph = f' ({f.choice[batch]})' if mode == 'recommended' else ''
    print(f'OPS {len(ops)} operators in the graph{graph}: ' + ', '.join(
        f'{ops.count(o)} {o}' for o in sorted(set(ops), key=ops.index)), flush=True)
mx.nd.waitall()
print('MARK', flush=True)
for _ in range(iters):
    call().wait_to_read()
mx.nd.waitall()
"""


def profile(model, batch, mode="static", iters=10, train=False):
    """Run ``model`` under ``DNNL_VERBOSE=1`` in a fresh process and sum oneDNN's time.

    Parameters
    ----------
    model : str
        A zoo network (random weights).
    batch : int
    mode : str
        Inference mode of benchmarks/throughput.py.
    iters : int
        Profiled calls (after five unprofiled ones).
    train : bool
        Profile a hybridized SGD step instead.

    Returns
    -------
    dict
        ``per``: (primitive, implementation, propagation, layouts, problem, post-ops) -> ms per
        call; ``calls``: the same key -> executions per call; ``ops``: the graph's operator
        line (or ""); ``lines``: verbose lines read; ``onednn``: the version oneDNN reports
        (``dnnl_verbose,info,oneDNN v2.4.4 ...``: the one bundled in libmxnet); ``threads``:
        MXNet's OpenMP thread setting in the child (``OMP_NUM_THREADS`` or the
        ``MXNET_OMP_MAX_THREADS`` inceptionzoo sets).
    """
    here = os.path.dirname(os.path.abspath(__file__))  # the child imports throughput from here
    env = dict(os.environ, DNNL_VERBOSE="1", MXNET_STORAGE_FALLBACK_LOG_VERBOSE="0",
               PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", CHILD, model, str(batch), mode,
                          "1" if train else "0", str(iters)],
                         capture_output=True, text=True, env=env, check=True).stdout
    ops = [line[4:] for line in out.splitlines() if line.startswith("OPS ")]
    threads = [line[8:] for line in out.splitlines() if line.startswith("THREADS ")]
    lines = out[out.index("MARK"):].splitlines()
    per, calls = collections.defaultdict(float), collections.defaultdict(float)
    for line in lines:
        f = line.split(",")
        if not line.startswith("dnnl_verbose,exec") or len(f) < 6:
            continue
        # primitive, implementation, propagation, memory layouts, problem, post-ops
        layouts = " ".join(t.split("::")[1].split(":")[1] for t in f[6].split() if "::" in t
                           and t.split("::")[1].startswith("blocked"))
        post = f[7].split("post-ops:", 1)[1].split(";")[0].strip(" '") if len(f) > 7 and \
            "post-ops:" in f[7] else ""
        key = (f[3], f[4], f[5], layouts, f[-2], post)
        per[key] += float(f[-1]) / iters
        calls[key] += 1 / iters
    version = [line.split("oneDNN", 1)[1].split("(")[0].strip() for line in out.splitlines()
               if line.startswith("dnnl_verbose,info,oneDNN")]
    return {"per": dict(per), "calls": dict(calls), "ops": ops[0] if ops else "",
            "lines": len(lines), "onednn": version[0] if version else "unknown",
            "threads": threads[0] if threads else ""}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--mode", default="static", help="inference mode (see benchmarks/throughput.py)")
    p.add_argument("--train", action="store_true", help="profile a hybridized SGD step")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    res = profile(args.model, args.batch, args.mode, args.iters, args.train)
    per = res["per"]
    total = sum(per.values())
    what = "training step" if args.train else f"{args.mode} inference call"
    print(f"{args.model}, batch {args.batch}, one {what}: {total:.3f} ms in oneDNN "
          f"({res['lines']} lines over {args.iters} calls)\n")
    if res["ops"]:
        print(res["ops"] + "\n")
    print("| ms / call | primitive | implementation | propagation | layouts | problem |")
    print("|---:|---|---|---|---|---|")
    for key, ms in sorted(per.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"| {ms:.3f} | " + " | ".join(key[:5]) + " |")


if __name__ == "__main__":
    main()
