"""The engine's decode step as io.sparkinfer.bench.StepPlan describes it, for the Python kernel tools: the model's
dimensions, every step parameter by name and shape, the TorchScript archives the engine builds from its own
sources, the kernel source with the engine's NVRTC options, and each kernel's launch at each batch size. The
tools read these instead of repeating the engine's Java logic.

Write a plan with the engine's classpath (submit/bench.sh writes OUT/plan.json):
    java -cp ENGINE_CP io.sparkinfer.bench.StepPlan --model DIR --out PLAN.json [--batch-sizes 1,64,256]
"""
import json
import os

import torch


class StepPlan:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        with open(self.path) as f:
            self.data = json.load(f)
        m = self.data["model"]
        self.layers = m["layers"]
        self.hidden = m["hidden_size"]
        self.heads = m["num_heads"]
        self.kv_heads = m["num_kv_heads"]
        self.head_dim = m["head_dim"]
        self.intermediate = m["intermediate_size"]
        self.vocab = m["vocab_size"]
        self.eps = m["rms_norm_eps"]
        self.capacity = self.data["capacity"]

    def file(self, name):
        """A file the plan wrote beside itself: llama_step, fused_decode (archives), decode_kernels (source)."""
        return os.path.join(os.path.dirname(self.path), self.data["files"][name])

    def kernel_source(self):
        with open(self.file("decode_kernels")) as f:
            return f.read()

    def nvrtc_options(self):
        """The options the engine compiles the kernels with (group size, head dim, dtype)."""
        return list(self.data["nvrtc_options"])

    def launch(self, batch):
        """Each kernel's grid and block at this batch size, the attention kernel and its splits."""
        launches = self.data["launches"]
        if str(batch) not in launches:
            raise SystemExit(f"the plan has no launches for batch {batch} (it has {sorted(launches, key=int)}); "
                             f"write it with --batch-sizes including {batch}")
        return launches[str(batch)]

    @staticmethod
    def key(layer, name):
        """A layer parameter's key, as io.sparkinfer.model.LayerParameter names it."""
        return f"model.layers.{layer}.{name}"

    def weights(self, dev, dtype):
        """Random weights of every step parameter the plan lists, by name (norm weights near 1), made on dev
        (seed torch first for the same weights each run)."""
        out = {}
        for name, shape in self.data["parameters"].items():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                t = 1 + 0.1 * torch.randn(*shape, device=dev)
            else:
                t = 0.02 * torch.randn(*shape, device=dev)
            out[name] = t.to(dtype)
        return out

    def inv_freq(self, dev, theta=10000.0):
        d = self.head_dim
        return 1.0 / (theta ** (torch.arange(0, d, 2, device=dev).float() / d))
