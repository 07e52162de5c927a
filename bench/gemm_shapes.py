"""Times the decode step's matrix multiplications at the benchmark's shape on a GPU, each way the step could
call them, so the fused step can use the fastest: mm into a kept tensor, addmm_ into the residual, addmm with
a bias, with the weight as stored (out, in) or transposed once to (in, out). Each variant runs 28 times (the
layers) inside one CUDA graph, replayed; prints microseconds per call and the bandwidth of the weight read.

usage: python3 bench/gemm_shapes.py [--batch 256]
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
    b = ap.parse_args().batch
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
        for vname, fn in variants.items():
            us = graph_us(fn) / len(ws)
            gbs = out_f * in_f * 2 / (us * 1e-6) / 1e12
            print(f"  {name:8s} ({out_f:5d} x {in_f:5d})  {vname:28s} {us:7.1f} us  {gbs:5.2f} TB/s")
        del ws, wts


if __name__ == "__main__":
    main()
