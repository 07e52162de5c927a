"""Times the model's matrix products through one or more builds of cuBLAS, each in a process of its own, so that
the cuBLAS libtorch 2.5.1 ships (12.4) and a newer one can be set side by side on the same GPU in one call.

No PyTorch: the CUDA runtime and cuBLAS are called through ctypes, as libtorch 2.5.1 calls them for an fp16
`mm` (cublasGemmEx, fp16 in and out, float32 compute, the default tensor-op algorithm). Each product of a shape runs
28 times (the layers, each on a weight copy of its own, so weights are read from memory as a decode step reads
them) inside one CUDA graph, replayed; prints a JSON line per shape: microseconds a product, TFLOP/s, the weight
read's bandwidth, and the product's own limit on this GPU kind (the weight read at --bandwidth, the arithmetic at
--peak, the larger of the two).

usage: python3 bench/cublas_shapes.py --cudart LIBCUDART DIR [DIR ...]
       DIR: a directory holding libcublas*.so.12 and libcublasLt*.so.12 (a libtorch directory of DJL's bundle, or
       one with another cuBLAS 12 build); --rows 256,32768 (the decode batch, a prefill line)
"""
import argparse
import ctypes
import glob
import json
import os
import subprocess
import sys

H, I, V, QKV = 1536, 8960, 151936, 2048  # the benchmark checkpoint (DeepSeek-R1-Distill-Qwen-1.5B's shape)
SHAPES = {"qkv": (QKV, H), "o": (H, H), "gate_up": (2 * I, H), "down": (H, I), "lm_head": (V, H)}
LAYERS = 28
CUDA_R_16F, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 2, 68, 99
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CAPTURE_MODE_RELAXED = 2


def check(status, what):
    if status != 0:
        raise RuntimeError(f"{what} failed: {status}")


class Cuda:
    """The few CUDA runtime calls a timed graph needs."""

    def __init__(self, path):
        self.rt = ctypes.CDLL(path)

    def malloc(self, size):
        ptr = ctypes.c_void_p()
        check(self.rt.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(size)), f"cudaMalloc({size})")
        # 0x3c3c as fp16 is 1.06: every product computes on the same nonzero values
        check(self.rt.cudaMemset(ptr, 0x3C, ctypes.c_size_t(size)), "cudaMemset")
        return ptr

    def free(self, ptr):
        check(self.rt.cudaFree(ptr), "cudaFree")

    def stream(self):
        s = ctypes.c_void_p()
        check(self.rt.cudaStreamCreate(ctypes.byref(s)), "cudaStreamCreate")
        return s

    def graph(self, stream, body):
        """A graph of what body enqueues on stream, instantiated."""
        check(self.rt.cudaStreamBeginCapture(stream, CAPTURE_MODE_RELAXED), "cudaStreamBeginCapture")
        body()
        graph, instance = ctypes.c_void_p(), ctypes.c_void_p()
        check(self.rt.cudaStreamEndCapture(stream, ctypes.byref(graph)), "cudaStreamEndCapture")
        check(self.rt.cudaGraphInstantiate(ctypes.byref(instance), graph, ctypes.c_ulonglong(0)),
              "cudaGraphInstantiate")
        return graph, instance

    def replay_ms(self, stream, instance, replays):
        """Milliseconds a replay of the graph takes, back to back, after one unmeasured replay."""
        start, end = ctypes.c_void_p(), ctypes.c_void_p()
        check(self.rt.cudaEventCreate(ctypes.byref(start)), "cudaEventCreate")
        check(self.rt.cudaEventCreate(ctypes.byref(end)), "cudaEventCreate")
        check(self.rt.cudaGraphLaunch(instance, stream), "cudaGraphLaunch")
        check(self.rt.cudaEventRecord(start, stream), "cudaEventRecord")
        for _ in range(replays):
            check(self.rt.cudaGraphLaunch(instance, stream), "cudaGraphLaunch")
        check(self.rt.cudaEventRecord(end, stream), "cudaEventRecord")
        check(self.rt.cudaEventSynchronize(end), "cudaEventSynchronize")
        ms = ctypes.c_float()
        check(self.rt.cudaEventElapsedTime(ctypes.byref(ms), start, end), "cudaEventElapsedTime")
        return ms.value / replays

    def drop_graph(self, graph, instance):
        self.rt.cudaGraphExecDestroy(instance)
        self.rt.cudaGraphDestroy(graph)


