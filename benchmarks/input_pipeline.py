"""Input pipelines compared on the same images: an image folder (PIL decoding, mx.image
augmentation, a thread pool) against RecordIO (mx.io.ImageRecordIter: MXNet's C++ decoding
threads and augmentation). Prints images/s decoded, augmented and batched, as a markdown table.

    python benchmarks/input_pipeline.py --mnist-dir ../shared/data/mnist --images 2000 \
        --model googlenet --batch-size 64 --batches 20 --threads 2

The images are real MNIST training digits written as PNG files (one folder per digit) and
packed into train.rec/.idx by MXNet's im2rec (pass-through: both pipelines decode the same
PNG bytes), or your own folder with --folder. ``--model`` picks the transform: googlenet
(RGB 224x224, random resized crop + flip) or inception_mnist (grey 28x28, no augmentation).
"""
import argparse
import datetime
import os
import platform
import tempfile
import time

import numpy as np

from inceptionzoo._text import text_table
from inceptionzoo.mnist import load_mnist
from inceptionzoo.datasets import FolderSource, RecordSource
from inceptionzoo.packing import write_recordio
from _sample_data import write_image_folder
from inceptionzoo import get_model


def write_digits(root, mnist_dir, n):
    """The first ``n`` real MNIST training digits as PNG files under ``root/<digit>/``."""
    x, y = load_mnist(mnist_dir, train=True)
    return write_image_folder(root, x[:n], y[:n])


def measure(source, batch_size, batches, seed=0):
    """Images/s over ``batches`` batches after one warm-up batch."""
    it = source.epoch(batch_size, np.random.RandomState(seed))
    next(it).data.wait_to_read()
    n, t0 = 0, time.perf_counter()
    for _, b in zip(range(batches), it):
        b.data.wait_to_read()
        n += b.data.shape[0]
    return n / (time.perf_counter() - t0), n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mnist-dir", help="write this many MNIST digits as PNG files (--images)")
    g.add_argument("--folder", help="your own image folder (one subfolder per class)")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--model", default="googlenet")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--threads", type=int, default=2, help="decoding threads of both")
    p.add_argument("--work-dir", help="where the PNG and .rec files go (default: a temp dir)")
    args = p.parse_args(argv)
    for name in ("images", "batch_size", "batches", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    info = get_model(args.model).info
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or tmp
        folder = args.folder or write_digits(os.path.join(work, "train"), args.mnist_dir,
                                             args.images)
        t0 = time.perf_counter()
        rec = write_recordio(folder, os.path.join(work, "packed"), threads=args.threads)
        pack_s = time.perf_counter() - t0
        rows = []
        for name, src in (("image folder (PIL + mx.image, threads)",
                           FolderSource(folder, info, train=True, threads=args.threads)),
                          ("RecordIO (ImageRecordIter)",
                           RecordSource(rec, info, train=True, threads=args.threads))):
            rate, n = measure(src, args.batch_size, args.batches)
            rows.append((name, len(src), n, f"{rate:,.0f}"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model} training transform, input {tuple(info.input_shape)}, batch "
          f"{args.batch_size}, {args.threads} decoding threads; {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}, "
          f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC\n")
    print(text_table(["pipeline", "images in set", "images timed", "images/s"], rows,
                     right={1, 2, 3}))
    print(f"\n(im2rec packed the folder in {pack_s:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
