"""Profiles one decode step of the scripted backend's kernel (common/.../kernels/llama_step.py) on a GPU.

Builds the same TorchScript archive the engine builds (io.sparkinfer.torchscript.TorchScriptArchive), loads it
in this Python's torch, feeds it random fp16 weights of the benchmark's shape (bench/make_checkpoint.py),
and for each batch size prints: the step replayed as a CUDA graph (ms), the GPU kernels one step runs (count
and summed time, from torch.profiler) and the kernels that take the most time. Replay time well above
the summed kernel time means gaps between kernels; summed time well above the bandwidth bound means slow
or too many kernels.

usage: python3 bench/profile_step.py [--batch-sizes 1,64,256] [--context 512] [--top 25] [--kernel FILE] [--optimize]
"""
import argparse
import io
import os
import time
import zipfile

import torch

KERNEL = os.path.join(os.path.dirname(__file__), "..", "common", "src", "main", "resources", "io", "sparkinfer",
                      "kernels", "llama_step.py")
# DeepSeek-R1-Distill-Qwen-1.5B shape
LAYERS, H, N, K, D, I, V = 28, 1536, 12, 2, 128, 8960, 151936


def archive(source, class_name="LlamaStep"):
    """The archive TorchScriptArchive.build writes: code, module pickle, constants, version."""
    root = class_name.lower() + "/"
    key = b"training"
    pickle = (b"\x80\x02c__torch__\n" + class_name.encode() + b"\n)\x81}(X" + len(key).to_bytes(4, "little") + key
              + b"\x89ub.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(root + "data.pkl", pickle)
        z.writestr(root + "code/__torch__.py", source)
        z.writestr(root + "constants.pkl", b"\x80\x02).")
        z.writestr(root + "version", "3\n")
        z.writestr(root + "byteorder", "little")
    buf.seek(0)
    return buf


def weights(dev):
    r = lambda *s: (torch.randn(*s, device=dev) * 0.02).half()
    z = lambda *s: torch.zeros(*s, device=dev, dtype=torch.half)
    layers = []
    for _ in range(LAYERS):
        layers += [torch.ones(H, device=dev).half(), r(N * D + 2 * K * D, H), r(N * D + 2 * K * D), r(H, N * D), z(H),
                   torch.ones(H, device=dev).half(), r(2 * I, H), z(2 * I), r(H, I), z(H)]
    return r(V, H), layers, torch.ones(H, device=dev).half(), r(V, H)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-sizes", default="1,64,256")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--kernel", default=KERNEL, help="TorchScript source to profile (default: the engine's)")
    ap.add_argument("--optimize", action="store_true",
                    help="let TorchScript's executor fuse (the engine's -Dsparkinfer.scripted.optimize=true)")
    args = ap.parse_args()
    torch._C._set_graph_executor_optimize(args.optimize)
    dev = "cuda"
    step = torch.jit.load(archive(open(args.kernel).read()), map_location=dev)
    embed, layers, norm, lm_head = weights(dev)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, D, 2, device=dev).float() / D))
    ctx = args.context
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}, context {ctx}, kernel {args.kernel}, "
          f"optimize {args.optimize}")
    for b in [int(x) for x in args.batch_sizes.split(",")]:
        kc = [torch.zeros(b, ctx + 128, K, D, device=dev, dtype=torch.half) for _ in range(LAYERS)]
        vc = [torch.zeros(b, ctx + 128, K, D, device=dev, dtype=torch.half) for _ in range(LAYERS)]
        ids = torch.randint(0, V, (b, 1), device=dev)
        pos = torch.full((b, 1), ctx - 1, device=dev)
        last = torch.zeros(b, dtype=torch.long, device=dev)
        call = lambda: step(ids, pos, last, ctx, embed, layers, norm, lm_head, inv_freq, kc, vc, [0] * LAYERS, N, K, D,
                            1e-6, True)
        with torch.no_grad():
            for _ in range(3):
                call()
            torch.cuda.synchronize()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                call()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = call()
            for _ in range(3):
                graph.replay()
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(20):
                graph.replay()
            torch.cuda.synchronize()
            replay_ms = (time.perf_counter() - t) / 20 * 1e3
            t = time.perf_counter()
            for _ in range(20):
                call()
            torch.cuda.synchronize()
            call_ms = (time.perf_counter() - t) / 20 * 1e3
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    call()
                torch.cuda.synchronize()
        events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        kernel_us = sum(e.time_range.elapsed_us() for e in events) / 5
        print(f"\nbatch {b}: graph replay {replay_ms:.2f} ms/step, plain call {call_ms:.2f} ms/step, "
              f"{len(events) / 5:.0f} GPU kernels/step summing {kernel_us / 1e3:.2f} ms")
        table = {}
        for e in events:
            n, total = table.get(e.name, (0, 0.0))
            table[e.name] = (n + 1, total + e.time_range.elapsed_us())
        for name, (n, total) in sorted(table.items(), key=lambda kv: -kv[1][1])[:args.top]:
            print(f"  {total / 5 / 1e3:7.3f} ms  {n / 5:6.0f}x  {name[:110]}")
        del graph, out, kc, vc


if __name__ == "__main__":
    main()
