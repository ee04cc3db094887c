"""Writes src/inceptionzoo/pretrained/imagenet_classes.txt: the ImageNet-1k class list that
labels the predictions of 1000-class weights (``inceptionzoo.weights_spec.imagenet_classes``).

One line per class, in the standard index order (the sorted WordNet synset ids that every
torchvision, timm and gluoncv ImageNet-1k checkpoint uses): ``<synset>\t<name>``. Sources, both
in the PyTorch side environment (``make torch-env``):

- synset ids: timm ``timm/data/_info/imagenet_synsets.txt`` (checked against the WordNet lemmas
  of ``imagenet_synset_to_lemma.txt``);
- names: torchvision ``torchvision.models._meta._IMAGENET_CATEGORIES`` (the short names its
  weights' ``meta["categories"]`` give, e.g. ``tench``, ``goldfish``).

Run: ``.venv-torch/bin/python scripts/imagenet_classes.py``
"""
import os

import timm
from torchvision.models._meta import _IMAGENET_CATEGORIES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "src", "inceptionzoo", "pretrained", "imagenet_classes.txt")


def main():
    info = os.path.join(os.path.dirname(timm.__file__), "data", "_info")
    with open(os.path.join(info, "imagenet_synsets.txt")) as f:
        synsets = [line.strip() for line in f if line.strip()]
    with open(os.path.join(info, "imagenet_synset_to_lemma.txt")) as f:
        lemmas = dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)
    names = list(_IMAGENET_CATEGORIES)
    assert len(synsets) == len(names) == 1000 and synsets == sorted(synsets)
    assert all(s in lemmas for s in synsets)
    assert all("\t" not in n and "\n" not in n for n in names)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        for s, n in zip(synsets, names):
            f.write(f"{s}\t{n}\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {len(names)} classes, {names[0]!r} ... {names[-1]!r}")


if __name__ == "__main__":
    main()
