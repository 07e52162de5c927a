"""Profiles one prefill step of the scripted backend's TorchScript step (llama_step.py) on a GPU: R prompts of L
tokens, packed (one line, variable-length flash attention) against padded (a row each, masked SDPA), and the
same step's matrix multiplications alone (cuBLAS on the step's shapes: what a prefill could reach).

For each layout it prints milliseconds per step, prompt tokens/s, the FLOP rate (2 x tokens x the weights a token
multiplies, attention's causal half, the LM head at the R last tokens) against the dense peak given, and the GPU
kernels that take the most time. Loads the archive the engine builds from its own source (io.sparkinfer.bench.StepPlan,
see step_plan.py), with random fp16 weights of the plan's shape.

usage: python3 bench/profile_prefill.py --plan PLAN.json [--rows 64] [--length 512] [--peak-tflops 989] [--top 12]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from step_plan import StepPlan  # noqa: E402


def timed(call, repeat=10):
    for _ in range(2):
        call()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        call()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeat


def top_kernels(call, top):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    table = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            n, total = table.get(e.name, (0, 0.0))
            table[e.name] = (n + 1, total + e.time_range.elapsed_us())
    rows = sorted(table.items(), key=lambda kv: -kv[1][1])
    return sum(t for _, (_, t) in rows) / 1e3, [(name[:100], n, t / 1e3) for name, (n, t) in rows[:top]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True)
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense fp16 peak of the GPU (H100/H200 SXM: 989)")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    plan = StepPlan(args.plan)
    dev = "cuda"
    torch.manual_seed(0)
    step = torch.jit.load(plan.file("llama_step"), map_location=dev)
    params = plan.weights(dev, torch.half)
    inv_freq = plan.inv_freq(dev)
    n, k, d, h, i = plan.heads, plan.kv_heads, plan.head_dim, plan.hidden, plan.intermediate
    r, length = args.rows, args.length
    tokens = r * length
    per_token = plan.layers * (h * (n + 2 * k) * d + n * d * h + 2 * h * i + i * h)
    flop = 2 * tokens * per_token + plan.layers * r * 2 * length * length * n * d + 2 * r * h * plan.vocab
    kc = [torch.zeros(r, length, k, d, device=dev, dtype=torch.half) for _ in range(plan.layers)]
    vc = [torch.zeros(r, length, k, d, device=dev, dtype=torch.half) for _ in range(plan.layers)]
    ids = torch.randint(0, plan.vocab, (r, length), device=dev)
    pos = torch.arange(length, device=dev).repeat(r, 1)
    windows = [0] * plan.layers
    every_row = torch.empty(0, dtype=torch.long, device=dev)  # the step's rows are the cache's rows 0..R-1
    padded = lambda: step(ids, pos, torch.full((r,), length - 1, device=dev), every_row, length, params, inv_freq, kc, vc,
                          windows, n, k, d, plan.eps, True)
    line_last = torch.arange(1, r + 1, device=dev) * length - 1
    packed = lambda: step(ids.reshape(1, tokens), pos.reshape(1, tokens), line_last, every_row, length, params, inv_freq, kc, vc,
                          windows, n, k, d, plan.eps, True)
    x = torch.randn(tokens, h, device=dev, dtype=torch.half)
    mats = {name: params[f"model.layers.0.{name}"] for name in
            ["self_attn.qkv_proj.weight", "self_attn.o_proj.weight", "mlp.gate_up_proj.weight", "mlp.down_proj.weight"]}
    inter = torch.randn(tokens, i, device=dev, dtype=torch.half)
    qo = torch.randn(tokens, n * d, device=dev, dtype=torch.half)

    def gemms():
        for _ in range(plan.layers):
            torch.nn.functional.linear(x, mats["self_attn.qkv_proj.weight"])
            torch.nn.functional.linear(qo, mats["self_attn.o_proj.weight"])
            torch.nn.functional.linear(x, mats["mlp.gate_up_proj.weight"])
            torch.nn.functional.linear(inter, mats["mlp.down_proj.weight"])

    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}: prefill of {r} prompts x {length} tokens, "
          f"{flop / 1e12:.1f} TFLOP per step, peak {args.peak_tflops:.0f} TFLOP/s")
    out = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": r, "length": length,
           "tflop_per_step": flop / 1e12, "peak_tflops": args.peak_tflops}
    with torch.no_grad():
        a = padded()
        b = packed()
        out["max_logit_diff_packed_vs_padded"] = (a - b).abs().max().item()
        out["same_argmax"] = bool(torch.equal(a.argmax(-1), b.argmax(-1)))
        print(f"packed vs padded logits: max diff {out['max_logit_diff_packed_vs_padded']:.4f}, same argmax {out['same_argmax']}")
        for name, call, work in [("padded", padded, flop), ("packed", packed, flop),
                                 ("matmuls alone", gemms, 2 * tokens * per_token)]:
            ms = timed(call)
            frac = work / (ms / 1e3) / (args.peak_tflops * 1e12)
            kernel_ms, top = top_kernels(call, args.top)
            print(f"\n{name}: {ms:.2f} ms/step, {tokens / ms * 1e3:,.0f} prompt tokens/s, "
                  f"{work / (ms / 1e3) / 1e12:.0f} TFLOP/s = {frac:.1%} of peak; kernels sum {kernel_ms:.2f} ms")
            for kname, count, kms in top:
                print(f"  {kms:8.3f} ms {count:5d}x  {kname}")
            out[name.replace(" ", "_")] = {"ms": ms, "fraction_of_peak": frac, "kernel_ms": kernel_ms}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
