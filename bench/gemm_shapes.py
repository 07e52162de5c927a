"""Times the decode step's matrix multiplications at the benchmark's shape on a GPU, each way the step could
call them, so the fused step can use the fastest: mm into a kept tensor, addmm_ into the residual, addmm with
a bias, with the weight as stored (out, in) or transposed once to (in, out), and split along the inner dimension
(split-K: one batched product of S slices into an (S, batch, out) temporary, summed; more thread blocks for the
narrow products, whose (batch, out) output has few tiles). Each variant runs 28 times (the layers) inside one CUDA
graph, replayed; prints microseconds per call, the bandwidth of the weight read, and the product's own limit on
this GPU kind (the weight read at --bandwidth, the arithmetic at --peak, the larger of the two).

usage: python3 bench/gemm_shapes.py [--batch 256] [--splits 2,4,8] [--bandwidth 4.8] [--peak 989]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from fused_step import graph_ms  # noqa: E402

H, N, K, D, I, V = 1536, 12, 2, 128, 8960, 151936
LAYERS = 28


def graph_us(fn):
    ms, _, graph = graph_ms(fn)
    del graph
    return ms * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--splits", default="2,4,8", help="split-K slice counts to time")
    ap.add_argument("--bandwidth", type=float, default=4.8, help="the GPU's memory bandwidth, TB/s (H200: 4.8)")
    ap.add_argument("--peak", type=float, default=989, help="the GPU's dense fp16 peak, TFLOP/s (H200: 989)")
    args = ap.parse_args()
    b = args.batch
    splits = [int(x) for x in args.splits.split(",") if x]
    total = {}
    dev, dt = "cuda", torch.float16
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}, batch {b}, {LAYERS} calls per graph")
    shapes = {"qkv": ((N + 2 * K) * D, H), "o": (H, N * D), "gate_up": (2 * I, H), "down": (H, I), "lm_head": (V, H)}
    for name, (out_f, in_f) in shapes.items():
        ws = [torch.randn(out_f, in_f, device=dev, dtype=dt) * 0.02 for _ in range(LAYERS if name != "lm_head" else 4)]  # distinct weights: no L2 reuse
        wts = [w.t().contiguous() for w in ws]  # (in, out)
        bias = torch.randn(out_f, device=dev, dtype=dt)
        a = torch.randn(b, in_f, device=dev, dtype=dt)
        out = torch.empty(b, out_f, device=dev, dtype=dt)
        x = torch.randn(b, out_f, device=dev, dtype=dt)
        variants = {
            "mm(a, W.t(), out=)": lambda: [torch.mm(a, w.t(), out=out) for w in ws],
            "mm(a, Wt, out=)": lambda: [torch.mm(a, w, out=out) for w in wts],
            "addmm_(x, a, W.t())": lambda: [x.addmm_(a, w.t()) for w in ws],
            "addmm_(x, a, Wt)": lambda: [x.addmm_(a, w) for w in wts],
            "addmm(bias, a, W.t(), out=)": lambda: [torch.addmm(bias, a, w.t(), out=out) for w in ws],
            "addmm(bias, a, Wt, out=)": lambda: [torch.addmm(bias, a, w, out=out) for w in wts],
        }
        for s in splits if name != "lm_head" else []:  # the LM head's output is wide: tiles enough
            if in_f % s == 0:
                variants[f"split-K {s}: bmm, sum, add_"] = lambda s=s: [x.add_(split_k(a, w, s).sum(0)) for w in ws]
        limit = max(out_f * in_f * 2 / (args.bandwidth * 1e12), 2 * b * out_f * in_f / (args.peak * 1e12)) * 1e6
        print(f"  {name:8s} ({out_f:5d} x {in_f:5d})  limit {limit:.1f} us")
        best = None
        for vname, fn in variants.items():
            us = graph_us(fn) / len(ws)
            gbs = out_f * in_f * 2 / (us * 1e-6) / 1e12
            print(f"  {name:8s} ({out_f:5d} x {in_f:5d})  {vname:28s} {us:7.1f} us  {gbs:5.2f} TB/s  {limit / us:5.1%} of the limit")
            if vname.startswith("split-K") or vname.startswith("mm(") or vname.startswith("addmm_("):
                best = us if best is None else min(best, us)
        total[name] = (best, limit)
        if splits and in_f % splits[0] == 0 and name != "lm_head":  # the split products give the same sums as one product
            ref = torch.mm(a, ws[0].t()).float()
            got = split_k(a, ws[0], splits[0]).float().sum(0)
            print(f"  {name:8s} split-K {splits[0]} against mm: largest difference {(got - ref).abs().max().item():.3g}"
                  f" (values up to {ref.abs().max().item():.3g})")
        del ws, wts
    layer = sum(total[n][0] for n in ("qkv", "o", "gate_up", "down"))
    layer_limit = sum(total[n][1] for n in ("qkv", "o", "gate_up", "down"))
    step = LAYERS * layer + total["lm_head"][0]
    step_limit = LAYERS * layer_limit + total["lm_head"][1]
    print(f"the step's products at their fastest variant: {step / 1e3:.3f} ms ({LAYERS} layers of {layer:.1f} us and the"
          f" LM head), limit {step_limit / 1e3:.3f} ms: {step_limit / step:.1%} of it")


def split_k(a, w, s):
    """a (batch, in) @ w (out, in).t() in s slices of the inner dimension: (s, batch, out), to be summed."""
    b, k = a.shape
    n = w.shape[0]
    a3 = a.view(b, s, k // s).transpose(0, 1)  # (s, batch, in/s), row stride in
    w3 = w.view(n, s, k // s).permute(1, 2, 0)  # (s, in/s, out): each slice's w.t(), column stride in
    return torch.bmm(a3, w3)


if __name__ == "__main__":
    main()
