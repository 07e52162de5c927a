# The projections' matrix multiplications alone, repeated, for io.sparkinfer.bench.MatmulBench: fp16 (or bf16)
# torch.mm against float8 torch._scaled_mm with row-wise scales (the fp8 precision's), in libtorch as the engine runs
# them. TorchScript source in the form torch.jit.save writes it (see backend/scripted/llama_step.py).
#
# a: (M, K) activations, w: (N, K) weights; for fp8 both float8 e4m3 with a_scale (M, 1), w_scale (1, N) float32.
# Returns one element of the last product, so reading it waits for every repetition.
class MatmulBench(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.MatmulBench,
    a: Tensor,
    w: Tensor,
    a_scale: Tensor,
    w_scale: Tensor,
    reps: int,
    fp8: bool,
    fast_accum: bool) -> Tensor:
    out = torch.zeros([1, 1], dtype=6, layout=None, device=a.device)
    for i in range(reps):
      if fp8:
        out = torch._scaled_mm(a, torch.t(w), a_scale, w_scale, None, None, 15, fast_accum)
      else:
        out = torch.mm(a, torch.t(w))
    return torch.slice(torch.slice(out, 0, 0, 1), 1, 0, 1).float()
