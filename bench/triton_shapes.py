"""The model's matrix products through the GPU machine's own PyTorch (its cuBLAS) and through a Triton kernel tuned
over a small grid of tile shapes, beside each product's limit: whether a GEMM of our own could beat cuBLAS on the
shapes the engine runs (bench/cublas_shapes.py times libtorch 2.5.1's cuBLAS and a newer one on the same shapes).

Each product multiplies (rows, in) by a weight (out, in) transposed, fp16 in and out, float32 accumulation, as the
engine's projections do; times are CUDA events over 28 products, each on its own weight copy (the layers), so that
weights come from memory as a decode step reads them. Prints a JSON line per (rows, shape, kernel): microseconds a
product, TFLOP/s, the fraction of the product's limit (the weight and activations read and the output written at
--bandwidth, or the arithmetic at --peak, the larger), and for Triton the best configuration.

usage: python3 bench/triton_shapes.py [--rows 256,32768] [--peak 989e12] [--bandwidth 4.8e12]
Needs PyTorch with CUDA and Triton (the GPU machine's Python has both); no model files.
"""
import argparse
import json
import sys

import torch
import triton
import triton.language as tl

H, I, V, QKV = 1536, 8960, 151936, 2048  # the benchmark checkpoint (DeepSeek-R1-Distill-Qwen-1.5B's shape)
SHAPES = {"qkv": (QKV, H), "o": (H, H), "gate_up": (2 * I, H), "down": (H, I), "lm_head": (V, H)}
LAYERS = 28


@triton.jit
def matmul_kernel(a, b, c, M, N, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                  GROUP_M: tl.constexpr, SPLIT_K: tl.constexpr):
    # c (M, N) = a (M, K) @ b (N, K)^T, row-major; SPLIT_K > 1: c float32, partial sums added atomically
    pid = tl.program_id(0)
    pid_k = tl.program_id(1)
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * grid_n
    group = pid // width
    first_m = group * GROUP_M
    size_m = min(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % size_m)
    pid_n = (pid % width) // size_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    k_per = tl.cdiv(tl.cdiv(K, SPLIT_K), BLOCK_K) * BLOCK_K  # whole blocks per split
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(pid_k * k_per, min((pid_k + 1) * k_per, K), BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(a + rm[:, None] * K + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        w = tl.load(b + rn[:, None] * K + rk[None, :], mask=(rn[:, None] < N) & (rk[None, :] < K), other=0.0)
        acc += tl.dot(x, tl.trans(w))
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if SPLIT_K == 1:
        tl.store(c + rm[:, None] * N + rn[None, :], acc.to(tl.float16), mask=mask)
    else:
        tl.atomic_add(c + rm[:, None] * N + rn[None, :], acc, mask=mask)


def configs(rows):
    out = []
    for bm in ((64, 128) if rows <= 256 else (128, 256)):
        for bn in (64, 128, 256):
            for bk in (64, 128):
                for warps, stages in ((4, 4), (8, 3)):
                    for split in ((1, 4) if rows <= 256 else (1,)):
                        if bm * bn >= 256 * 256 and warps < 8:
                            continue
                        out.append(dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, num_warps=warps, num_stages=stages,
                                        SPLIT_K=split))
    return out


def timed(fn, repeats=5):
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) * 1e3)
    return best  # microseconds for LAYERS products


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="256,32768")
    ap.add_argument("--peak", type=float, default=989e12)
    ap.add_argument("--bandwidth", type=float, default=4.8e12)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    args = ap.parse_args()
    torch.manual_seed(0)
    print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton.__version__,
                      "gpu": torch.cuda.get_device_name(),
                      "blas": torch.backends.cuda.preferred_blas_library().name}),
          flush=True)
    for rows in map(int, args.rows.split(",")):
        for name in args.shapes.split(","):
            out_f, in_f = SHAPES[name]
            layers = 1 if name == "lm_head" else LAYERS
            x = torch.randn(rows, in_f, device="cuda", dtype=torch.float16)
            ws = [torch.randn(out_f, in_f, device="cuda", dtype=torch.float16) * 0.02 for _ in range(layers)]
            y = torch.empty(rows, out_f, device="cuda", dtype=torch.float16)
            flop = 2 * rows * in_f * out_f
            limit_us = max(flop / args.peak, 2 * (rows * in_f + out_f * in_f + rows * out_f) / args.bandwidth) * 1e6
            ref = x @ ws[0].t()

            def line(kernel, us, extra=None):
                per = us / layers
                rec = {"rows": rows, "shape": name, "kernel": kernel, "us": round(per, 2),
                       "tflops": round(flop / per / 1e6, 1), "of_limit": round(limit_us / per, 3)}
                rec.update(extra or {})
                print(json.dumps(rec), flush=True)

            line("torch.mm", timed(lambda: [torch.mm(x, w.t(), out=y) for w in ws]))
            best = None
            for cfg in configs(rows):
                cfg = dict(cfg)
                split = cfg.pop("SPLIT_K")
                warps, stages = cfg.pop("num_warps"), cfg.pop("num_stages")
                grid = (triton.cdiv(rows, cfg["BLOCK_M"]) * triton.cdiv(out_f, cfg["BLOCK_N"]), split)
                acc = torch.zeros(rows, out_f, device="cuda", dtype=torch.float32) if split > 1 else y

                def launch(w):
                    if split > 1:
                        acc.zero_()
                    matmul_kernel[grid](x, w, acc, rows, out_f, in_f, GROUP_M=8, SPLIT_K=split, num_warps=warps,
                                        num_stages=stages, **cfg)

                try:
                    us = timed(lambda: [launch(w) for w in ws], repeats=3)
                    launch(ws[0])
                    err = (acc.float() - ref.float()).abs().max().item()
                except Exception as e:  # a configuration that does not fit the GPU's shared memory
                    print(json.dumps({"rows": rows, "shape": name, "skipped": str(e)[:120]}), file=sys.stderr)
                    continue
                if err > 0.05:
                    print(json.dumps({"rows": rows, "shape": name, "wrong": err, **cfg, "split": split}),
                          file=sys.stderr)
                    continue
                if best is None or us < best[0]:
                    best = (us, dict(cfg, num_warps=warps, num_stages=stages, SPLIT_K=split))
            if best:
                line("triton", best[0], {"config": best[1]})


if __name__ == "__main__":
    main()
