"""How fast a prefill's matrix products run when the GPU runs them for seconds on end, against the same products in a
short burst, with the GPU's clock, power and throttle reasons sampled alongside: whether the dense peak (989 TFLOP/s on
an H100 or H200) is a limit sustained prefill can approach, or whether power or heat hold the clock below the one the
peak assumes (bench/results' prefill fractions are stated against the peak).

Each layer's four products of a 32,768-token prefill line of the benchmark checkpoint (qkv, o, gate/up, down; fp16 in
and out, through this Python's PyTorch and its cuBLAS), 28 layers a pass, passes back to back for --seconds. Prints a
JSON line a second (TFLOP/s over that second from CUDA events, and the GPU's state from nvidia-smi, sampled every 0.25
s), then a summary: the first second against the last ones.

usage: python3 bench/sustained_gemm.py [--seconds 20] [--rows 32768] [--peak 989e12] [--graph]
       (--rows 256 --graph: a decode step's products at batch 256, without the LM head)
Needs PyTorch with CUDA and nvidia-smi; no model files.
"""
import argparse
import json
import statistics
import subprocess
import threading
import time

import torch

H, I, QKV = 1536, 8960, 2048  # the benchmark checkpoint (DeepSeek-R1-Distill-Qwen-1.5B's shape)
SHAPES = {"qkv": (QKV, H), "o": (H, H), "gate_up": (2 * I, H), "down": (H, I)}
LAYERS = 28
QUERY = "clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu,clocks_event_reasons.active"


def sample(stop, out):
    while not stop.is_set():
        try:
            line = subprocess.run(["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True, timeout=5).stdout.strip().splitlines()[0]
            sm, sm_max, power, limit, temp, reasons = [v.strip() for v in line.split(",")]
            out.append((time.monotonic(), int(sm), int(sm_max), float(power), float(limit), int(temp), reasons))
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            pass
        stop.wait(0.25)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rows", type=int, default=32768)
    ap.add_argument("--peak", type=float, default=989e12)
    ap.add_argument("--graph", action="store_true", help="replay each pass as a CUDA graph (for few rows)")
    args = ap.parse_args()
    torch.manual_seed(0)
    xs = {k: torch.randn(args.rows, n_in, device="cuda", dtype=torch.float16) for k, (_, n_in) in SHAPES.items()}
    ws = [{k: torch.randn(n_out, n_in, device="cuda", dtype=torch.float16) * 0.02 for k, (n_out, n_in) in
           SHAPES.items()} for _ in range(LAYERS)]
    ys = {k: torch.empty(args.rows, n_out, device="cuda", dtype=torch.float16) for k, (n_out, _) in SHAPES.items()}
    flop_pass = sum(2 * args.rows * n_out * n_in for n_out, n_in in SHAPES.values()) * LAYERS

    def one_pass():
        for layer in ws:
            for k, w in layer.items():
                torch.mm(xs[k], w.t(), out=ys[k])

    one_pass()
    torch.cuda.synchronize()
    if args.graph:  # one pass as a CUDA graph, replayed: no launch gaps where the products are short (decode's rows)
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            one_pass()  # warm-up on the capture stream
            torch.cuda.synchronize()
            with torch.cuda.graph(graph, stream=stream):
                one_pass()
        torch.cuda.synchronize()
        one_pass = graph.replay
    samples, stop = [], threading.Event()
    sampler = threading.Thread(target=sample, args=(stop, samples), daemon=True)
    sampler.start()
    print(json.dumps({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": args.rows,
                      "tflop_a_pass": round(flop_pass / 1e12, 2)}), flush=True)
    start = time.monotonic()
    seconds = []
    while time.monotonic() - start < args.seconds:
        t0 = time.monotonic()
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        passes = 0
        while time.monotonic() - t0 < 1.0:
            one_pass()
            passes += 1
            if passes % (4 if args.rows > 4096 else 64) == 0:
                torch.cuda.synchronize()  # keep the host within a few passes of the GPU
        end.record()
        end.synchronize()
        ms = begin.elapsed_time(end)
        t1 = time.monotonic()
        state = [s for s in samples if t0 <= s[0] <= t1]
        rate = flop_pass * passes / (ms / 1e3)
        rec = {"second": len(seconds) + 1, "tflops": round(rate / 1e12, 1), "of_peak": round(rate / args.peak, 3),
               "passes": passes}
        if state:
            rec.update({"sm_mhz": round(statistics.mean(s[1] for s in state)), "sm_max_mhz": state[-1][2],
                        "power_w": round(statistics.mean(s[3] for s in state)), "power_limit_w": state[-1][4],
                        "temp_c": state[-1][5], "throttle": sorted({s[6] for s in state})})
        seconds.append(rec)
        print(json.dumps(rec), flush=True)
    stop.set()
    rest = seconds[1:] or seconds
    print(json.dumps({"first_second_tflops": seconds[0]["tflops"],
                      "after_it_tflops_mean": round(statistics.mean(r["tflops"] for r in rest), 1),
                      "after_it_of_peak": round(statistics.mean(r["of_peak"] for r in rest), 3),
                      "sm_mhz_range": [min(r.get("sm_mhz", 0) for r in seconds),
                                       max(r.get("sm_mhz", 0) for r in seconds)]}), flush=True)


if __name__ == "__main__":
    main()
