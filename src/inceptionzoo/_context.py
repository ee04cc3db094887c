"""Device contexts from their command-line spelling: one parser for every command."""
import re

import mxnet as mx

from .errors import InceptionZooError

__all__ = ["parse_ctx", "check_context"]


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
            raise InceptionZooError(
                f"bad context {part!r} in {spec!r}: expected cpu, cpuN or gpuN, "
                "comma-separated")
        out.append(check_context(mx.Context(m.group(1), int(m.group(2) or 0))))
    return out


def check_context(ctx):
    """Raise a clear ``InceptionZooError`` if ``ctx`` names a GPU that MXNet does not see.

    Parameters
    ----------
    ctx : mxnet.Context

    Returns
    -------
    mxnet.Context
        ``ctx`` itself.
    """
    if ctx.device_type == "gpu" and ctx.device_id >= mx.context.num_gpus():
        raise InceptionZooError(f"context gpu{ctx.device_id} requested, but MXNet sees "
                                f"{mx.context.num_gpus()} GPU(s) (a CPU build, or no driver?)")
    return ctx
