"""Compiles the fused decode kernels (decode_kernels.cu) with NVRTC for each model shape and dtype the engine
may meet, and reports registers and spills of the attention kernel. Needs NVRTC but no GPU, so kernel
changes can be checked on any machine before a GPU run.

usage: python3 bench/compile_kernels.py --nvrtc-dir DIR [--arch sm_90] [--shapes 6x128,4x32,...]
  DIR holds libnvrtc*.so* and libnvrtc-builtins*.so*: DJL's CUDA libtorch directory (the GPU bundle's
  /tmp/g/libtorch, or extracted from it), or a CUDA toolkit's lib64.
  A shape is GROUPxHEAD_DIM (query heads per key/value head x head dim).
"""
import argparse
import ctypes
import glob
import os
import re
import sys

SOURCE = os.path.join(os.path.dirname(__file__), "..", "common", "src", "main", "resources", "io", "sparkinfer",
                      "backend", "fused", "decode_kernels.cu")
# Llama-2 (MHA), qwen2-tiny, the demo model, mistral-tiny, Llama-3 / Mistral, the bench model (Qwen2-1.5B),
# Qwen2-7B, Qwen2-0.5B, TinyLlama, Llama-3-70B, a wide group, a 256-wide head, a 96-wide head
DEFAULT_SHAPES = "1x128,2x16,3x64,4x32,4x128,6x128,7x128,7x64,8x64,8x128,16x128,5x256,12x96"


def load_nvrtc(directory):
    for builtins in glob.glob(os.path.join(directory, "libnvrtc-builtins*.so*")):
        ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)  # NVRTC opens it by soname when it compiles
    libs = [p for p in glob.glob(os.path.join(directory, "libnvrtc*.so*")) if "builtins" not in p]
    if not libs:
        sys.exit(f"no libnvrtc*.so* in {directory}")
    return ctypes.CDLL(libs[0])


def compile_once(nvrtc, source, options):
    prog = ctypes.c_void_p()
    if nvrtc.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"decode_kernels.cu", 0, None, None) != 0:
        raise RuntimeError("nvrtcCreateProgram failed")
    opts = [o.encode() for o in options]
    rc = nvrtc.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc, log.value.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nvrtc-dir", required=True)
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--shapes", default=DEFAULT_SHAPES)
    args = ap.parse_args()
    nvrtc = load_nvrtc(args.nvrtc_dir)
    source = open(SOURCE).read()
    failed = 0
    for shape in args.shapes.split(","):
        group, head_dim = shape.split("x")
        for dtype, extra in [("fp16", []), ("bf16", ["-DSPARKINFER_BF16"])]:
            options = [f"--gpu-architecture={args.arch}", "--ptxas-options=-v", f"-DGROUP={group}",
                       f"-DHEAD_DIM={head_dim}"] + extra
            rc, log = compile_once(nvrtc, source, options)
            details = []
            for kernel in ["decode_attention", "decode_attention_fp8", "decode_attention_wide"]:
                m = re.search(r"entry function '" + kernel + r"'.*?(\d+) bytes spill stores.*?Used (\d+) registers",
                              log, re.S)
                if m:
                    details.append(f"{kernel} {m.group(2)} registers, {m.group(1)} bytes spilled")
            detail = "; ".join(details)
            print(f"group {group:>2} head dim {head_dim:>3} {dtype}: {'ok' if rc == 0 else 'FAILED'} {detail}")
            if rc != 0:
                failed += 1
                print(log)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
