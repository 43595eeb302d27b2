"""Peer: numpy/OpenBLAS sgemm throughput, as bench/matmul_worker.ts measures Bios.

    /usr/bin/python3 bench/numpy_peer.py --sizes 512,1024,2048 [--seconds 0.5]

Prints one JSON line: {"peer": "numpy", "blas": ..., "gflops": {"512": ...}}.
Each size n times numpy.matmul(A, B, out=C) in float32 with the same policy as
the Bios worker: one warm-up product, k grown until a batch of k products takes
at least 0.25 s (calibrate_batch), then batches for at least three and
--seconds.
"""

import argparse
import json
import math
import os
import time

import numpy as np


MIN_BATCH_SECONDS = 0.25
MAX_BATCH = 4096


def calibrate_batch(time_batch):
    """Products per batch, as bench/matmul_worker.ts's calibrateBatch."""
    k = 1
    while True:
        t = time_batch(k)
        if t >= MIN_BATCH_SECONDS or k >= MAX_BATCH:
            return k
        k = min(MAX_BATCH, max(k + 1, math.ceil(k * 1.1 * MIN_BATCH_SECONDS / t)))


def blas_name():
    """The BLAS libraries numpy has loaded (read from /proc/self/maps after a product)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and ".so" in line}
        return ", ".join(sorted(libs)) or "unknown"
    except OSError:
        return "unknown"


def measure(n, min_seconds):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)

    def run(k):
        for _ in range(k):
            np.matmul(a, b, out=c)

    def time_batch(k):
        t0 = time.perf_counter()
        run(k)
        return time.perf_counter() - t0

    run(1)  # warm-up
    k = calibrate_batch(time_batch)

    def batch():
        run(k)

    w0 = time.perf_counter()
    batch()
    slow = time.perf_counter() - w0 > 1.0
    min_runs, min_s = (1, 0.0) if slow else (3, min_seconds)
    runs, t0, seconds = 0, time.perf_counter(), 0.0
    while runs < 50 and (runs < min_runs or seconds < min_s):
        batch()
        runs += 1
        seconds = time.perf_counter() - t0
    return 2 * n**3 * k * runs / seconds / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", required=True)
    p.add_argument("--seconds", type=float, default=0.5)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    gflops = {str(n): measure(n, args.seconds) for n in sizes}
    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    print(json.dumps({"peer": "numpy", "version": np.__version__, "blas": blas_name(), "openblasNumThreads": threads, "gflops": gflops}))


if __name__ == "__main__":
    main()