def library(directory, stem):
    """The one lib<stem>*.so.12 of a directory (DJL's bundle names them with a hash: libcublas-4cc45526.so.12)."""
    found = [p for p in glob.glob(os.path.join(directory, f"lib{stem}*.so.12"))
             if stem == "cublasLt" or "cublasLt" not in os.path.basename(p)]
    if len(found) != 1:
        raise SystemExit(f"expected one lib{stem}*.so.12 in {directory}, found {found}")
    return found[0]


def property_of(blas, kind):
    value = ctypes.c_int()
    check(blas.cublasGetProperty(kind, ctypes.byref(value)), "cublasGetProperty")
    return value.value


def time_library(cudart, directory, rows_list, bandwidth, peak, workspace_mib):
    cuda = Cuda(cudart)
    blas = ctypes.CDLL(library(directory, "cublas"))
    version = ".".join(str(property_of(blas, p)) for p in range(3))  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
    handle = ctypes.c_void_p()
    check(blas.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
    stream = cuda.stream()
    check(blas.cublasSetStream_v2(handle, stream), "cublasSetStream")
    workspace_bytes = workspace_mib << 20
    workspace = cuda.malloc(workspace_bytes)  # set ahead: a capture cannot allocate
    check(blas.cublasSetWorkspace_v2(handle, workspace, ctypes.c_size_t(workspace_bytes)), "cublasSetWorkspace")
    alpha, beta = ctypes.c_float(1.0), ctypes.c_float(0.0)
    for rows in rows_list:
        for name, (n, k) in SHAPES.items():
            if name == "lm_head" and rows > 4096:
                continue  # prefill takes logits at its prompts' last tokens only
            copies = 1 if name == "lm_head" else LAYERS
            weights = [cuda.malloc(n * k * 2) for _ in range(copies)]
            x, y = cuda.malloc(rows * k * 2), cuda.malloc(rows * n * 2)

            def body():
                for layer in range(LAYERS):
                    # y (rows, n) = x (rows, k) @ w (n, k)^T, as torch calls it: in cuBLAS's column-major terms
                    # y^T (n, rows) = op_T(w as a (k, n) matrix) @ (x as a (k, rows) matrix)
                    check(blas.cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, k, ctypes.byref(alpha),
                                            weights[layer % copies], CUDA_R_16F, k, x, CUDA_R_16F, k,
                                            ctypes.byref(beta), y, CUDA_R_16F, n, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT_TENSOR_OP), "cublasGemmEx")

            body()  # once outside the capture: cuBLAS's own first-call set-up
            graph, instance = cuda.graph(stream, body)
            replays = 3 if rows > 4096 else 50
            us = cuda.replay_ms(stream, instance, replays) * 1e3 / LAYERS
            cuda.drop_graph(graph, instance)
            for ptr in weights + [x, y]:
                cuda.free(ptr)
            flop = 2.0 * rows * n * k
            weight_bytes = 2.0 * n * k
            limit_us = max(weight_bytes / (bandwidth * 1e12), flop / (peak * 1e12)) * 1e6
            print(json.dumps({"cublas_version": version, "dir": directory, "rows": rows, "product": name,
                              "n": n, "k": k, "us": round(us, 2), "tflops": round(flop / us / 1e6, 1),
                              "weight_tb_per_s": round(weight_bytes / us / 1e6, 2),
                              "limit_us": round(limit_us, 2), "of_limit": round(limit_us / us, 3),
                              "workspace_mib": workspace_mib}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--cudart", required=True, help="a libcudart.so.12 (the bundle's libcudart-*.so.12)")
    ap.add_argument("--rows", default="256,32768")
    ap.add_argument("--bandwidth", type=float, default=4.8, help="TB/s (H200: 4.8)")
    ap.add_argument("--peak", type=float, default=989, help="dense fp16 TFLOP/s (H100, H200: 989)")
    ap.add_argument("--workspace-mib", type=int, default=32)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the child process for one directory
    args = ap.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    if args.one:
        time_library(args.cudart, args.dirs[0], rows, args.bandwidth, args.peak, args.workspace_mib)
        return
    for directory in args.dirs:  # each build in a process of its own: two cuBLAS 12 builds cannot share one
        subprocess.run([sys.executable, __file__, "--one", "--cudart", args.cudart, "--rows", args.rows,
                        "--bandwidth", str(args.bandwidth), "--peak", str(args.peak),
                        "--workspace-mib", str(args.workspace_mib), directory], check=True)


if __name__ == "__main__":
    main()
