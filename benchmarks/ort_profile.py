"""Where the time goes inside ONNX Runtime: the zoo network's own ONNX export under ONNX
Runtime's profiler (every graph optimisation, as the throughput peer runs it), kernel time per
node per call; the counterpart of benchmarks/onednn_profile.py (docs/benchmarks.md).

    python benchmarks/ort_profile.py --model inception_mnist --batch 32

Needs the onnxruntime extra (installed by `make setup`); ONNX Runtime runs in a process that
never imports MXNet. Node names are ONNX
Runtime's after its rewrites (``_nchwc``: its blocked-layout convolutions; ``Reorder*``: its
layout conversions).
"""
import argparse

from throughput import _ort_worker


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args()
    res = _ort_worker({"model": args.model, "batch": args.batch, "profile": args.iters})
    nodes = res["nodes"]
    print(f"{args.model}, batch {args.batch}, one ONNX Runtime {res['onnxruntime']} call: "
          f"{sum(n['ms'] for n in nodes):.3f} ms in kernels ({len(nodes)} nodes, "
          f"{args.iters} calls)\n")
    print("| ms / call | op | node |")
    print("|---:|---|---|")
    for n in nodes[:args.top]:
        print(f"| {n['ms']:.3f} | {n['op']} | {n['node']} |")


if __name__ == "__main__":
    main()
