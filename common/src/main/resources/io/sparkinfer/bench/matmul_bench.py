# The projections' matrix multiplications alone, for io.sparkinfer.bench.MatmulBench, in libtorch as the engine runs
# them. TorchScript source in the form torch.jit.save writes it (see backend/scripted/llama_step.py).
#
# a: (M, K) activations; ws: copies of one (N, K) weight, distinct tensors so that no product repeats another (the
# JIT's common subexpression elimination would merge identical products of an unrolled loop) and the weights do not
# stay in L2. Each repetition multiplies a by every copy and adds the product's first element to a float32 sum, so
# reading the sum waits for every product and every product is used.
#
# kind 0: torch.mm (fp16 or bf16, as a and ws are); float8 e4m3 a and ws through torch._scaled_mm with
# kind 1: row-wise scales, a_scale (M, 1), w_scales[i] (1, N), bf16 out, fast accumulation;
# kind 2: the same, float32 accumulation;
# kind 3: tensor-wise scales (one float32 each), bf16 out, fast accumulation;
# kind 4: tensor-wise scales, fp16 out, fast accumulation.
class MatmulBench(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.MatmulBench,
    a: Tensor,
    ws: List[Tensor],
    a_scale: Tensor,
    w_scales: List[Tensor],
    reps: int,
    kind: int) -> Tensor:
    acc = torch.zeros([1, 1], dtype=6, layout=None, device=a.device)
    for r in range(reps):
      for i in range(len(ws)):
        w = ws[i]
        if kind == 0:
          out = torch.mm(a, torch.t(w))
        elif kind == 1:
          out = torch._scaled_mm(a, torch.t(w), a_scale, w_scales[i], None, None, 15, True)
        elif kind == 2:
          out = torch._scaled_mm(a, torch.t(w), a_scale, w_scales[i], None, None, 15, False)
        elif kind == 3:
          out = torch._scaled_mm(a, torch.t(w), a_scale, w_scales[i], None, None, 15, True)
        else:
          out = torch._scaled_mm(a, torch.t(w), a_scale, w_scales[i], None, None, 5, True)
        acc = torch.add(acc, torch.slice(torch.slice(out, 0, 0, 1), 1, 0, 1).float())
    return acc
