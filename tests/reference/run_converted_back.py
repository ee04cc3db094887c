"""Logits of source networks built and loaded by given lines of Python, for the way back
(``tests/test_convert_back.py``). Runs in the PyTorch side environment::

    .venv-torch/bin/python tests/reference/run_converted_back.py OUT_DIR JOBS.json

``JOBS.json`` is a list of ``{"code", "cwd", "input", "output"}``: ``code`` (what
``convert_back`` returns as ``load``, or a block of docs/weights.md) runs in ``cwd`` with
torch, torchvision, timm and safetensors.torch imported and must leave the network in
``model``; its logits in eval mode on ``input`` (an ``.npy`` batch, already normalised the way
the zoo network takes it) go to ``output``.
"""
import json
import os
import sys

import numpy as np
import safetensors.torch
import timm
import torch
import torchvision


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    with open(argv[1]) as f:
        jobs = json.load(f)
    torch.set_num_threads(2)
    for job in jobs:
        os.chdir(job["cwd"])
        scope = {"torch": torch, "torchvision": torchvision, "timm": timm,
                 "safetensors": safetensors}
        exec(job["code"], scope)  # noqa: S102 (the test's own lines)
        model = scope["model"].eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(np.load(job["input"])))
        np.save(job["output"], logits.numpy())
        print(job["output"], tuple(logits.shape))


if __name__ == "__main__":
    main(sys.argv[1:])
