#!/usr/bin/env bash
# Regenerate every table of docs/benchmarks.md that rests on a command, on an idle machine
# (nothing else running: the tables compare processes run minutes apart). Each command rewrites
# its section of docs/benchmarks.md between <!-- bench:NAME:begin/end --> markers and writes its
# rows to runs/; the outputs of the MXNet-only tables quoted by hand (environment sweep, serving
# options, MNIST profiles) go to runs/*.txt for pasting.
#
#   benchmarks/rerun_docs.sh core    # inception_mnist vs every peer, GoogLeNet + Inception-v3,
#                                    # Inception-v3 training, Inception-v3 profile
#   benchmarks/rerun_docs.sh big     # Inception-v4 and Inception-ResNet-v2
#   benchmarks/rerun_docs.sh serving # the serving graph against its best peers, every
#                                    # network, 3 trials alternating (the serving targets)
#   benchmarks/rerun_docs.sh mxnet   # MXNet-only tables (MNIST table, env sweep, serving
#                                    # options, MNIST profiles)
#   benchmarks/rerun_docs.sh all     # all three (default)
#
# Estimated wall time on the idle 2-core machine (from per-call speeds of earlier runs, not
# measured end to end): core about 25 minutes, big about 20, mxnet about 13; torch.compile
# compiles each network once per batch size (about 1 minute for Inception-v3, 2 to 3 minutes
# for Inception-v4 and Inception-ResNet-v2) and dominates big.
set -euo pipefail
cd "$(dirname "$0")/.."
export MXNET_STORAGE_FALLBACK_LOG_VERBOSE=0
PY=${PY:-.venv/bin/python}
DOC=docs/benchmarks.md
PART=${1:-all}
mkdir -p runs
t0=$SECONDS
step() { echo "== $* ($(( (SECONDS - t0) / 60 )) min so far)" >&2; }

if [[ $PART == core || $PART == all ]]; then
    step "inception_mnist against every peer, each alone in its process (~6 min)"
    $PY benchmarks/throughput.py --models inception_mnist \
        --modes imperative,static,recommended,serving --peer torch --peer onnxruntime \
        --batch-sizes 1,32,256 --run-seconds 0.3 --repeats 3 --latency-iters 30 \
        --json runs/bench-peers.json --doc $DOC --doc-section peers

    step "GoogLeNet and Inception-v3 against gluoncv, ONNX Runtime, torch.compile (~8 min)"
    $PY benchmarks/imagenet_inception.py --networks googlenet,inception_v3 --batch-sizes 1,16 \
        --run-seconds 1 --repeats 2 --latency-iters 3 \
        --json runs/imagenet-core.json --doc $DOC --doc-section imagenet

    step "Inception-v3 training step, MXNet hybridized vs PyTorch eager vs torch.compile (~8 min)"
    $PY benchmarks/imagenet_inception.py --train --networks inception_v3 --batch-sizes 16,32 \
        --run-seconds 1 --repeats 2 --latency-iters 2 \
        --json runs/imagenet-train.json --doc $DOC --doc-section imagenet-train

    step "Inception-v3 profile, MXNet (oneDNN) beside frozen torch.compile (~3 min)"
    $PY benchmarks/imagenet_profile.py --network inception_v3 --batch-sizes 1,16 --iters 3 \
        --doc $DOC --doc-section imagenet-profile

fi

if [[ $PART == big || $PART == all ]]; then
    step "Inception-v4 and Inception-ResNet-v2 against ONNX Runtime, torch.compile (~20 min)"
    $PY benchmarks/imagenet_inception.py --networks inception_v4,inception_resnet_v2 \
        --batch-sizes 1,16 --modes recommended,serving,onnxruntime,torch-compile-frozen \
        --run-seconds 1 --repeats 2 --latency-iters 3 \
        --json runs/imagenet-big.json --doc $DOC --doc-section imagenet-big
fi
if [[ $PART == serving || $PART == all ]]; then
    # The serving targets: at batch 1 ONNX Runtime's speed moves between processes (a spell of
    # slow thread hand-overs lasting seconds), so each row is the median of 3 fresh processes,
    # the contenders alternating. The ImageNet peers are ONNX Runtime only, at batch 1 (batch 16
    # is read off the imagenet / imagenet-big tables, where every peer runs).
    step "serving graph against its best peers, inception_mnist, 3 trials (~12 min)"
    $PY benchmarks/throughput.py --models inception_mnist \
        --modes serving,onnxruntime,torch-compile,torch-compile-frozen --batch-sizes 1,32,256 \
        --run-seconds 0.3 --repeats 3 --latency-iters 30 --trials 3 \
        --json runs/serving-targets-mnist.json --doc $DOC --doc-section serving-targets-mnist
    step "serving graph against ONNX Runtime, four ImageNet networks, batch 1, 3 trials (~15 min)"
    $PY benchmarks/imagenet_inception.py \
        --networks googlenet,inception_v3,inception_v4,inception_resnet_v2 \
        --modes serving,onnxruntime --batch-sizes 1 --run-seconds 1 --repeats 2 \
        --latency-iters 3 --trials 3 --json runs/serving-targets.json --doc $DOC \
        --doc-section serving-targets
fi
if [[ $PART == mxnet || $PART == all ]]; then
    # MXNet-only tables (no peer in them, so issue 20 did not invalidate them): the generated
    # MNIST table, and those quoted by hand in docs/benchmarks.md, whose outputs go to runs/
    step "MNIST networks, MXNet modes (~4 min)"
    $PY benchmarks/throughput.py --models inception_mnist,inception_naive_mnist \
        --modes imperative,hybrid,static,mkldnn,int8,recommended,serving,train-imperative,train-hybrid \
        --batch-sizes 1,32,256 --run-seconds 0.3 --repeats 3 --latency-iters 30 \
        --json runs/bench-mnist.json --plot docs/throughput.png --doc $DOC --doc-section mnist

    step "environment sweep (~5 min)"
    $PY benchmarks/env_sweep.py > runs/env-sweep.txt
    step "serving options, three engine settings (~3 min)"
    $PY benchmarks/serving_options.py --batch-sizes 1,32 > runs/serving-options.txt
    MXNET_ENGINE_TYPE=NaiveEngine $PY benchmarks/serving_options.py --batch-sizes 1,32 \
        > runs/serving-options-naive.txt
    OMP_NUM_THREADS=1 $PY benchmarks/serving_options.py --batch-sizes 1,32 \
        > runs/serving-options-omp1.txt
    step "MNIST profiles, oneDNN and ONNX Runtime, batch 32 and 1 (~1 min)"
    $PY benchmarks/onednn_profile.py --model inception_mnist --batch 32 --mode recommended \
        --top 60 --iters 20 > runs/onednn-mnist-32.txt
    $PY benchmarks/onednn_profile.py --model inception_mnist --batch 1 --mode recommended \
        --iters 50 > runs/onednn-mnist-1.txt
    $PY benchmarks/ort_profile.py --model inception_mnist --batch 32 --top 45 \
        > runs/ort-mnist-32.txt
fi
step "done"
