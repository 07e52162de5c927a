"""Profiles one decode step of the scripted backend's TorchScript step (llama_step.py) on a GPU.

Loads the archive the engine builds from its own source (written by io.sparkinfer.bench.StepPlan, see
step_plan.py) in this Python's torch, feeds it random fp16 weights of the plan's shape by the engine's parameter
names, and for each batch size prints: the step replayed as a CUDA graph (ms), the GPU kernels one step runs
(count and summed time, from torch.profiler) and the kernels that take the most time. Replay time well above
the summed kernel time means gaps between kernels; summed time well above the bandwidth bound means slow
or too many kernels.

usage: python3 bench/profile_step.py --plan PLAN.json [--batch-sizes 1,64,256] [--context 512] [--top 25] [--optimize]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from step_plan import StepPlan  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True, help="the engine's step description (io.sparkinfer.bench.StepPlan)")
    ap.add_argument("--batch-sizes", default="1,64,256")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--optimize", action="store_true",
                    help="let TorchScript's executor fuse (the engine's --torchscript-optimize)")
    args = ap.parse_args()
    plan = StepPlan(args.plan)
    torch._C._set_graph_executor_optimize(args.optimize)
    dev = "cuda"
    torch.manual_seed(0)
    step = torch.jit.load(plan.file("llama_step"), map_location=dev)
    params = plan.weights(dev, torch.half)
    inv_freq = plan.inv_freq(dev)
    n, k, d = plan.heads, plan.kv_heads, plan.head_dim
    ctx = args.context
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}, context {ctx}, optimize {args.optimize}")
    for b in [int(x) for x in args.batch_sizes.split(",")]:
        kc = [torch.zeros(b, ctx + 128, k, d, device=dev, dtype=torch.half) for _ in range(plan.layers)]
        vc = [torch.zeros(b, ctx + 128, k, d, device=dev, dtype=torch.half) for _ in range(plan.layers)]
        ids = torch.randint(0, plan.vocab, (b, 1), device=dev)
        pos = torch.full((b, 1), ctx - 1, device=dev)
        last = torch.zeros(b, dtype=torch.long, device=dev)
        every_row = torch.empty(0, dtype=torch.long, device=dev)  # the step's rows are the cache's rows
        call = lambda: step(ids, pos, last, every_row, ctx, params, inv_freq, kc, vc, [0] * plan.layers, n, k, d, plan.eps, True)
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
