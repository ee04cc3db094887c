"""Where the time goes on an ImageNet network: the zoo's recommended path in MXNet (oneDNN's own
time per primitive, ``DNNL_VERBOSE``, via benchmarks/onednn_profile.py) beside frozen
``torch.compile`` of the torchvision / timm network (``torch.profiler``, self CPU time per
operator, via ``torch_worker.py --profile`` in the PyTorch venv, a process without MXNet), per
call, grouped by kind of work, with the facts the comparison turns on: is batch norm folded into
the convolutions, how many layout reorders run per call, how many convolutions carry a fused
sum (Inception-ResNet's residual adds) or activation, how many threads each uses.

    python benchmarks/imagenet_profile.py --network inception_v3 --batch-sizes 1,16 --iters 5

Random weights (speed does not depend on them). Both profilers add overhead and measure
different things (oneDNN's primitive time leaves out MXNet's dispatch; the PyTorch profiler's
self time of its operators includes inductor's generated kernels): compare within a row, and
the totals only roughly with the throughput tables.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from imagenet_inception import NETWORKS  # noqa: E402
from onednn_profile import profile as onednn_profile  # noqa: E402
from throughput import TORCH_PYTHON  # noqa: E402

#: kind of work -> substrings of oneDNN primitive names / PyTorch operator names
KINDS = [
    ("convolution", ("convolution", "conv")),
    ("batch norm (not folded)", ("batch_normalization", "batch_norm")),
    ("layout reorder", ("reorder", "to_dense", "to_mkldnn", "_to_copy", "copy_")),
    ("pooling", ("pooling", "pool")),
    ("concat", ("concat", "cat")),
    ("elementwise / sum (not fused)", ("eltwise", "sum", "relu", "add", "mul")),
    ("fully connected", ("inner_product", "linear", "addmm", "mm")),
    ("inductor fused kernels", ("cpp_fused",)),
]


def kind_of(name):
    """The row of :data:`KINDS` an oneDNN primitive or a PyTorch operator belongs to.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
    """
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def _mxnet(network, batch, iters):
    zoo = NETWORKS[network][0]
    res = onednn_profile(zoo, batch, "recommended", iters)
    rows, facts = {}, {"fused sum": 0, "fused activation": 0, "threads": res["threads"]}
    for key, ms in res["per"].items():
        prim, post = key[0], key[5]
        calls = res["calls"][key]
        kind = kind_of(prim)
        n, t = rows.get(kind, (0.0, 0.0))
        rows[kind] = (n + calls, t + ms)
        if prim == "convolution":
            facts["fused sum"] += calls * ("sum" in post)
            facts["fused activation"] += calls * ("eltwise" in post)
    facts["graph"] = res["ops"]
    facts["onednn"] = res["onednn"]
    facts["conv impls"] = sorted({key[1] for key in res["per"] if key[0] == "convolution"})
    return rows, facts


def _torch(network, batch, iters):
    from inceptionzoo import model_info

    zoo, lib, name, _ = NETWORKS[network]
    size = model_info(zoo).input_shape[1]
    spec = {"source": lib, "name": name, "mode": "torch-compile-frozen", "batch": batch,
            "size": size, "profile": iters}
    p = subprocess.run([TORCH_PYTHON, os.path.join(HERE, "torch_worker.py"), "--profile",
                        json.dumps(spec)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError((p.stderr.strip().splitlines() or ["torch_worker.py failed"])[-1])
    res = json.loads(p.stdout.strip().splitlines()[-1])
    rows = {}
    for op in res["ops"]:
        if op["op"].startswith("## Call CompiledFxGraph"):
            # the compiled graph's self time: inductor's generated C++ kernels (pools, concats,
            # elementwise work) between the library calls it makes
            kind = "inductor fused kernels"
        elif op["op"].startswith(("CompiledFunction", "Torch-Compiled Region", "TorchDynamo")):
            continue  # wrappers: launch overhead
        else:
            kind = kind_of(op["op"])
        n, t = rows.get(kind, (0.0, 0.0))
        rows[kind] = (n + op["calls"], t + op["ms"])
    return rows, {"threads": res["threads"], "torch": res["torch"], "onednn": res["onednn"],
                  "top": res["ops"][:12]}


def table(network, batch, mx_rows, mx_facts, pt_rows, pt_facts):
    """The side-by-side markdown table and the facts under it.

    Parameters
    ----------
    network : str
    batch : int
    mx_rows, pt_rows : dict
        Kind -> (calls per call, ms per call).
    mx_facts, pt_facts : dict

    Returns
    -------
    str
    """
    lines = [f"### {network}, batch {batch}", "",
             "| per call | MXNet oneDNN (recommended): primitives | ms | frozen torch.compile: "
             "operators | ms |", "|---|---:|---:|---:|---:|"]
    for kind in [k for k, _ in KINDS] + ["other"]:
        a, b = mx_rows.get(kind, (0, 0.0)), pt_rows.get(kind, (0, 0.0))
        if a == (0, 0.0) and b == (0, 0.0):
            continue
        lines.append(f"| {kind} | {a[0]:.0f} | {a[1]:.2f} | {b[0]:.0f} | {b[1]:.2f} |")
    total = lambda rows: sum(t for _, t in rows.values())  # noqa: E731
    lines.append(f"| **total** | | **{total(mx_rows):.2f}** | | **{total(pt_rows):.2f}** |")
    lines += ["", f"- batch norm folded into the convolutions: MXNet "
              f"{'yes' if 'batch norm (not folded)' not in mx_rows else 'no'}, PyTorch "
              f"{'yes' if 'batch norm (not folded)' not in pt_rows else 'no'}",
              f"- layout reorders per call: MXNet {mx_rows.get('layout reorder', (0, 0))[0]:.0f}"
              f" ({mx_rows.get('layout reorder', (0, 0.0))[1]:.2f} ms), PyTorch "
              f"{pt_rows.get('layout reorder', (0, 0))[0]:.0f}",
              f"- MXNet convolutions with a fused sum: {mx_facts['fused sum']:.0f}, with a fused "
              f"activation: {mx_facts['fused activation']:.0f}",
              f"- threads: MXNet {mx_facts['threads']}, PyTorch {pt_facts['threads']} "
              f"(torch {pt_facts['torch']})",
              f"- oneDNN: MXNet's bundled {mx_facts['onednn']} (convolutions: "
              f"{', '.join(mx_facts['conv impls'])}), PyTorch's {pt_facts['onednn']}",
              f"- MXNet graph: {mx_facts['graph']}",
              "- PyTorch's largest operators: " + ", ".join(
                  f"{o['op']} {o['ms']:.2f} ms" for o in pt_facts["top"][:6])]
    return "\n".join(lines)


def main(argv=None):
    """Print the side-by-side profile for each batch size.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="inception_v3", choices=sorted(NETWORKS))
    p.add_argument("--batch-sizes", default="1,16")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--doc", help="markdown file whose section --doc-section this run rewrites")
    p.add_argument("--doc-section", default="imagenet-profile")
    args = p.parse_args(argv)
    parts = []
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        mx_rows, mx_facts = _mxnet(args.network, batch, args.iters)
        pt_rows, pt_facts = _torch(args.network, batch, args.iters)
        parts.append(table(args.network, batch, mx_rows, mx_facts, pt_rows, pt_facts))
        print(parts[-1] + "\n", flush=True)
    if args.doc:
        from throughput import measured_with, replace_section

        command = " ".join(["benchmarks/imagenet_profile.py"] + list(
            sys.argv[1:] if argv is None else argv))
        replace_section(args.doc, args.doc_section,
                        "\n\n".join(parts) + "\n\n" + measured_with(command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
