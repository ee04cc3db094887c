"""Load on `inceptionzoo serve`: N concurrent clients post real images for a fixed time, once
with MMS at batch size 1 and once with the export's recorded batching (or --batch-size /
--max-batch-delay); requests/s, p50 / p99 latency and errors of each. The script exports the
model (or takes --export DIR), starts each server itself with `inceptionzoo serve` on free
loopback ports and stops it (SIGTERM) before the next:

    python benchmarks/serve_load.py --model inception_mnist --clients 32 --seconds 30
    python benchmarks/serve_load.py --export deploy/ --clients 8 --batch-size 8 --max-batch-delay 5

Each client is a thread with one kept-alive HTTP connection, posting the next image as soon as
the previous answer arrives (a closed loop: requests/s is what the server sustains for that
many clients). Images: the MNIST test digits that ship with the package for a one-channel
model, else matplotlib's sample photo, as PNG. Needs a quiet machine for numbers worth
quoting: the clients share its cores with the server.
"""
import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import inceptionzoo  # noqa: F401  (before MXNet: its threads, inceptionzoo._openmp)
from inceptionzoo._io import write_json
from inceptionzoo.mms import free_port, recorded_batching

import numpy as np  # noqa: E402


class ServeProcess:
    """``inceptionzoo serve EXPORT_DIR ...`` as a child process on free ports (the tests use
    it too): :meth:`start` returns the prediction URL once the server printed it, :meth:`stop`
    sends a signal and returns the exit status."""

    def __init__(self, export_dir, log_dir, name=None, batch_size=None, max_batch_delay=None,
                 workers=1):
        self.port = free_port()
        self.management_port = free_port(avoid={self.port})
        self.argv = [sys.executable, "-m", "inceptionzoo.cli", "serve", str(export_dir),
                     "--port", str(self.port), "--management-port", str(self.management_port),
                     "--workers", str(workers)]
        for flag, value in (("--name", name), ("--batch-size", batch_size),
                            ("--max-batch-delay", max_batch_delay)):
            if value is not None:
                self.argv += [flag, str(value)]
        self.log = os.path.join(str(log_dir), f"serve-{self.port}.log")
        self.proc, self.url = None, None

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def start(self, deadline=600):
        """Start and wait for the ``predictions: URL`` line; the URL."""
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        end = time.monotonic() + deadline
        while self.url is None:
            for line in self.output().splitlines():
                if line.startswith("predictions: "):
                    self.url = line.split(" ", 1)[1].strip()
            if self.url is None:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"inceptionzoo serve exited with {self.proc.returncode}:"
                                       f"\n{self.output()[-3000:]}")
                if time.monotonic() > end:
                    raise RuntimeError(f"inceptionzoo serve gave no URL in {deadline} s:\n"
                                       f"{self.output()[-3000:]}")
                time.sleep(0.5)
        return self.url

    def stop(self, sig=signal.SIGTERM, timeout=120):
        """Send ``sig`` and wait for the exit status (SIGKILL after ``timeout`` s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.stop()


def images(channels):
    """PNG bodies: the shipped MNIST digits (one channel), else matplotlib's sample photo."""
    if channels == 1:
        from inceptionzoo.mnist import example_images

        paths = example_images()
    else:
        import matplotlib

        paths = [os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")]
    out = []
    for path in paths:
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def run_load(url, bodies, clients, seconds):
    """``clients`` threads posting ``bodies`` in turn to ``url`` for ``seconds``.

    Returns
    -------
    dict
        ``requests`` (answered 200), ``errors`` (any other status or a failed connection),
        ``requests_per_sec``, ``p50_ms``, ``p99_ms``.
    """
    parts = urllib.parse.urlsplit(url)
    latencies, errors = [], []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(k):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        mine, failed, i = [], 0, k
        while time.monotonic() < end:
            body = bodies[i % len(bodies)]
            i += 1
            t = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=body,
                             headers={"Content-Type": "image/png"})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
            if ok:
                mine.append(time.perf_counter() - t)
            else:
                failed += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors.append(failed)

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    lat = np.array(latencies) * 1e3
    return {"requests": len(latencies), "errors": sum(errors),
            "requests_per_sec": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan")}


def _export(args, folder):
    """``(export folder, its meta file, meta)``: --export, or the model exported now."""
    from inceptionzoo.serving_core import find_meta, read_meta

    export_dir = args.export
    if export_dir is None:
        from inceptionzoo.export import export

        export_dir = os.path.join(folder, "export")
        export(args.model, os.path.join(export_dir, args.model))
    meta_file = find_meta(export_dir, args.name)
    return export_dir, meta_file, read_meta(meta_file)


def _settings(args, meta, meta_file):
    """The (batch size, max batch delay) runs: batch size 1, then the batched setting."""
    batched = recorded_batching(meta)
    batched = (args.batch_size or batched["batch_size"],
               batched["max_batch_delay_ms"] if args.max_batch_delay is None
               else args.max_batch_delay)
    runs = [(1, batched[1])]
    if batched[0] != 1:
        runs.append(batched)
    else:
        print("no batching recorded in the export and no --batch-size: batch size 1 only",
              file=sys.stderr)
    return runs


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", default="inception_mnist",
                   help="a registered model with shipped weights, exported for the run")
    g.add_argument("--export", metavar="DIR", help="an existing export folder instead")
    p.add_argument("--name", help="which export of --export DIR")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--seconds", type=float, default=30.0, help="load per setting (default 30)")
    p.add_argument("--batch-size", type=int, help="the batched run's MMS batch_size (default: "
                   "the export's recorded batching)")
    p.add_argument("--max-batch-delay", type=int, metavar="MS",
                   help="MMS max_batch_delay of both runs (default: the export's, else 100)")
    p.add_argument("--workers", type=int, default=1, help="MMS workers (default 1)")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.clients < 1 or not args.seconds > 0 or (args.batch_size is not None
                                                    and args.batch_size < 1):
        raise SystemExit("serve_load: error: --clients and --batch-size must be >= 1, "
                         "--seconds > 0")
    with tempfile.TemporaryDirectory(prefix="serve-load-") as folder:
        export_dir, meta_file, meta = _export(args, folder)
        shape = meta["batch_shape"]
        channels = shape[1] if not meta["preprocess"]["baked_in"] else (
            1 if len(shape) == 3 else shape[3])
        bodies = images(channels)
        rows = []
        for batch_size, delay in _settings(args, meta, meta_file):
            with ServeProcess(export_dir, folder, name=args.name, batch_size=batch_size,
                              max_batch_delay=delay, workers=args.workers) as server:
                run_load(server.url, bodies, min(args.clients, 4), 2.0)  # warm-up
                r = run_load(server.url, bodies, args.clients, args.seconds)
            rows.append({"model": meta["model"], "batch_size": batch_size,
                         "max_batch_delay_ms": delay, "clients": args.clients,
                         "seconds": args.seconds, **r})
    print("| model | batch size | max batch delay (ms) | clients | requests/s | p50 (ms) | "
          "p99 (ms) | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch_size']} | {r['max_batch_delay_ms']} | {r['clients']} "
              f"| {r['requests_per_sec']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['errors']} |")
    if args.json:
        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
