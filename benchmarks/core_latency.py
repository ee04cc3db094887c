"""How long two cores take to hand work to each other, and ONNX Runtime's two-thread pool with
it (issue 29, item 1): one process that never imports MXNet alternates, window after window, a
round trip of one cache line between two threads pinned to CPU 0 and CPU 1 (a small C loop,
compiled here with the system's C compiler) and the MNIST network at batch 32 in ONNX Runtime
with two threads and with one:

    .venv/bin/python benchmarks/core_latency.py --windows 40 --seconds 0.5

On these VMs the round trip moves between ~100 and ~350 ns from one moment to the next (the
hypervisor places the two virtual CPUs on cores nearer or farther apart), and the two-thread
session falls to the one-thread rate while it is long: a pool that hands out work every few
microseconds waits on the hand-over. Contenders timed in separate rounds then compare moments,
not runtimes (benchmarks/race_stability.py takes turns instead).
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from race_stability import _export, _serve  # noqa: E402  (standard library only: no MXNet)

PING_PONG_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
static _Atomic long flag __attribute__((aligned(64)));
static long rounds;
static void pin(int cpu) {
  cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s);
  pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}
static void *answer(void *arg) {
  (void)arg; pin(1);
  for (long i = 0; i < rounds; i++) {
    while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) __builtin_ia32_pause();
    atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
  }
  return 0;
}
/* nanoseconds per round trip of one cache line between CPU 0 (this thread) and CPU 1 */
double round_trip_ns(long n) {
  cpu_set_t old; pthread_getaffinity_np(pthread_self(), sizeof old, &old);
  pin(0); rounds = n; atomic_store(&flag, 0);
  pthread_t t; pthread_create(&t, 0, answer, 0);
  struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
    while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) __builtin_ia32_pause();
  }
  clock_gettime(CLOCK_MONOTONIC, &b); pthread_join(t, 0);
  pthread_setaffinity_np(pthread_self(), sizeof old, &old);
  return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
}
"""


def compile_round_trip(folder):
    """The C loop as a ctypes function ``round_trip_ns(rounds) -> float``."""
    src, lib = os.path.join(folder, "pingpong.c"), os.path.join(folder, "pingpong.so")
    with open(src, "w") as f:
        f.write(PING_PONG_C)
    cc = os.environ.get("CC", "cc")
    try:
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", lib, src, "-lpthread"],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as err:
        raise SystemExit(f"core_latency.py needs a C compiler ({cc}, or $CC): {err}") from None
    fn = ctypes.CDLL(lib).round_trip_ns
    fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_long]
    return fn


def measure(onnx_file, windows, seconds, batch, folder):
    """Rows ``(round trip ns, two-thread images/s, one-thread images/s)``, one per window."""
    import numpy as np
    import onnxruntime as ort

    round_trip = compile_round_trip(folder)
    sessions = {}
    for threads in (2, 1):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sessions[threads] = ort.InferenceSession(onnx_file, opts,
                                                 providers=["CPUExecutionProvider"])
    shape = [batch] + [int(d) for d in sessions[1].get_inputs()[0].shape[1:]]
    x = np.random.RandomState(0).rand(*shape).astype(np.float32)
    name = sessions[1].get_inputs()[0].name
    runs = [lambda x, s=sessions[t]: s.run(None, {name: x}) for t in (2, 1)]
    rows = []
    for _ in range(windows):
        ns = round_trip(100000)
        rows.append((ns,) + tuple(_serve(run, x, seconds) for run in runs))
    assert "mxnet" not in sys.modules, "the timed process imported MXNet"
    return rows


def report(rows, split_ns=200.0):
    """The windows split by their round trip (below ``split_ns``: near, else far): each
    part's medians; a part with no window gives dashes."""
    lines = ["| round trip | windows | median round trip (ns) | 2 threads (images/s) | "
             "1 thread (images/s) | 2 threads / 1 thread |", "|---|---:|---:|---:|---:|---:|"]
    for name, part in ((f"near (< {split_ns:.0f} ns)", [r for r in rows if r[0] < split_ns]),
                       (f"far (>= {split_ns:.0f} ns)", [r for r in rows if r[0] >= split_ns])):
        if not part:
            lines.append(f"| {name} | 0 | - | - | - | - |")
            continue
        ns, two, one = (statistics.median(r[i] for r in part) for i in range(3))
        lines.append(f"| {name} | {len(part)} | {ns:.0f} | {two:,.0f} | {one:,.0f} | "
                     f"{two / one:.2f}x |")
    return "\n".join(lines)


def main(argv=None):
    """Export (unless given), then time the windows in a fresh process."""
    p = argparse.ArgumentParser(prog="benchmarks/core_latency.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--export", help="an export folder with the MNIST network's ONNX file "
                                    "(default: made here)")
    p.add_argument("--windows", type=int, default=40)
    p.add_argument("--seconds", type=float, default=0.5, help="length of each session's window")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:  # the timed process: no MXNet in it
        with tempfile.TemporaryDirectory() as tmp:
            rows = measure(args.worker, args.windows, args.seconds, args.batch, tmp)
        print("\n".join(f"{ns:.0f} {two:.0f} {one:.0f}" for ns, two, one in rows))
        print(report(rows))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.export
        if folder is None:
            folder = _export("inception_mnist", tmp)
        onnx = [f for f in os.listdir(folder) if f.endswith(".onnx")]
        cmd = [sys.executable, os.path.abspath(__file__), "--worker",
               os.path.join(folder, onnx[0]), "--windows", str(args.windows),
               "--seconds", str(args.seconds), "--batch", str(args.batch)]
        out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        return out.returncode
    print(out.stdout, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
