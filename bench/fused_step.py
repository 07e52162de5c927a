"""Measures the fused decode step (decode_kernels.cu between PyTorch matmuls and flash attention) against
the scripted step (llama_step.py) on a GPU, both replayed as CUDA graphs, and checks they agree.

Everything about the engine's step comes from its step plan (io.sparkinfer.bench.StepPlan, see step_plan.py):
the TorchScript archive the engine builds, the kernel source with the engine's NVRTC options, the parameter
names and shapes, and each kernel's launch (grid, block, attention splits). The kernels are compiled with NVRTC
and launched with the CUDA driver API through ctypes, as io.sparkinfer.cuda.CudaKernels does from Java. Random
weights of the plan's shape; each row's position is drawn from the benchmark's context range (prompts of 128-512
tokens plus up to 128 new ones).

For each batch size it prints: graph replay ms of the scripted step and of the fused step, the fused step's
parts alone (matmuls, attention, fused kernels), and the largest logit difference and argmax agreement of the
two steps.

Attention is decode_attention (+ decode_attention_combine when a row has several splits), split as
FusedDecodeStep splits it; each batch also checks it against flash attention and decode_attention_wide, with and
without a sliding window, at several split sizes.

--attention-variants B times the attention kernels alone at batch B for variants of the source (warps, stages,
splits) against flash attention and against torch reading as many contiguous bytes.

--kv-fp8 B checks the float8 cache's kernels at batch B (--kv-cache-dtype fp8): rotary_cache_write_fp8 must write
the bytes torch's own e4m3 cast of rotary_cache_write's keys and values gives (saturated at 448), and
decode_attention_fp8 over a float8 cache what decode_attention gives over that cache widened to the compute dtype;
then it times the two attention kernels against each other and against torch reading each one's bytes.

--overlap B,... times the step at B rows against the same rows as two halves of B / 2 on two streams of one CUDA
graph (the plan needs launches for B / 2 too): serial, free (nothing between the streams) and alternating (each
half's attention beside the other half's MLP), to see how much of the attention's cache reads can hide behind
the other half's matmuls.

usage: python3 bench/fused_step.py --plan PLAN.json [--batch-sizes 1,64,256] [--dtype fp16|bf16] [--positions LO,HI]
       [--attention-variants B] [--kv-fp8 B] [--overlap B,...]
"""
import argparse
import ctypes
import glob
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from step_plan import StepPlan  # noqa: E402

NAMES = ["rms_norm", "rotary_cache_write", "silu_mul", "decode_attention", "decode_attention_wide",
         "decode_attention_combine", "rotary_cache_write_fp8", "decode_attention_fp8"]
# the plan's model shape and launches (set by use_plan)
PLAN = None
LAYERS = H = N = K = D = I = V = 0
EPS = 1e-6


def use_plan(plan):
    global PLAN, LAYERS, H, N, K, D, I, V, EPS
    PLAN = plan
    LAYERS, H, N, K, D = plan.layers, plan.hidden, plan.heads, plan.kv_heads, plan.head_dim
    I, V, EPS = plan.intermediate, plan.vocab, plan.eps


