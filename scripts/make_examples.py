"""Write the example digits that ship with the package: the first MNIST test image of each
class, as 28x28 grayscale PNG files, named digit-<label>-test<index>.png.

    python scripts/make_examples.py --data-dir ../shared/data/mnist
"""
import argparse
import os

import numpy as np
from PIL import Image

from inceptionzoo.mnist import load_mnist


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", default=os.path.join("src", "inceptionzoo", "examples"))
    args = p.parse_args()
    images, labels = load_mnist(args.data_dir, train=False)
    os.makedirs(args.out, exist_ok=True)
    for digit in range(10):
        idx = int(np.argmax(labels == digit))
        Image.fromarray(images[idx]).save(os.path.join(args.out,
                                                       f"digit-{digit}-test{idx}.png"))
        print(f"digit {digit}: test image {idx}")


if __name__ == "__main__":
    main()
