"""The timing loop shared by the harness's workers (MXNet, PyTorch and the ONNX Runtime worker,
which runs in a venv without MXNet: this module imports only the standard library)."""
import statistics
import time


def time_calls(call, batch, run_seconds, repeats, latency_iters, sync):
    """Warm up ``call``, then time single calls (latency) and runs of calls (throughput).

    Parameters
    ----------
    call : callable
        No arguments; returns the output to ``sync``.
    batch : int
        Images per call.
    run_seconds : float
        Length of one timed run.
    repeats : int
        Timed runs.
    latency_iters : int
        Single calls timed for p50 / p90.
    sync : callable
        ``sync(out, all_=False)`` waits for ``out`` (all work with ``all_=True``).

    Returns
    -------
    dict
        ``images_per_sec`` (median) with ``_min`` / ``_max``, ``p50_ms``, ``p90_ms``,
        ``calls_per_repeat``.
    """
    for _ in range(3):
        sync(call())
    t_end = time.perf_counter() + 0.3
    while time.perf_counter() < t_end:  # warm-up: caches, primitives, thread pools
        sync(call())
    lat = []
    for _ in range(latency_iters):
        t0 = time.perf_counter()
        sync(call())
        lat.append((time.perf_counter() - t0) * 1e3)
    per_call = statistics.median(lat) / 1e3
    n = max(3, int(run_seconds / max(per_call, 1e-6)))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            out = call()
        sync(out, all_=True)
        rates.append(n * batch / (time.perf_counter() - t0))
    lat.sort()
    return {"images_per_sec": statistics.median(rates), "images_per_sec_min": min(rates),
            "images_per_sec_max": max(rates), "p50_ms": statistics.median(lat),
            "p90_ms": lat[int(0.9 * (len(lat) - 1))], "calls_per_repeat": n}
