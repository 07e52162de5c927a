"""Times the fused elementwise kernels of a packed prefill step (FusedPrefillStep: a line of T tokens) and the fp8
projection ops on a GPU, against a torch copy of as many bytes: where the fp8 prefill's time between matmuls goes.

The model's shape, the kernel source with the engine's NVRTC options and each kernel's launch at T rows come from
the step plan (io.sparkinfer.bench.StepPlan, see step_plan.py), written with --batch-sizes including every T (the
prefill step launches by the plan of T rows). Kernels are compiled and launched as fused_step.py does. Random inputs.
Timing: CUDA events around --iters calls after a warm-up, queued behind a sleep kernel so the host's launch cost
(ctypes) does not show; the kernels cycle through copies of their buffers so each call finds its inputs out of L2.

It prints, per T:
  1. each kernel as the engine launches it (rms_norm, rms_norm_fp8, silu_mul, silu_mul_fp8, quantize_fp8 on the
     attention's (T, N*D) output, rotary_cache_write_packed) and PyTorch equivalents: us, the bytes it must move,
     GB/s and its fraction of a torch copy of as many bytes (the copy's GB/s too);
  2. the fp8 kernels' dequantized outputs against the unquantized kernels' (pass/fail; exit status 1 on a failure);
  3. the projections: fp8 _scaled_mm (bf16 out, row-wise scales, fast accumulation) with the bias added after it
     or passed to it, x.add_(_scaled_mm(..)) against _scaled_mm alone, and fp16 addmm/addmm_: ms and TFLOP/s;
  4. with --variants, the fp8 kernels compiled with FP8_CHUNKS 2, 4, 8 (-DFP8_CHUNKS) at blocks of 128-1024 threads,
     and rms_norm at blocks of 128-1024;
and a summary: each kernel's us, GB/s and fraction of the copy, and per-step totals over the plan's layers.

usage: python3 bench/prefill_kernels.py --plan PLAN.json [--tokens 8192,32768] [--dtype fp16|bf16] [--variants]
       [--iters 50]
"""
import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import fused_step  # noqa: E402
from fused_step import Kernels, use_plan  # noqa: E402
from step_plan import StepPlan  # noqa: E402

NAMES = ["rms_norm", "silu_mul", "rotary_cache_write_packed", "rms_norm_fp8", "silu_mul_fp8", "quantize_fp8"]
FP8_NAMES = ["rms_norm_fp8", "silu_mul_fp8", "quantize_fp8"]
FP8_OPTION = "-DFP8_CHUNKS="  # the engine's option (LaunchPlan.FP8_CHUNKS)
PROJECTIONS = {"qkv": "self_attn.qkv_proj", "o": "self_attn.o_proj", "gate_up": "mlp.gate_up_proj",
               "down": "mlp.down_proj"}  # the plan's parameter names
ROW_TOKENS = 512  # tokens per prompt of the rotary kernel's packed line
E4M3 = torch.float8_e4m3fn
# the plan's model shape (set by main)
PLAN = None
LAYERS = H = N = K = D = I = 0
EPS = 1e-6
CYCLES_PER_MS = 0.0  # of torch.cuda._sleep, measured by main


def calibrate_sleep():
    """Measures torch.cuda._sleep's cycles per millisecond."""
    global CYCLES_PER_MS
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(10 ** 7)
    stop.record()
    torch.cuda.synchronize()
    CYCLES_PER_MS = 1e7 / start.elapsed_time(stop)


def time_us(fn, iters):
    """Mean GPU microseconds of fn(i), i = 0 .. iters-1: one call and a timed host pass to warm up, then CUDA events
    around iters calls queued behind a sleep kernel longer than the host takes to queue them."""
    fn(0)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(iters):
        fn(i)
    host_ms = (time.perf_counter() - t) * 1e3
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(int(CYCLES_PER_MS * (2 * host_ms + 1)))
    start.record()
    for i in range(iters):
        fn(i)
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) * 1e3 / iters


def copies(nbytes):
    """Sets of a kernel's buffers to cycle through so each call finds its inputs out of L2 (3x L2 touched between)."""
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 64 << 20)
    return max(1, min(16, math.ceil(3 * l2 / max(nbytes, 1))))


def time_sets(make, run, nbytes, iters):
    """us per run(set), cycling through copies(nbytes) sets of buffers made by make()."""
    sets = [make() for _ in range(copies(nbytes))]
    return time_us(lambda i: run(sets[i % len(sets)]), iters)


