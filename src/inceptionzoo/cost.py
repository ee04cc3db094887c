"""Counting parameters (and, in time, multiply-accumulates) of any HybridBlock."""
import numpy as np

__all__ = ["num_params"]


def num_params(block):
    """Number of learnable scalar parameters of ``block`` (all shapes must be known).

    Batch-norm running statistics (``grad_req='null'``) are state, not parameters, and are not
    counted, as in timm and torchvision.
    """
    total = 0
    for p in block.collect_params().values():
        if p.grad_req == "null":
            continue
        if p.shape is None or any(d == 0 for d in p.shape):
            raise ValueError(f"parameter {p.name} has an unknown shape {p.shape}; give the "
                             "layers explicit in_channels or run one forward pass first")
        total += int(np.prod(p.shape))
    return total
