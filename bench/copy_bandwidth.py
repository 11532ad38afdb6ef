"""The card's two ceilings, measured: device-to-device copy bandwidth (read + write bytes over
time, 2 GiB buffers; the decode limits are bytes read a step over it) and the bf16 rate of a
large cuBLAS matrix product (the prefill kernels' ceiling), with pinned host-to-device bandwidth.
Usage: python3 bench/copy_bandwidth.py  (on the GPU machine; prints one line of JSON last)."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_generate_bench import copy_bandwidths, timed  # noqa: E402


def bf16_matmul_rate(n=8192, sets=4):
    # Several input sets, random data (zeros run faster than real data on these cards).
    ab = [(torch.randn(n, n, device="cuda", dtype=torch.bfloat16),
           torch.randn(n, n, device="cuda", dtype=torch.bfloat16)) for _ in range(sets)]
    i = [0]

    def step():
        a, b = ab[i[0] % sets]
        i[0] += 1
        return a @ b
    step()
    return 2 * n ** 3 / timed(step, reps=40)


d2d, h2d = copy_bandwidths()
mm = bf16_matmul_rate()
print(f"{torch.cuda.get_device_name(0)}: d2d copy {d2d / 1e12:.3f} TB/s, pinned h2d {h2d / 1e9:.1f} GB/s, "
      f"bf16 matmul 8192^3 {mm / 1e12:.0f} TFLOP/s")
print(json.dumps({"device": torch.cuda.get_device_name(0), "d2d_copy_bytes_per_s": d2d,
                  "h2d_pinned_bytes_per_s": h2d, "bf16_matmul_flops": mm}))
