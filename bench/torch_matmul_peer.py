"""Peer: PyTorch float32 matrix products on a CUDA GPU (cuBLAS sgemm), timed as
bench/matmul_worker.ts times Bios.

    python3 bench/torch_matmul_peer.py --sizes 512,1024,2048,4096 [--seconds 0.5]

Prints one JSON line: {"peer": "torch-cuda", "device": ..., "gflops": {...},
"gflopsTf32": {...}}. "gflops" is strict float32 (TF32 off), the precision
Bios's WebGPU kernels compute in, and so the practical float32 peak of the
card; "gflopsTf32" is the same product with TF32 allowed, for context. Each
size times torch.matmul(A, B, out=C) with the policy of numpy_peer.py: one
warm-up product, k grown until a batch of k products (then one
torch.cuda.synchronize) takes at least 0.25 s, then batches for at least three
and --seconds.
"""

import argparse
import json
import time

import torch

from numpy_peer import calibrate_batch


def measure(n, min_seconds, tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    gen = torch.Generator(device="cuda").manual_seed(n)
    a = torch.randn(n, n, device="cuda", generator=gen)
    b = torch.randn(n, n, device="cuda", generator=gen)
    c = torch.empty(n, n, device="cuda")

    def run(k):
        for _ in range(k):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()

    def time_batch(k):
        t0 = time.perf_counter()
        run(k)
        return time.perf_counter() - t0

    run(1)  # warm-up: cuBLAS handle and kernel choice
    k = calibrate_batch(time_batch)
    runs, t0, seconds = 0, time.perf_counter(), 0.0
    while runs < 50 and (runs < 3 or seconds < min_seconds):
        run(k)
        runs += 1
        seconds = time.perf_counter() - t0
    # A product checked against float64 on the GPU: the figure is of real work.
    ref = a.double() @ b.double()
    torch.matmul(a, b, out=c)
    err = ((c.double() - ref).norm() / ref.norm()).item()
    return 2 * n**3 * k * runs / seconds / 1e9, err


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", required=True)
    p.add_argument("--seconds", type=float, default=0.5)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out = {"gflops": {}, "gflopsTf32": {}, "relError": {}}
    for n in sizes:
        out["gflops"][str(n)], out["relError"][str(n)] = measure(n, args.seconds, False)
        out["gflopsTf32"][str(n)], _ = measure(n, args.seconds, True)
    head = {"peer": "torch-cuda", "version": torch.__version__, "device": torch.cuda.get_device_name()}
    print(json.dumps({**head, **out}))


if __name__ == "__main__":
    main()
