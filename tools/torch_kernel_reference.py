#!/usr/bin/env python3
"""Native denominators for the kernel benchmarks: cuBLAS matmul and SDPA flash attention in PyTorch.

Times, on the same GPU and in the same device call as the WebGPU suites:
  - matmul 4096 x 14336 x 4096 (y = x W^T, bf16, as bench/suites/matmul.ts's Llama shape);
  - causal scaled-dot-product attention, 32 query heads over 8 kv heads, head dim 128, 32K tokens,
    bf16 (the attention suite's dense shape), with GQA expanded as SDPA needs.
Each is timed with CUDA events over repeated launches (median of 20); TFLOP/s count 2 M N K for the
matmul and 4 S^2 D H / 2 for causal attention (the half the mask keeps), as the WebGPU suites do.

Usage (on the GPU machine):
  python3 tools/torch_kernel_reference.py --out out.json
"""
import argparse
import json
import statistics


def time_ms(fn, reps=20, inner=5):
    import torch
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / inner)
    return statistics.median(times), min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    dev = torch.cuda.get_device_name()
    rows = []
    M, N, K = 4096, 14336, 4096
    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
    ms, mn = time_ms(lambda: x @ w.t())
    rows.append({"kernel": "matmul", "variant": "torch-cublas-bf16", "shape": {"M": M, "N": N, "K": K, "wdtype": "bf16"},
                 "median_ms": ms, "min_ms": mn, "tflops": 2 * M * N * K / ms / 1e9})
    del x, w
    H, Hkv, S, D = 32, 8, 32768, 128
    q = torch.randn(1, H, S, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, Hkv, S, D, device="cuda", dtype=torch.bfloat16).repeat_interleave(H // Hkv, dim=1)
    v = torch.randn(1, Hkv, S, D, device="cuda", dtype=torch.bfloat16).repeat_interleave(H // Hkv, dim=1)
    ms, mn = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), reps=10, inner=2)
    rows.append({"kernel": "attention.dense", "variant": "torch-sdpa-bf16", "shape": {"H": H, "Hkv": Hkv, "S": S, "D": D},
                 "median_ms": ms, "min_ms": mn, "tflops": 4 * S * S * D * H / 2 / ms / 1e9})
    for r in rows:
        r.update({"torch": torch.__version__, "device": dev})
        print(json.dumps(r), flush=True)
    with open(args.out, "w") as f:
        json.dump({"rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
