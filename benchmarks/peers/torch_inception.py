"""The zoo's networks in PyTorch (the benchmarks' PyTorch peer; runs in the PyTorch venv of
``make torch-env`` and imports neither MXNet nor inceptionzoo).

:func:`build` makes the PyTorch twin of a zoo network from the description and weights that
:func:`peers.gluon_twin.describe` wrote on the MXNet side, so that a benchmark compares the same
function in both frameworks (the harness checks the logits before timing).
"""
import torch
from torch import nn


def _conv(d, arrays):
    w = torch.from_numpy(arrays[d["conv"] + "_weight"])
    out_c, in_c, kh, kw = w.shape
    conv = nn.Conv2d(in_c, out_c, (kh, kw), stride=tuple(d["stride"]), padding=tuple(d["pad"]))
    conv.weight.data, conv.bias.data = w, torch.from_numpy(arrays[d["conv"] + "_bias"])
    return nn.Sequential(conv, nn.ReLU()) if d["relu"] else conv


def _pool(d):
    return nn.MaxPool2d(tuple(d["pool"]), tuple(d["stride"]), tuple(d["pad"]), ceil_mode=d["ceil"])


class TorchBlock(nn.Module):
    """An Inception block (naive or with reductions) from its description."""

    def __init__(self, d, arrays):
        super().__init__()
        self.naive = d["naive"]
        self.b1, self.b3, self.b5 = (_conv(d[n], arrays) for n in ("b1", "b3", "b5"))
        self.pool = _pool(d["pool"])
        if not self.naive:
            self.b3red, self.b5red, self.proj = (_conv(d[n], arrays)
                                                 for n in ("b3red", "b5red", "proj"))

    def forward(self, x):
        if self.naive:
            return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)
        return torch.cat([self.b1(x), self.b3(self.b3red(x)), self.b5(self.b5red(x)),
                          self.proj(self.pool(x))], 1)


class TorchNet(nn.Module):
    """A sequence of stages and a dense head."""

    def __init__(self, stages, head):
        super().__init__()
        self.stages = nn.Sequential(*stages)
        self.head = head

    def forward(self, x):
        return self.head(torch.flatten(self.stages(x), 1))


def _stage(d, arrays):
    if "conv" in d:
        return _conv(d, arrays)
    if "pool" in d:
        return _pool(d)
    if "block" in d:
        return TorchBlock(d["block"], arrays)
    return nn.AdaptiveAvgPool2d(1)


def build(layers, arrays):
    """The PyTorch twin, in eval mode.

    Parameters
    ----------
    layers : dict
        From ``describe`` (JSON).
    arrays : mapping of str to numpy.ndarray
        Its weights (an ``.npz`` file).

    Returns
    -------
    torch.nn.Module
    """
    arrays = {k: arrays[k] for k in arrays}
    w = torch.from_numpy(arrays["head_weight"])
    head = nn.Linear(w.shape[1], w.shape[0])
    head.weight.data, head.bias.data = w, torch.from_numpy(arrays["head_bias"])
    return TorchNet([_stage(d, arrays) for d in layers["stages"]], head).eval()
