"""Would bfloat16 close MXNet's gap to frozen torch.compile? One network (random weights), one
process, three contenders timed in alternating rounds (medians): the recommended float32 path
(:class:`inceptionzoo.graph_tuning.TunedGraph`), the plain hybridized float32 network, and the
same network converted to bfloat16 by MXNet's AMP (``mxnet.contrib.amp.convert_hybrid_block``;
oneDNN runs bfloat16 on CPUs with ``avx512_bf16``), with how far its logits move:

    .venv/bin/python benchmarks/bfloat16_probe.py --network inception_v3 --batch 1

bfloat16 keeps 8 bits of mantissa: the converted network computes another function (logits
within about 1% of their scale on a random Inception-v3), so it is a probe, not a runtime of
the zoo.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src"))
from inceptionzoo import get_model  # noqa: E402  (before MXNet: its threads, inceptionzoo._openmp)
from inceptionzoo.graph_tuning import TunedGraph  # noqa: E402
from inceptionzoo.runtimes import time_alternating  # noqa: E402

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402


def probe(network, batch, budget=20.0):
    """Median ms per call of each contender, and the bfloat16 network's logit difference.

    Parameters
    ----------
    network : str
        A zoo network.
    batch : int
    budget : float
        Rough seconds of alternating timing.

    Returns
    -------
    dict
    """
    from mxnet.contrib import amp

    net = get_model(network)
    net.initialize(mx.init.Xavier(magnitude=2))
    x = mx.nd.random.uniform(shape=(batch,) + tuple(net.info.input_shape))
    net.hybridize(static_alloc=True, static_shape=True)
    ref = net(x).asnumpy()
    recommended = TunedGraph.from_block(net, merge=True)
    recommended.warmup([batch])
    half = amp.convert_hybrid_block(net, target_dtype="bfloat16", ctx=mx.cpu())
    half.hybridize(static_alloc=True, static_shape=True)
    got = half(x).astype("float32").asnumpy()
    runners = {"recommended float32": lambda v: recommended(v).wait_to_read(),
               "hybridized float32": lambda v: net(v).wait_to_read(),
               "hybridized bfloat16 (AMP)": lambda v: half(v).wait_to_read()}
    for run in runners.values():
        for _ in range(2):
            run(x)
    ms = {k: v * 1e3 for k, v in time_alternating(runners, x, budget=budget).items()}
    return {"ms": ms, "bf16_max_diff_of_scale": float(np.abs(got - ref).max() /
                                                      np.abs(ref).max()),
            "bf16_top1_same": float((got.argmax(1) == ref.argmax(1)).mean())}


def main(argv=None):
    """Print the probe's numbers.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
    """
    p = argparse.ArgumentParser(prog="benchmarks/bfloat16_probe.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--network", default="inception_v3")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--budget", type=float, default=20.0, help="seconds of alternating timing")
    args = p.parse_args(argv)
    res = probe(args.network, args.batch, args.budget)
    for name, ms in res["ms"].items():
        print(f"{args.network} b{args.batch} {name}: {ms:.1f} ms per call")
    print(f"bfloat16 logits: max |difference| {res['bf16_max_diff_of_scale']:.4f} of the "
          f"largest |logit|; top-1 equal on {res['bf16_top1_same']:.0%} of the batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
