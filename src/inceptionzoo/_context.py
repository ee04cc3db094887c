"""Device contexts from their command-line spelling: one parser for every command."""
import re

import mxnet as mx

__all__ = ["parse_ctx"]


def parse_ctx(spec):
    """``'cpu'``, ``'cpu0,cpu1'``, ``'gpu0,gpu1'`` -> list of MXNet contexts."""
    if isinstance(spec, mx.Context):
        return [spec]
    if isinstance(spec, (list, tuple)):
        return [c if isinstance(c, mx.Context) else parse_ctx(c)[0] for c in spec]
    out = []
    for part in str(spec).split(","):
        m = re.fullmatch(r"\s*(cpu|gpu)(\d*)\s*", part)
        if not m:
            raise ValueError(f"bad context {part!r} in {spec!r}: expected cpu, cpuN or gpuN, "
                             "comma-separated")
        kind, idx = m.group(1), int(m.group(2) or 0)
        if kind == "gpu" and idx >= mx.context.num_gpus():
            raise ValueError(f"context gpu{idx} requested, but MXNet sees "
                             f"{mx.context.num_gpus()} GPU(s) (a CPU build, or no driver?)")
        out.append(mx.Context(kind, idx))
    return out
