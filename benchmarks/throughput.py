"""Hybridized against imperative throughput of the zoo's networks (and a PyTorch peer).

    python benchmarks/throughput.py --models inception_mnist --batch-sizes 1,32,256 --ctx cpu \
        --json out.json --plot out.png

The harness lives in inceptionzoo.bench (also `inceptionzoo bench MODEL`); see its docstring for
the method.
"""
import sys

from inceptionzoo.bench import main

if __name__ == "__main__":
    sys.exit(main(prog="benchmarks/throughput.py"))
