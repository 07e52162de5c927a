# Tensor creation, casts and copies that DJL cannot do itself, as a TorchScript module (the form
# torch.jit.save writes; io.sparkinfer.torchscript.TorchScriptArchive zips it at run time). DJL 0.33's JNI
# aborts the JVM when it creates or casts a bfloat16 tensor, but libtorch makes them here and DJL ops then
# read them. Tensors made here are inference tensors (DJL runs modules in inference mode), which may be
# updated in place only in inference mode, so in-place copies into them run here too.
#
# op 0: a cast to dtype; op 1: zeros of shape and dtype on a's device; op 2: a[rows, :length] = b[:, :length]
# in place, returning a; op 3: the float8 e4m3 scales of a (out, in) weight's rows, max|row| / 448 as (1, out)
# float32; op 4: a / b^T in float8 e4m3 (a weight quantized by op 3's scales); op 5: a's uint8 bytes read as float8
# e4m3 values, cast to dtype (a float8 KV cache). dtype is a libtorch ScalarType number:
# 5 float16, 6 float32, 15 bfloat16, 24 float8_e4m3fn.
class TensorOps(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.TensorOps,
    a: Tensor,
    b: Tensor,
    rows: Tensor,
    op: int,
    dtype: int,
    length: int,
    shape: List[int]) -> Tensor:
    if op == 0:
      return a.to(dtype)
    if op == 1:
      return torch.zeros(shape, dtype=dtype, layout=None, device=a.device)
    if op == 3:
      return torch.unsqueeze(torch.clamp(torch.div(torch.amax(torch.abs(a.float()), [1]), 448.), 1e-12), 0)
    if op == 4:
      return torch.div(a.float(), torch.t(b)).to(24)
    if op == 5:
      return torch.view_copy(a, dtype=24).to(dtype)
    # (R) rows of a (B, C, ...) tensor, first length slots, from b's (R, C', ...) or one row of b for all R: whole
    # rows copied by index_copy_ (an index per row, not per element as index_put_ would take)
    src = torch.slice(b, 1, 0, length)
    if src.size(0) != rows.size(0):
      src = torch.expand(src, [rows.size(0)] + torch.size(src)[1:])  # (1, length, ...) -> (R, length, ...)
    torch.index_copy_(torch.slice(a, 1, 0, length), 0, rows, src)
    return a