class Kernels:
    """decode_kernels.cu compiled with NVRTC for this GPU and loaded with the driver API."""

    def __init__(self, source, bf16, names=NAMES):
        """Compiles source with the plan's NVRTC options (group size, head dim), in bf16 or fp16."""
        nvrtc_path = sorted(glob.glob(os.path.join(os.path.dirname(torch.__file__), "..", "nvidia", "**",
                                                   "libnvrtc.so*"), recursive=True))
        self.nvrtc = ctypes.CDLL(nvrtc_path[0] if nvrtc_path else "libnvrtc.so")
        self.cuda = ctypes.CDLL("libcuda.so.1")
        prog = ctypes.c_void_p()
        self._check_nvrtc(self.nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"decode_kernels.cu",
                                                        0, None, None))
        major, minor = torch.cuda.get_device_capability()
        opts = [f"--gpu-architecture=sm_{major}{minor}".encode()]
        opts += [o.encode() for o in PLAN.nvrtc_options() if o != "-DSPARKINFER_BF16"]
        opts += [b"-DSPARKINFER_BF16"] if bf16 else []
        arr = (ctypes.c_char_p * len(opts))(*opts)
        rc = self.nvrtc.nvrtcCompileProgram(prog, len(opts), arr)
        if rc != 0:
            size = ctypes.c_size_t()
            self.nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            self.nvrtc.nvrtcGetProgramLog(prog, log)
            raise RuntimeError("nvrtc: " + log.value.decode())
        size = ctypes.c_size_t()
        self._check_nvrtc(self.nvrtc.nvrtcGetCUBINSize(prog, ctypes.byref(size)))
        cubin = ctypes.create_string_buffer(size.value)
        self._check_nvrtc(self.nvrtc.nvrtcGetCUBIN(prog, cubin))
        torch.cuda.init()
        torch.zeros(1, device="cuda")  # makes the primary context current
        self.module = ctypes.c_void_p()
        self._check(self.cuda.cuModuleLoadData(ctypes.byref(self.module), cubin))
        self.functions = {}
        for name in names:
            f = ctypes.c_void_p()
            self._check(self.cuda.cuModuleGetFunction(ctypes.byref(f), self.module, name.encode()))
            self.functions[name] = f

    @staticmethod
    def _check_nvrtc(rc):
        if rc != 0:
            raise RuntimeError(f"nvrtc error {rc}")

    @staticmethod
    def _check(rc):
        if rc != 0:
            raise RuntimeError(f"cuda driver error {rc}")

    def launch(self, name, grid, block, *args, shared=0):
        values = []
        for a in args:
            if isinstance(a, torch.Tensor):
                values.append(ctypes.c_uint64(a.data_ptr()))
            elif isinstance(a, float):
                values.append(ctypes.c_double(a))
            else:
                values.append(ctypes.c_int64(a))
        params = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        g = list(grid) + [1] * (3 - len(grid))
        b = list(block) + [1] * (3 - len(block))
        stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        self._check(self.cuda.cuLaunchKernel(self.functions[name], *g, *b, shared, stream, params, None))


def rounding(reference):
    """How far two attention outputs rounded to reference's dtype may differ: 2 units in the last place of its
    largest value (float16: 2^-10 relative, bfloat16: 2^-7)."""
    return 2 * torch.finfo(reference.dtype).eps * max(1.0, reference.abs().max().item())