def copy_gbs(nbytes, iters):
    """GB/s of dst.copy_(src) moving nbytes (nbytes / 2 read, as many written)."""
    n = max(16, nbytes // 2)
    make = lambda: [torch.empty(n, dtype=torch.uint8, device="cuda") for _ in range(2)]  # src, dst
    us = time_sets(make, lambda s: s[1].copy_(s[0]), nbytes, iters)
    return 2 * n / us / 1e3


def rand(*shape, dtype):
    return torch.randn(*shape, device="cuda").to(dtype)


def buffers(t, in_cols, out_cols, dtype, out_dtype):
    """A kernel's buffers at t rows: x (T, in) random, out (T, out), s (T) float32 (fp8 kernels' row scales)."""
    return dict(x=rand(t, in_cols, dtype=dtype), out=torch.empty(t, out_cols, dtype=out_dtype, device="cuda"),
                s=torch.empty(t, device="cuda"))


def fp8_cols(name):
    """An fp8 kernel's input and output columns: rms_norm_fp8 (T, H) -> (T, H), silu_mul_fp8 (T, 2I) [gate | up] ->
    (T, I), quantize_fp8 the attention's (T, N*D) -> (T, N*D)."""
    return {"rms_norm_fp8": (H, H), "silu_mul_fp8": (2 * I, I), "quantize_fp8": (N * D, N * D)}[name]


def fp8_bytes(name, t, e):
    """Bytes an fp8 kernel must move: its input once (and the norm's weight), a byte a value and 4 a row out."""
    in_cols, out_cols = fp8_cols(name)
    return t * in_cols * e + (H * e if name == "rms_norm_fp8" else 0) + t * out_cols + 4 * t


def fp8_launch(kern, name, grid, block, s, norm_w):
    """An fp8 kernel on buffers s, with the prefill step's arguments (QuantizedRows)."""
    head = (s["x"], s.get("update", 0), norm_w) if name == "rms_norm_fp8" else (s["x"],)  # 0: no update
    tail = {"rms_norm_fp8": (H, H, EPS), "silu_mul_fp8": (I,), "quantize_fp8": (N * D, N * D)}[name]
    kern.launch(name, grid, block, *head, s["out"], s["s"], *tail)


def kernel_cases(t, dtype, kern, launch, norm_w, inv_freq):
    """(name, bytes it must move, make() -> buffers, run(buffers)) of each kernel at t rows, launched as the prefill
    step launches it, and PyTorch's equivalents (same bytes); fp8 kernels only where kern has them."""
    e = torch.finfo(dtype).bits // 8
    norm, silu, rot = launch["rms_norm"], launch["silu_mul"], launch["rotary_cache_write"]
    qkv_cols, nd = (N + 2 * K) * D, N * D
    x_set = lambda: buffers(t, H, H, dtype, dtype)  # (T, H) -> (T, H)
    gu_set = lambda: buffers(t, 2 * I, I, dtype, dtype)  # (T, 2I) [gate | up] -> (T, I)
    o_set = lambda: buffers(t, nd, nd, dtype, E4M3)  # the attention's (T, N*D) output, quantized

    def rot_set():  # rows of ROW_TOKENS tokens (at most the capacity) at positions 0.., each in its own cache row
        per_row = min(ROW_TOKENS, PLAN.capacity)
        tok = torch.arange(t, device="cuda")
        rows = math.ceil(t / per_row)
        return dict(qkv=rand(t, qkv_cols, dtype=dtype), pos=tok % per_row, row=tok // per_row,
                    kc=torch.empty(rows, PLAN.capacity, K, D, dtype=dtype, device="cuda"),  # (R, C, K, D)
                    vc=torch.empty(rows, PLAN.capacity, K, D, dtype=dtype, device="cuda"))

    torch_norm = lambda s: norm_w * (s["x"].float() * torch.rsqrt(s["x"].float().pow(2).mean(-1, keepdim=True)
                                                                   + EPS)).to(dtype)  # as llama_step.py
    torch_quantize = lambda s: (s["x"].float() / (s["x"].abs().amax(1, keepdim=True).float() / 448).clamp_min(1e-12)
                                ).to(E4M3)  # as llama_step.py's fp8_mm
    cases = [  # x read once, out written once
        ("rms_norm", 2 * t * H * e + H * e, x_set,
         lambda s: kern.launch("rms_norm", norm["grid"], norm["block"], s["x"], norm_w, s["out"], H, H, EPS)),
        ("torch rms_norm", 2 * t * H * e + H * e, x_set, torch_norm),
        ("silu_mul", 3 * t * I * e, gu_set,
         lambda s: kern.launch("silu_mul", silu["grid"], silu["block"], s["x"], s["out"], I, t)),
        ("torch silu(g) * u", 3 * t * I * e, gu_set,
         lambda s: torch.nn.functional.silu(s["x"][:, :I]) * s["x"][:, I:]),
        ("rotary_cache_write_packed", 2 * t * qkv_cols * e + 16 * t, rot_set,
         lambda s: kern.launch("rotary_cache_write_packed", rot["grid"], rot["block"], s["qkv"], s["pos"], s["row"],
                               inv_freq, s["kc"], s["vc"], N, K, D, PLAN.capacity)),
    ]
    if "rms_norm_fp8" in kern.functions:  # a block per row, as the plan says (QuantizedRows)
        for name in FP8_NAMES:
            make = lambda name=name: buffers(t, *fp8_cols(name), dtype, E4M3)
            run = lambda s, name=name: fp8_launch(kern, name, launch[name]["grid"], launch[name]["block"], s, norm_w)
            cases.append((name, fp8_bytes(name, t, e), make, run))
        cases.append(("torch quantize (amax, div, to e4m3)", fp8_bytes("quantize_fp8", t, e), o_set, torch_quantize))

        def updated_set():  # rms_norm_fp8 adding the last projection's (T, H) output to x as it reads it
            b = buffers(t, *fp8_cols("rms_norm_fp8"), dtype, E4M3)
            b["update"] = rand(t, H, dtype=dtype)
            return b
        cases.append(("rms_norm_fp8 with its update", fp8_bytes("rms_norm_fp8", t, e) + 2 * t * H * e, updated_set,
                      lambda s: fp8_launch(kern, "rms_norm_fp8", launch["rms_norm_fp8"]["grid"],
                                           launch["rms_norm_fp8"]["block"], s, norm_w)))
    return cases


def check(t, dtype, kern, launch, norm_w):
    """The fp8 kernels' dequantized rows against the unquantized kernels' (quantize_fp8: against its input): within
    e4m3's rounding (3 mantissa bits: half a unit is at most 1/16 of a value), scales the row's largest / 448."""
    norm, silu = launch["rms_norm"], launch["silu_mul"]
    ok = True
    for name in FP8_NAMES:
        s = buffers(t, *fp8_cols(name), dtype, E4M3)
        fp8_launch(kern, name, launch[name]["grid"], launch[name]["block"], s, norm_w)
        ref = s["x"]  # quantize_fp8's reference: its input
        if name == "rms_norm_fp8":
            ref = torch.empty(t, H, dtype=dtype, device="cuda")
            kern.launch("rms_norm", norm["grid"], norm["block"], s["x"], norm_w, ref, H, H, EPS)
        elif name == "silu_mul_fp8":
            ref = torch.empty(t, I, dtype=dtype, device="cuda")
            kern.launch("silu_mul", silu["grid"], silu["block"], s["x"], ref, I, t)
        ref, q, scale = ref.float(), s["out"].float(), s["s"]
        amax = ref.abs().amax(1)
        err = ((q * scale[:, None] - ref).abs().amax(1) / amax.clamp_min(1e-12)).max().item()
        scale_err = ((scale - (amax / 448).clamp_min(1e-12)).abs() / scale).max().item()
        # the scale against the reference's largest value: equal but where the two kernels' sums of squares (added
        # in another order) round a value of the row to the other neighbour of the storage type (one unit)
        good = math.isfinite(err) and err <= 1 / 16 + 1e-3 and scale_err <= torch.finfo(dtype).eps
        ok &= good
        print(f"  check {name}: max |q*scale - ref| / row max {err:.4f} (limit {1 / 16 + 1e-3:.4f}), scale rel. err "
              f"{scale_err:.1e}: {'pass' if good else 'FAIL'}")
    return ok


def fp8_weight(out_f, in_f):
    """A float8 e4m3 weight (out, in) of random values and its per-output-channel float32 scale (1, out)."""
    w = 0.02 * torch.randn(out_f, in_f, device="cuda")
    scale = w.abs().amax(1, keepdim=True) / 448  # (out, 1)
    return (w / scale).to(E4M3), scale.t().contiguous()


def fp8_rows(t, in_f):
    """Random bf16 rows quantized as our kernels quantize them: q (T, in) e4m3, scale (T, 1) float32."""
    a = rand(t, in_f, dtype=torch.bfloat16).float()
    scale = (a.abs().amax(1, keepdim=True) / 448).clamp_min(1e-12)
    return (a / scale).to(E4M3), scale


def projections(t, iters, fp8, bias_of):
    """Times the projections at t rows: fp16 as project/add_projection run them, and fp8 (bf16 out) as
    project_quantized/add_projection_quantized do, with the variants that show the separate adds' cost.
    Returns {label: ms}."""
    bf16, f16 = torch.bfloat16, torch.float16
    shapes = [("qkv", H, (N + 2 * K) * D, False), ("gate_up", H, 2 * I, False), ("o", N * D, H, True),
              ("down", I, H, True)]  # (name, in, out, added to the residual stream)
    ms = {}

    def report(name, in_f, out_f, label, fn):
        ms[f"{name} {label}"] = m = time_us(fn, iters) / 1e3
        tflops = 2 * t * in_f * out_f / m / 1e9
        print(f"  {name:7s} {in_f:6d} -> {out_f:6d}  {label:46s} {m:8.3f} ms {tflops:7.1f} TFLOP/s")

    for name, in_f, out_f, residual in shapes:
        bias_f = 0.02 * torch.randn(out_f, device="cuda")
        with_bias = name == "qkv" or bias_of(name)  # q/k/v always: the bias comparison
        a, w = rand(t, in_f, dtype=f16), (0.02 * torch.randn(out_f, in_f, device="cuda")).to(f16)
        if residual:
            x = rand(t, out_f, dtype=f16)
            report(name, in_f, out_f, "fp16 x.addmm_(a, W.t())", lambda i: x.addmm_(a, w.t()))
        else:
            out, b16 = torch.empty(t, out_f, dtype=f16, device="cuda"), bias_f.to(f16)
            label = "fp16 addmm(bias, h, W.t(), out=)" if with_bias else "fp16 mm(h, W.t(), out=)"
            report(name, in_f, out_f, label, lambda i: torch.addmm(b16, a, w.t(), out=out) if with_bias
                   else torch.mm(a, w.t(), out=out))
        if not fp8:
            continue
        (q, qs), (w8, ws), b = fp8_rows(t, in_f), fp8_weight(out_f, in_f), bias_f.to(bf16)
        out = torch.empty(t, out_f, dtype=bf16, device="cuda")
        mm = lambda bias=None: torch._scaled_mm(q, w8.t(), qs, ws, bias, None, bf16, True, out=out)
        report(name, in_f, out_f, "fp8 _scaled_mm(out=) alone", lambda i: mm())
        if residual:
            x = rand(t, out_f, dtype=bf16)
            report(name, in_f, out_f, "fp8 x.add_(_scaled_mm(..)) (add_projection_q.)",
                   lambda i: x.add_(torch._scaled_mm(q, w8.t(), qs, ws, None, None, bf16, True)))
        elif with_bias:
            report(name, in_f, out_f, "fp8 _scaled_mm(out=); out.add_(bias)", lambda i: mm().add_(b))
            try:
                expect = mm().add_(b).clone()
                diff = (mm(b) - expect).abs().max().item()
                report(name, in_f, out_f, "fp8 _scaled_mm(bias=bias, out=)", lambda i: mm(b))
                print(f"    bias in _scaled_mm: max |difference| from the separate add {diff:.4f}")
            except RuntimeError as err:
                print(f"    _scaled_mm refuses the bias: {str(err).splitlines()[0][:300]}")
    return ms


class ChunksPlan:
    """The plan with another FP8_CHUNKS among its NVRTC options (what fused_step's Kernels compile with)."""

    def __init__(self, plan, chunks):
        self.plan, self.chunks = plan, chunks

    def nvrtc_options(self):
        kept = [o for o in self.plan.nvrtc_options() if not o.startswith(FP8_OPTION)]
        return kept + [f"{FP8_OPTION}{self.chunks}"]


def variants(t, bf16, dtype, iters, default_kern, norm_w):
    """The fp8 kernels compiled with FP8_CHUNKS 2, 4, 8 at blocks of 128-1024 threads (grid T), each checked bit for
    bit against the engine's variant at the plan's block (rms_norm_fp8 at another block sums its squares in another
    order, so a few of its values may differ in the last bit there); and rms_norm at blocks of 128-1024."""
    if not any(o.startswith(FP8_OPTION) for o in PLAN.nvrtc_options()):
        raise SystemExit(f"the plan's NVRTC options have no {FP8_OPTION}: write the plan again with this engine")
    e = torch.finfo(dtype).bits // 8
    launch = PLAN.launch(t)
    sets = {name: [buffers(t, *fp8_cols(name), dtype, E4M3) for _ in range(copies(fp8_bytes(name, t, e)))]
            for name in FP8_NAMES}
    refs = {}
    for name in FP8_NAMES:  # the engine's output of set 0
        fp8_launch(default_kern, name, launch[name]["grid"], launch[name]["block"], sets[name][0], norm_w)
        refs[name] = (sets[name][0]["out"].view(torch.uint8).clone(), sets[name][0]["s"].clone())
    print(f"  {'FP8_CHUNKS':>10s} {'block':>5s}  {'kernel':14s} {'us':>8s} {'GB/s':>7s}")
    for block in (128, 256, 512, 1024):
        norm_bytes = 2 * t * H * e + H * e
        x = [buffers(t, H, H, dtype, dtype) for _ in range(copies(norm_bytes))]
        us = time_us(lambda i: default_kern.launch("rms_norm", (t,), (block,), x[i % len(x)]["x"], norm_w,
                                                   x[i % len(x)]["out"], H, H, EPS), iters)
        print(f"  {'-':>10s} {block:5d}  {'rms_norm':14s} {us:8.1f} {norm_bytes / us / 1e3:7.0f}")
        del x
    for chunks in (2, 4, 8):
        fused_step.PLAN = ChunksPlan(PLAN, chunks)
        try:
            kern = Kernels(PLAN.kernel_source(), bf16, names=FP8_NAMES)
        finally:
            fused_step.PLAN = PLAN
        for block in (128, 256, 288, 384, 512, 1024):
            for name in FP8_NAMES:
                s = sets[name]
                try:
                    us = time_us(lambda i: fp8_launch(kern, name, (t,), (block,), s[i % len(s)], norm_w), iters)
                except RuntimeError as err:  # e.g. too many registers for the block
                    print(f"  {chunks:10d} {block:5d}  {name:14s} launch failed: {err}")
                    continue
                s[0]["out"].zero_()
                s[0]["s"].zero_()
                fp8_launch(kern, name, (t,), (block,), s[0], norm_w)
                q, scale = s[0]["out"].view(torch.uint8), s[0]["s"]
                same = torch.equal(q, refs[name][0]) and torch.equal(scale, refs[name][1])
                note = "" if same else (f"  differs from the engine's: {(q != refs[name][0]).sum().item()} bytes, "
                                        f"{(scale != refs[name][1]).sum().item()} scales")
                print(f"  {chunks:10d} {block:5d}  {name:14s} {us:8.1f} {fp8_bytes(name, t, e) / us / 1e3:7.0f}{note}")


def summary(t, results, ms, qkv_bias):
    """Each kernel's us, GB/s and fraction of the copy; per-step totals over the layers: the kernels of each mode
    (norms 2 a layer, the rest 1) and, for fp8, the adds that fp16's addmm fuses and fp8 runs as separate ops."""
    print(f"  summary at T = {t}:")
    for name, (us, gbs, frac, _) in results.items():
        print(f"    {name:36s} {us:8.1f} us {gbs:6.0f} GB/s {frac:4.0%} of copy")
    calls = {"fp16": {"rms_norm": 2, "silu_mul": 1, "rotary_cache_write_packed": 1},
             "fp8": {"rms_norm_fp8": 2, "silu_mul_fp8": 1, "quantize_fp8": 1, "rotary_cache_write_packed": 1}}
    for mode, per_layer in calls.items():
        if all(k in results for k in per_layer):
            step = sum(results[k][0] * n for k, n in per_layer.items()) * LAYERS / 1e3
            ideal = sum(results[k][3] * n for k, n in per_layer.items()) * LAYERS / 1e3
            print(f"    {mode} step's kernels over {LAYERS} layers: {step:.3f} ms (at copy bandwidth {ideal:.3f} ms)")
    if "qkv fp8 _scaled_mm(out=) alone" not in ms:
        return
    alone = lambda n: ms[f"{n} fp8 _scaled_mm(out=) alone"]
    adds = sum(ms[f"{n} fp8 x.add_(_scaled_mm(..)) (add_projection_q.)"] - alone(n) for n in ("o", "down")) * LAYERS
    bias_add = ms["qkv fp8 _scaled_mm(out=); out.add_(bias)"] - alone("qkv")
    print(f"    fp8 residual adds (o, down) over {LAYERS} layers: {adds:.3f} ms; a q/k/v bias add {bias_add:.3f} ms a "
          f"layer ({LAYERS * bias_add:.3f} ms a step{'' if qkv_bias else '; this model has no q/k/v bias'})")
    fp16 = sum(v for k, v in ms.items() if "fp16" in k) * LAYERS
    fp8 = sum(alone(n) for n in ("qkv", "gate_up", "o", "down")) * LAYERS
    print(f"    matmuls over {LAYERS} layers: fp16 (adds fused) {fp16:.3f} ms, fp8 _scaled_mm alone {fp8:.3f} ms")


def main():
    global PLAN, LAYERS, H, N, K, D, I, EPS
    ap = argparse.ArgumentParser(description="Times a packed prefill step's fused kernels and fp8 projection ops.")
    ap.add_argument("--plan", required=True, help="the engine's step description (io.sparkinfer.bench.StepPlan), "
                                                  "written with --batch-sizes including every T of --tokens")
    ap.add_argument("--tokens", default="8192,32768", help="T,T,...: tokens of the packed line (the kernels' rows)")
    ap.add_argument("--dtype", default="bf16", choices=["fp16", "bf16"],
                    help="storage type of the kernels' inputs (fp8 mode stores bf16; fp16 and bf16 move as many bytes)")
    ap.add_argument("--variants", action="store_true", help="also time FP8_CHUNKS 2/4/8 at blocks of 128-1024")
    ap.add_argument("--iters", type=int, default=50, help="calls timed per measurement (after a warm-up)")
    args = ap.parse_args()
    PLAN = StepPlan(args.plan)
    use_plan(PLAN)  # fused_step's Kernels compile with the plan's NVRTC options
    LAYERS, H, N, K, D = PLAN.layers, PLAN.hidden, PLAN.heads, PLAN.kv_heads, PLAN.head_dim
    I, EPS = PLAN.intermediate, PLAN.eps
    tokens = [int(v) for v in args.tokens.split(",")]
    launches = {t: PLAN.launch(t) for t in tokens}  # exits with a message when the plan lacks a T
    dtype, bf16 = (torch.bfloat16, True) if args.dtype == "bf16" else (torch.float16, False)
    fp8 = torch.cuda.get_device_capability() >= (8, 9)
    torch.manual_seed(0)
    kern = Kernels(PLAN.kernel_source(), bf16, names=NAMES if fp8 else NAMES[:3])
    calibrate_sleep()
    norm_w = (1 + 0.1 * torch.randn(H, device="cuda")).to(dtype)
    inv_freq = PLAN.inv_freq("cuda")
    bias_of = lambda name: StepPlan.key(0, PROJECTIONS[name] + ".bias") in PLAN.data["parameters"]  # the model's biases
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}, {args.dtype}, H {H} I {I} N {N} K {K} D {D}, "
          f"{LAYERS} layers, {args.iters} calls a measurement")
    if not fp8:
        print("compute capability below 8.9: no float8, skipping the fp8 kernels and projections")
    failed = False
    with torch.no_grad():
        for t in tokens:
            launch = launches[t]
            print(f"T = {t} tokens: " + ", ".join(f"{k} {launch[k]['block'][0]}x{launch[k]['grid'][0]}" for k in
                                                   ["rms_norm", "silu_mul", "rotary_cache_write"] + FP8_NAMES
                                                   if launch.get(k)))
            results = {}
            for name, nbytes, make, run in kernel_cases(t, dtype, kern, launch, norm_w, inv_freq):
                us = time_sets(make, run, nbytes, args.iters)
                copy = copy_gbs(nbytes, args.iters)
                results[name] = (us, nbytes / us / 1e3, nbytes / us / 1e3 / copy, nbytes / copy / 1e3)
                print(f"  {name:36s} {us:8.1f} us {nbytes / 1e6:8.1f} MB {nbytes / us / 1e3:6.0f} GB/s "
                      f"({results[name][2]:.0%} of the copy's {copy:.0f} GB/s)")
                torch.cuda.empty_cache()
            if fp8:
                failed |= not check(t, dtype, kern, launch, norm_w)
            ms = projections(t, args.iters, fp8, bias_of)
            torch.cuda.empty_cache()
            if args.variants and fp8:
                variants(t, bf16, dtype, args.iters, kern, norm_w)
            summary(t, results, ms, bias_of("qkv"))
    if failed:
        print("FAILED: an fp8 kernel's output is outside e4m3 rounding (see the checks above)")
        sys.exit(1)


if __name__ == "__main__":
    main()
