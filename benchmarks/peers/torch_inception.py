"""The zoo's networks in PyTorch (optional peer for benchmarks; needs ``torch``).

:func:`from_gluon` builds the PyTorch twin of a registered Gluon model and copies its weights,
so a benchmark compares the same function in both frameworks (checked by the tests).
"""
import numpy as np
import torch
from torch import nn

from inceptionzoo.blocks import NaiveInception
from inceptionzoo.models.googlenet import GoogLeNet
from inceptionzoo.models.inception_mnist import InceptionMNIST


def _conv(gluon_conv):
    w = gluon_conv.weight.data().asnumpy()
    out_c, in_c, kh, kw = w.shape
    conv = nn.Conv2d(in_c, out_c, (kh, kw), stride=gluon_conv._kwargs["stride"],
                     padding=gluon_conv._kwargs["pad"])
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(w))
    conv.bias.data = torch.from_numpy(gluon_conv.bias.data().asnumpy())
    relu = gluon_conv.act is not None
    return nn.Sequential(conv, nn.ReLU()) if relu else conv


def _pool(gluon_pool):
    k = gluon_pool._kwargs
    return nn.MaxPool2d(k["kernel"], k["stride"], k["pad"],
                        ceil_mode=k["pooling_convention"] == "full")


class TorchBlock(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.naive = isinstance(block, NaiveInception)
        self.b1, self.b3, self.b5 = _conv(block.b1), _conv(block.b3), _conv(block.b5)
        self.pool = _pool(block.pool)
        if not self.naive:
            self.b3red, self.b5red, self.proj = (_conv(block.b3red), _conv(block.b5red),
                                                 _conv(block.proj))

    def forward(self, x):
        if self.naive:
            return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)
        return torch.cat([self.b1(x), self.b3(self.b3red(x)), self.b5(self.b5red(x)),
                          self.proj(self.pool(x))], 1)


class TorchNet(nn.Module):
    """A sequence of stages mirroring a Gluon model of the zoo."""

    def __init__(self, stages, head):
        super().__init__()
        self.stages = nn.Sequential(*stages)
        self.head = head

    def forward(self, x):
        return self.head(torch.flatten(self.stages(x), 1))


def _dense(gluon_dense):
    w = gluon_dense.weight.data().asnumpy()
    fc = nn.Linear(w.shape[1], w.shape[0])
    fc.weight.data = torch.from_numpy(w)
    fc.bias.data = torch.from_numpy(gluon_dense.bias.data().asnumpy())
    return fc


def from_gluon(net):
    """PyTorch twin of an initialised zoo network (batch-norm variants are not supported)."""
    if isinstance(net, InceptionMNIST):
        stages = [_conv(net.stem), TorchBlock(net.block1), _pool(net.pool1),
                  TorchBlock(net.block2), _pool(net.pool2), TorchBlock(net.block3)]
        return TorchNet(stages, _dense(net.output)).eval()
    if isinstance(net, GoogLeNet) and not net.aux_logits:
        stages = [_conv(net.conv1), _pool(net.pool1), _conv(net.conv2red), _conv(net.conv2),
                  _pool(net.pool2), TorchBlock(net.inception3a), TorchBlock(net.inception3b),
                  _pool(net.pool3)]
        stages += [TorchBlock(getattr(net, f"inception4{c}")) for c in "abcde"]
        stages += [_pool(net.pool4), TorchBlock(net.inception5a), TorchBlock(net.inception5b),
                   nn.AdaptiveAvgPool2d(1)]
        return TorchNet(stages, _dense(net.output)).eval()
    raise TypeError(f"no PyTorch twin for {type(net).__name__}")