class CustomAttention:
    """Our attention over a (B, C, K, D) cache as FusedDecodeStep.attend launches it: decode_attention (or, with
    wide, decode_attention_wide), then decode_attention_combine when a row has several splits; split as the
    engine's launch plan says unless split_size is given."""

    def __init__(self, kernels, b, capacity, dev, split_size=None, wide=False, threads=128, fp8=False):
        self.k, self.b, self.c, self.wide, self.threads = kernels, b, capacity, wide, threads
        self.name = "decode_attention_fp8" if fp8 else "decode_attention"  # fp8: a float8 e4m3 cache (uint8 bytes)
        if capacity != PLAN.capacity:
            raise SystemExit(f"the plan's launches are for caches of {PLAN.capacity} slots, not {capacity}")
        plan = PLAN.launch(b)["attention_by_kernel"]["decode_attention_wide" if wide else "decode_attention"]
        self.split_size, self.splits = plan["split_size"], plan["splits"]
        if split_size:
            self.split_size, self.splits = split_size, -(-capacity // split_size)
        self.out_part = torch.empty(b, N, self.splits, D, device=dev)
        self.max_part = torch.empty(b, N, self.splits, device=dev)
        self.sum_part = torch.empty(b, N, self.splits, device=dev)

    def __call__(self, qkv, positions, kc, vc, window, out):
        if self.wide:
            self.k.launch("decode_attention_wide", (self.b, K, self.splits), (128,), qkv, positions, kc, vc,
                          self.out_part, self.max_part, self.sum_part, K, self.c, window, self.split_size, D ** -0.5)
        else:
            self.k.launch(self.name, (self.b, K, self.splits), (self.threads,), qkv, positions, kc, vc,
                          self.out_part, self.max_part, self.sum_part, out, K, self.c, window, self.split_size,
                          D ** -0.5)
            if self.splits == 1:  # the kernel wrote the output itself
                return out
        self.k.launch("decode_attention_combine", (self.b * N,), (128,), self.out_part, self.max_part, self.sum_part,
                      out, self.splits, D)
        return out


def planned(kernels, name, b, *args):
    """Launches a kernel with the grid and block of the engine's launch plan at batch b."""
    dims = PLAN.launch(b)[name]
    kernels.launch(name, dims["grid"], dims["block"], *args)


def key(layer, name):
    return StepPlan.key(layer, name)


class FusedStep:
    """The decode step as FusedDecodeStep runs it: fused kernels between matmuls and flash attention."""

    def __init__(self, kernels, b, capacity, params, inv_freq, kc, vc, dtype, parts, custom_attention=True):
        self.k, self.b, self.c = kernels, b, capacity
        self.p, self.inv_freq = params, inv_freq
        self.kc, self.vc, self.eps, self.parts = kc, vc, EPS, parts
        dev = inv_freq.device
        self.x = torch.empty(b, H, device=dev, dtype=dtype)
        self.h = torch.empty(b, H, device=dev, dtype=dtype)
        self.qkv = torch.empty(b, (N + 2 * K) * D, device=dev, dtype=dtype)
        self.gate_up = torch.empty(b, 2 * I, device=dev, dtype=dtype)
        self.act = torch.empty(b, I, device=dev, dtype=dtype)
        self.cu_q = torch.arange(b + 1, dtype=torch.int32, device=dev)
        self.cu_k = self.cu_q * capacity
        self.attention = CustomAttention(kernels, b, capacity, dev) if custom_attention else None
        self.attn_out = torch.empty(b, N * D, device=dev, dtype=dtype)

    def project(self, l, name, x, out):
        """out = x @ W^T (+ b) for layer l's projection name (self_attn.qkv_proj, mlp.gate_up_proj)."""
        w, bias = self.p[key(l, name + ".weight")], self.p.get(key(l, name + ".bias"))
        if bias is not None:
            torch.addmm(bias, x, w.t(), out=out)
        else:
            torch.mm(x, w.t(), out=out)

    def add_projection(self, l, name, a):
        """x += a @ W^T (+ b) for layer l's projection name (self_attn.o_proj, mlp.down_proj)."""
        self.x.addmm_(a, self.p[key(l, name + ".weight")].t())
        bias = self.p.get(key(l, name + ".bias"))
        if bias is not None:
            self.x.add_(bias)

    def __call__(self, ids, positions):
        self.embed(ids)
        if "attention" in self.parts and not self.attention:
            self.seqused = (positions.view(-1) + 1).to(torch.int32)
        for l in range(LAYERS):
            self.attention_part(l, positions)
            self.mlp_part(l)
        return self.head().float()

    def embed(self, ids):
        torch.index_select(self.p["model.embed_tokens.weight"], 0, ids.view(-1), out=self.x)

    def attention_part(self, l, positions):
        """Layer l's norm, q/k/v, rotary and cache write, attention and o projection."""
        b, k, p = self.b, self.k, self.parts
        if "kernels" in p:
            planned(k, "rms_norm", b, self.x, self.p[key(l, "input_layernorm.weight")], self.h, H, H, self.eps)
        if "matmul" in p:
            self.project(l, "self_attn.qkv_proj", self.h, self.qkv)
        if "kernels" in p:
            planned(k, "rotary_cache_write", b, self.qkv, positions, self.inv_freq, self.kc[l], self.vc[l], N, K,
                    D, self.c)
        if "attention" in p and self.attention:
            o = self.attention(self.qkv, positions, self.kc[l], self.vc[l], 0, self.attn_out)
        elif "attention" in p:
            q1 = self.qkv[:, :N * D].view(b, N, D)
            o = torch.ops.aten._flash_attention_forward(
                q1, self.kc[l].view(b * self.c, K, D), self.vc[l].view(b * self.c, K, D), self.cu_q, self.cu_k,
                1, self.c, 0., False, False, scale=D ** -0.5, seqused_k=self.seqused)[0]
        else:
            o = self.qkv[:, :N * D]
        if "matmul" in p:
            self.add_projection(l, "self_attn.o_proj", o.reshape(b, N * D))

    def mlp_part(self, l):
        """Layer l's norm, gate/up, SiLU and down projection."""
        b, k, p = self.b, self.k, self.parts
        if "kernels" in p:
            planned(k, "rms_norm", b, self.x, self.p[key(l, "post_attention_layernorm.weight")], self.h, H, H,
                    self.eps)
        if "matmul" in p:
            self.project(l, "mlp.gate_up_proj", self.h, self.gate_up)
        if "kernels" in p:
            planned(k, "silu_mul", b, self.gate_up, self.act, I, b)
        if "matmul" in p:
            self.add_projection(l, "mlp.down_proj", self.act)

    def head(self):
        if "kernels" in self.parts:
            planned(self.k, "rms_norm", self.b, self.x, self.p["model.norm.weight"], self.h, H, H, self.eps)
        return torch.mm(self.h, self.p["lm_head.weight"].t())


def overlapped_step(a, b, ids, positions, side, mode):
    """One decode step of a batch as two halves a and b (FusedSteps of half its rows, caches of their own).
    mode "serial": a then b on one stream; "free": b on the side stream with nothing between the two; "alternate":
    b's attention part of layer l waits for a's, and a's attention part of layer l + 1 for b's, so each half's
    attention (reading the cache) runs beside the other's MLP (matmuls)."""
    h = a.b
    ids_a, ids_b, pos_a, pos_b = ids[:h], ids[h:], positions[:h], positions[h:]
    main = torch.cuda.current_stream()
    if mode == "serial":
        return torch.cat([a(ids_a, pos_a), b(ids_b, pos_b)])
    side.wait_stream(main)
    a.embed(ids_a)
    with torch.cuda.stream(side):
        b.embed(ids_b)
    for l in range(LAYERS):
        a.attention_part(l, pos_a)
        if mode == "alternate":
            a_done = torch.cuda.Event()
            a_done.record(main)
        with torch.cuda.stream(side):
            if mode == "alternate":
                side.wait_event(a_done)
            b.attention_part(l, pos_b)
            if mode == "alternate":
                b_done = torch.cuda.Event()
                b_done.record(side)
        a.mlp_part(l)
        if mode == "alternate":
            main.wait_event(b_done)
        with torch.cuda.stream(side):
            b.mlp_part(l)
    out_a = a.head()
    with torch.cuda.stream(side):
        out_b = b.head()
    main.wait_stream(side)
    return torch.cat([out_a, out_b])


def overlap(b, lo, hi, dtype, kernels, params, inv_freq):
    """Times the step at b rows against it as two halves of b / 2 (serial, on two free streams, alternating)."""
    dev = "cuda"
    capacity = PLAN.capacity
    h = b // 2
    kc = [torch.randn(b, capacity, K, D, device=dev).to(dtype) for _ in range(LAYERS)]
    vc = [torch.randn(b, capacity, K, D, device=dev).to(dtype) for _ in range(LAYERS)]
    ids = torch.randint(0, V, (b, 1), device=dev)
    pos = torch.randint(lo, hi + 1, (b, 1), device=dev)
    parts = {"kernels", "matmul", "attention"}
    whole = FusedStep(kernels, b, capacity, params, inv_freq, kc, vc, dtype, parts)
    ms, ref, g = graph_ms(lambda: whole(ids, pos))
    ref = ref.clone()
    del g
    print(f"batch {b}: one step {ms:.3f} ms ({b / ms * 1e3:,.0f} tok/s)")
    a = FusedStep(kernels, h, capacity, params, inv_freq, [t[:h] for t in kc], [t[:h] for t in vc], dtype, parts)
    c = FusedStep(kernels, h, capacity, params, inv_freq, [t[h:] for t in kc], [t[h:] for t in vc], dtype, parts)
    side = torch.cuda.Stream()
    for mode in ["serial", "free", "alternate"]:
        ms, out, g = graph_ms(lambda: overlapped_step(a, c, ids, pos, side, mode))
        agree = (out.float().argmax(-1) == ref.argmax(-1)).float().mean().item()
        diff = (out.float() - ref).abs().max().item()
        print(f"  two halves of {h}, {mode}: {ms:.3f} ms ({b / ms * 1e3:,.0f} tok/s); max |logit diff| {diff:.4f}, "
              f"argmax agreement {agree:.3f}")
        del g
    del kc, vc


def graph_ms(fn, n=20):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    graph.replay()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        graph.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e3, out, graph


def replay_us(fn, iters=LAYERS):
    """Microseconds per call of fn, iters calls captured in one CUDA graph and replayed (CUDA events)."""
    _, _, graph = graph_ms(lambda: [fn() for _ in range(iters)], n=1)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    graph.replay()
    start.record()
    for _ in range(5):
        graph.replay()
    stop.record()
    torch.cuda.synchronize()
    del graph
    return start.elapsed_time(stop) / (5 * iters) * 1e3


def variant_kernels(source, subs, dtype, name):
    """The kernels of source with text substitutions subs ((old, new) pairs, each present), or None (printed) when
    they do not compile."""
    for a, c in subs:
        assert a in source, a
        source = source.replace(a, c)
    try:
        return Kernels(source, dtype == torch.bfloat16)
    except RuntimeError as e:
        print(f"  variant {name}: {str(e)[:300]}")
        return None


def attention_variants(b, dtype, capacity=640, iters=30):
    """Times decode_attention + combine alone for variants of the source (text substitutions) and split sizes,
    with CUDA events, and checks each against flash attention."""
    dev = "cuda"
    source = PLAN.kernel_source()
    kc = torch.randn(b, capacity, K, D, device=dev).to(dtype)
    vc = torch.randn(b, capacity, K, D, device=dev).to(dtype)
    pos = torch.randint(128, 576, (b, 1), device=dev)
    q = torch.randn(b, (N + 2 * K) * D, device=dev).to(dtype)
    cu_q = torch.arange(b + 1, dtype=torch.int32, device=dev)
    flash = torch.ops.aten._flash_attention_forward(
        q[:, :N * D].view(b, N, D), kc.view(b * capacity, K, D), vc.view(b * capacity, K, D), cu_q, cu_q * capacity,
        1, capacity, 0., False, False, scale=D ** -0.5, seqused_k=(pos.view(-1) + 1).to(torch.int32))[0]
    flash = flash.reshape(b, N * D)
    bounds = lambda n: ("__launch_bounds__(SOLO_WARPS * 32)", f"__launch_bounds__(SOLO_WARPS * 32, {n})")
    shape = lambda w, st: [("#define SOLO_WARPS 4", f"#define SOLO_WARPS {w}"),
                           ("#define SOLO_STAGES 1", f"#define SOLO_STAGES {st}")]
    # (name, substitutions in decode_kernels.cu, split size, threads); threads 0: decode_attention_wide
    variants = [("decode_attention_wide", [], None, 0), ("decode_attention", [], None, 128),
                ("decode_attention split 128", [], 128, 128), ("decode_attention split 256", [], 256, 128),
                ("decode_attention at least 4 blocks/SM", [bounds(4)], None, 128),
                ("2 warps x 2 stages", shape(2, 2), None, 64), ("2 warps x 2 stages, split 128", shape(2, 2), 128, 64),
                ("1 warp x 3 stages, split 128", shape(1, 3), 128, 32),
                ("decode_attention split 64", [], 64, 128), ("decode_attention split 192", [], 192, 128),
                ("2 warps x 2 stages, split 64", shape(2, 2), 64, 64), ("2 warps x 2 stages, split 256", shape(2, 2), 256, 64),
                ("1 warp x 3 stages, split 64", shape(1, 3), 64, 32), ("1 warp x 3 stages, split 256", shape(1, 3), 256, 32),
                ("1 warp x 4 stages", shape(1, 4), None, 32), ("1 warp x 4 stages, split 128", shape(1, 4), 128, 32)]
    out = torch.empty(b, N * D, device=dev, dtype=dtype)
    for name, subs, split, threads in variants:
        kern = variant_kernels(source, subs, dtype, name)
        if kern is None:
            continue
        att = CustomAttention(kern, b, capacity, dev, split, wide=threads == 0, threads=threads or 128)
        out.fill_(float("nan"))
        att(q, pos, kc, vc, 0, out)
        diff = (out - flash).abs().max().item()
        # iters calls replayed as a CUDA graph (launching through ctypes is slower than the kernels)
        us = replay_us(lambda: att(q, pos, kc, vc, 0, out), iters)
        print(f"  variant {name}: split {att.split_size} x {att.splits}, {us:.1f} us per attention (with combine), "
              f"max |ours - flash| {diff:.5f}{'' if diff <= rounding(flash) else ' <-- MISMATCH'}")
    # what reading as many contiguous bytes costs torch: each row's written slots, keys and values
    total = int((pos + 1).sum().item()) * K * D * 2 * 2
    big = torch.empty(total // 2, device=dev, dtype=dtype)
    us = replay_us(lambda: big.sum(), iters)
    print(f"  torch sum of {total / 1e6:.1f} contiguous MB: {us:.1f} us ({total / us / 1e6:.2f} TB/s)")


def kv_fp8(b, dtype, capacity=640, iters=30):
    """The float8 cache's kernels at batch b: the rotary write's bytes against torch's e4m3 cast, decode_attention_fp8
    against decode_attention over the widened cache (rows of the benchmark's lengths and short rows, windows), and
    both timed with the bytes each reads."""
    dev = "cuda"
    kernels = Kernels(PLAN.kernel_source(), dtype == torch.bfloat16)
    e4m3 = torch.float8_e4m3fn
    # the rotary write: (B, (N + 2K) D) lines at each row's position, into a storage-type and a float8 cache
    qkv = (torch.randn(b, (N + 2 * K) * D, device=dev) * 64).to(dtype)  # some values past e4m3's 448
    pos = torch.randint(0, capacity, (b, 1), device=dev)
    inv_freq = PLAN.inv_freq(dev)
    kc, vc = (torch.zeros(b, capacity, K, D, device=dev, dtype=dtype) for _ in range(2))
    k8, v8 = (torch.zeros(b, capacity, K, D, device=dev, dtype=torch.uint8) for _ in range(2))
    q1, q2 = qkv.clone(), qkv.clone()
    planned(kernels, "rotary_cache_write", b, q1, pos, inv_freq, kc, vc, N, K, D, capacity)
    dims = PLAN.launch(b)["rotary_cache_write"]
    kernels.launch("rotary_cache_write_fp8", dims["grid"], dims["block"], q2, pos, inv_freq, k8, v8, N, K, D, capacity)
    torch.cuda.synchronize()
    cast = lambda t: t.float().clamp(-448, 448).to(e4m3).view(torch.uint8)
    wrong = sum(int((cast(a) != c).sum().item()) for a, c in [(kc, k8), (vc, v8)])
    # the float8 write also keeps the rotated keys in qkv (a fresh prefill line attends to them): they are the keys
    # rotary_cache_write wrote to its cache
    rows = torch.arange(b, device=dev)
    kept = q2[:, N * D:(N + K) * D].view(b, K, D)
    written = kc[rows, pos.view(-1)]  # (B, K, D)
    same = bool(torch.equal(q1[:, :N * D], q2[:, :N * D])) and bool(torch.equal(kept, written))
    print(f"batch {b} {dtype}: rotary_cache_write_fp8 bytes unlike torch's cast of rotary_cache_write's: {wrong}"
          f"{'' if wrong == 0 else ' <-- MISMATCH'}; rotated queries and kept keys equal: {same}"
          f"{'' if same else ' <-- MISMATCH'}")
    # attention over a float8 cache against the same cache widened
    k8 = (torch.randn(b, capacity, K, D, device=dev) * 4).to(e4m3).view(torch.uint8)
    v8 = (torch.randn(b, capacity, K, D, device=dev) * 4).to(e4m3).view(torch.uint8)
    k8[0, :4] = 0x01  # a few subnormals (2^-9) and the largest values
    v8[0, 4:8] = 0x7e  # 448
    kw, vw = k8.view(e4m3).to(dtype), v8.view(e4m3).to(dtype)
    q = torch.randn(b, (N + 2 * K) * D, device=dev).to(dtype)
    out = torch.empty(b, N * D, device=dev, dtype=dtype)
    short = torch.arange(b, device=dev).view(b, 1) % 48
    at_pos = torch.randint(128, 576, (b, 1), device=dev)
    for window, at in [(0, at_pos), (100, at_pos), (0, short), (7, short)]:
        line = f"  {'short rows' if at is short else 'rows'} window {window}, max |fp8 - widened|:"
        for split in [None, 64, capacity]:
            ref = CustomAttention(kernels, b, capacity, dev, split)(q, at, kw, vw, window, out.clone())
            ours = CustomAttention(kernels, b, capacity, dev, split, fp8=True)(
                q, at, k8, v8, window, torch.full_like(out, float("nan")))
            diff = (ours.float() - ref.float()).abs().max().item()
            line += f" split {split or 'planned'} {diff:.6f}{'' if diff <= rounding(ref) else ' <-- MISMATCH'},"
        print(line.rstrip(","))
    for name, att, k_, v_, per in [("decode_attention", CustomAttention(kernels, b, capacity, dev), kw, vw, 2),
                                   ("decode_attention_fp8", CustomAttention(kernels, b, capacity, dev, fp8=True), k8,
                                    v8, 1)]:
        us = replay_us(lambda: att(q, at_pos, k_, v_, 0, out), iters)
        read = int((at_pos + 1).sum().item()) * K * D * 2 * per
        print(f"  {name}: {us:.1f} us per attention ({read / us / 1e6:.2f} TB/s of cache read)")
        big = torch.empty(read // 2, device=dev, dtype=dtype)
        us = replay_us(lambda: big.sum(), iters)
        print(f"    torch sum of as many contiguous bytes ({read / 1e6:.1f} MB): {us:.1f} us")
    # variants of decode_attention_fp8's source (text substitutions), each checked against the widened cache's result
    source = PLAN.kernel_source()
    stages = "#define SOLO_FP8_STAGES (FP8_SWIZZLED ? 2 : 1)"
    bounds = "__launch_bounds__(SOLO_WARPS * 32, 3) decode_attention_fp8("
    reference = CustomAttention(kernels, b, capacity, dev)(q, at_pos, kw, vw, 0, out.clone())
    variants = [("as built", []), ("one raw stage", [(stages, "#define SOLO_FP8_STAGES 1")]),
                ("no block bound", [(bounds, bounds.replace(", 3)", ")"))]),
                ("2 blocks per SM", [(bounds, bounds.replace(", 3)", ", 2)"))])]
    if dtype == torch.float16:
        # float16 widening as before run19: the bits moved to where float16 keeps them (the value times 2^-8) and an
        # fma, in place of sm_89's conversion
        cvt = ('  const unsigned short pair = (unsigned short) (selector == 0x1404u ? bytes : bytes >> 16);\n'
               '  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(out) : "h"(pair));')
        variants.append(("float16, bit moves and an fma (before run19)", [
            (cvt, '  const unsigned v = __byte_perm(bytes, 0u, selector);\n'
                  '  const unsigned bits = (v & 0x80008000u) | ((v & 0x7f007f00u) >> 1);\n'
                  '  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(out) : "r"(bits), "r"(0x5c005c00u), "r"(0x80008000u));')]))
    for name, subs in variants:
        variant = variant_kernels(source, subs, dtype, name)
        if variant is None:
            continue
        att = CustomAttention(variant, b, capacity, dev, fp8=True)
        diff = (att(q, at_pos, k8, v8, 0, torch.full_like(out, float("nan"))).float() - reference.float()).abs().max()
        us = replay_us(lambda: att(q, at_pos, k8, v8, 0, out), iters)
        print(f"  decode_attention_fp8 variant {name}: {us:.1f} us, max |fp8 - widened| {diff.item():.6f}"
              f"{'' if diff.item() <= rounding(reference) else ' <-- MISMATCH'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True, help="the engine's step description (io.sparkinfer.bench.StepPlan)")
    ap.add_argument("--batch-sizes", default="1,64,256")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    ap.add_argument("--attention-variants", type=int, default=0, help="batch size to time attention variants at")
    ap.add_argument("--positions", default="128,575", help="LO,HI: each row's position is drawn from [LO, HI]")
    ap.add_argument("--kv-fp8", type=int, default=0, help="batch size to check and time the float8 cache's kernels at")
    ap.add_argument("--overlap", default="", help="B,B,...: the step at B rows against two halves on two streams")
    args = ap.parse_args()
    use_plan(StepPlan(args.plan))
    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    lo, hi = (int(v) for v in args.positions.split(","))
    if args.attention_variants:
        with torch.no_grad():
            attention_variants(args.attention_variants, dtype)
        return
    if args.kv_fp8:
        torch.manual_seed(0)
        with torch.no_grad():
            kv_fp8(args.kv_fp8, dtype)
        return
    dev = "cuda"
    torch.manual_seed(0)
    kernels = Kernels(PLAN.kernel_source(), args.dtype == "bf16")
    step = torch.jit.load(PLAN.file("llama_step"), map_location=dev)
    params = PLAN.weights(dev, dtype)
    inv_freq = PLAN.inv_freq(dev)
    capacity = PLAN.capacity
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}, {args.dtype}, cache {capacity} slots")
    if args.overlap:
        with torch.no_grad():
            for b in [int(x) for x in args.overlap.split(",")]:
                overlap(b, lo, hi, dtype, kernels, params, inv_freq)
        return
    with torch.no_grad():
        for b in [int(x) for x in args.batch_sizes.split(",")]:
            kc = [torch.randn(b, capacity, K, D, device=dev).to(dtype) for _ in range(LAYERS)]
            vc = [torch.randn(b, capacity, K, D, device=dev).to(dtype) for _ in range(LAYERS)]
            kc2 = [t.clone() for t in kc]
            vc2 = [t.clone() for t in vc]
            ids = torch.randint(0, V, (b, 1), device=dev)
            pos = torch.randint(lo, hi + 1, (b, 1), device=dev)
            last = torch.zeros(b, dtype=torch.long, device=dev)
            every_row = torch.empty(0, dtype=torch.long, device=dev)  # the step's rows are the cache's rows
            scripted = lambda: step(ids, pos, last, every_row, capacity, params, inv_freq, kc, vc, [0] * LAYERS, N, K, D, EPS, True)
            script_ms, script_out, g1 = graph_ms(scripted)
            print(f"batch {b}: scripted {script_ms:.3f} ms")
            for custom in [False, True]:
                fused = FusedStep(kernels, b, capacity, params, inv_freq, kc2, vc2, dtype, {"kernels", "matmul", "attention"},
                                  custom)
                fused_ms, fused_out, g2 = graph_ms(lambda: fused(ids, pos))
                g1.replay()
                g2.replay()
                torch.cuda.synchronize()
                diff = (script_out - fused_out).abs().max().item()
                agree = (script_out.argmax(-1) == fused_out.argmax(-1)).float().mean().item()
                cache_diff = max((a - c).abs().max().item() for a, c in zip(kc, kc2))
                name = "fused, our attention" if custom else "fused, flash attention"
                print(f"  {name}: {fused_ms:.3f} ms ({b / fused_ms * 1e3:,.0f} tok/s); max |logit diff| {diff:.4f}, "
                      f"argmax agreement {agree:.3f}, max |key cache diff| {cache_diff:.4f}")
                del g2
                for part in ["matmul", "attention", "kernels"]:
                    only = FusedStep(kernels, b, capacity, params, inv_freq, kc2, vc2, dtype, {part}, custom)
                    ms, _, g = graph_ms(lambda: only(ids, pos))
                    print(f"    {part} alone: {ms:.3f} ms")
                    del g
            # attention alone against flash attention, with and without a sliding window, each kernel and split
            q = torch.randn(b, (N + 2 * K) * D, device=dev).to(dtype)
            # rows of the benchmark's lengths, and short rows (0-47 slots: every way a 16-slot chunk can end)
            short = torch.arange(b, device=dev).view(b, 1) % 48
            for window, at in [(0, pos), (100, pos), (0, short), (7, short)]:
                extra = dict(window_size_left=window - 1, window_size_right=0) if window else {}
                flash = torch.ops.aten._flash_attention_forward(
                    q[:, :N * D].view(b, N, D), kc[0].view(b * capacity, K, D), vc[0].view(b * capacity, K, D),
                    fused.cu_q, fused.cu_k, 1, capacity, 0., False, False, scale=D ** -0.5,
                    seqused_k=(at.view(-1) + 1).to(torch.int32), **extra)[0].reshape(b, N * D)
                line = f"  attention {'short rows' if at is short else 'rows'} window {window}, max |ours - flash|:"
                for name, att in [("decode_attention", CustomAttention(kernels, b, capacity, dev)),
                                  ("split 64", CustomAttention(kernels, b, capacity, dev, 64)),
                                  ("split 256", CustomAttention(kernels, b, capacity, dev, 256)),
                                  ("one split", CustomAttention(kernels, b, capacity, dev, capacity)),
                                  ("decode_attention_wide", CustomAttention(kernels, b, capacity, dev, wide=True))]:
                    ours = att(q, at, kc[0], vc[0], window, torch.full((b, N * D), float("nan"), device=dev,
                                                                          dtype=dtype))
                    diff = (ours - flash).abs().max().item()
                    line += (f" {name} ({att.split_size} x {att.splits}) {diff:.5f}"
                             f"{'' if diff <= rounding(flash) else ' <-- MISMATCH'},")
                print(line.rstrip(","))
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                fused(ids, pos)
                torch.cuda.synchronize()
            table = {}
            for e in prof.events():
                if e.device_type == torch.autograd.DeviceType.CUDA:
                    n, total = table.get(e.name, (0, 0.0))
                    table[e.name] = (n + 1, total + e.time_range.elapsed_us())
            for kname, (n, total) in sorted(table.items(), key=lambda kv: -kv[1][1])[:12]:
                print(f"    {total / 1e3:7.3f} ms  {n:5d}x  {kname[:100]}")
            del g1
            del kc, vc, kc2, vc2


if __name__ == "__main__":
    main()
