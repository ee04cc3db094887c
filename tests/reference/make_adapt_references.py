"""References for ``in_chans`` on converted weights (run in the PyTorch side environment by
tests/test_model_api.py): torchvision's GoogLeNet with random weights as a checkpoint, and what
timm's own ``adapt_input_conv`` makes of its first convolution for 1 and 5 input channels.

Usage: python make_adapt_references.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torchvision
from timm.models._manipulate import adapt_input_conv


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    state = model.state_dict()
    torch.save(state, os.path.join(out, "model.pth"))
    weight = state["conv1.conv.weight"]
    for c in (1, 5):
        np.save(os.path.join(out, f"conv1_in{c}.npy"),
                adapt_input_conv(c, weight.clone()).numpy())


if __name__ == "__main__":
    main(sys.argv[1])
