# The PyTorch parts of a fused decode step (io.sparkinfer.backend.fused.FusedDecodeStep): the embedding, the
# matrix multiplications and attention, one method each, called between the fused kernels of
# decode_kernels.cu while a CUDA graph captures the step. They compute what llama_step.py computes for a
# decode step (S = 1). TorchScript source in the form torch.jit.save writes it (see llama_step.py).
#
# Dimensions: B rows, H hidden, N query heads, K key/value heads, D head dim, C cache slots, V vocab.
# Projections are written into tensors the step keeps (out=), so the kernels after them read fixed addresses.
class FusedDecodeOps(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.FusedDecodeOps,
    input_ids: Tensor,
    table: Tensor,
    x: Tensor) -> Tensor:
    return self.embed(input_ids, table, x)
  def embed(self: __torch__.FusedDecodeOps,
    input_ids: Tensor,
    table: Tensor,
    x: Tensor) -> Tensor:
    # x = table[input_ids]: (B, 1) ids -> (B, H)
    return torch.index_select(table, 0, torch.view(input_ids, [-1]), out=x)
  def attention_inputs(self: __torch__.FusedDecodeOps,
    positions: Tensor,
    capacity: int) -> Tuple[Tensor, Tensor, Tensor]:
    # flash attention's packed sequences: row r reads cache slots r*C .. r*C + positions[r]
    b = positions.size(0)
    cu_q = torch.arange(b + 1, dtype=3, device=positions.device)  # int32  # (B + 1)
    cu_k = torch.mul(cu_q, capacity)
    seqused = torch.add(torch.select(positions, 1, 0), 1).to(3)  # int32: (B, 1) -> (B)
    return (seqused, cu_q, cu_k)
  def project(self: __torch__.FusedDecodeOps,
    h: Tensor,
    weight: Tensor,
    bias: Tensor,
    out: Tensor) -> Tensor:
    # out = h @ weight^T + bias: (B, in) -> (B, out); an absent bias is an empty tensor
    if torch.numel(bias) > 0:
      return torch.addmm(bias, h, torch.t(weight), out=out)
    return torch.mm(h, torch.t(weight), out=out)
  def add_projection(self: __torch__.FusedDecodeOps,
    a: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Tensor) -> Tensor:
    # the residual stream in place: x += a @ weight^T + bias, (B, in) -> (B, H)
    torch.addmm_(x, a, torch.t(weight))
    if torch.numel(bias) > 0:
      torch.add_(x, bias)
    return x
  def attend(self: __torch__.FusedDecodeOps,
    qkv: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    seqused: Tensor,
    cu_q: Tensor,
    cu_k: Tensor,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    window: int,
    scale: float) -> Tensor:
    # each row's query heads over its written slots, as llama_step.py's flash decode: (B, N*D)
    b = qkv.size(0)
    capacity = k_cache.size(1)
    q = torch.view(torch.slice(qkv, 1, 0, num_heads * head_dim), [b, num_heads, head_dim])  # (B, N*D) -> (B, N, D)
    packed_k = torch.view(k_cache, [b * capacity, num_kv_heads, head_dim])  # (B, C, K, D) -> (B*C, K, D)
    packed_v = torch.view(v_cache, [b * capacity, num_kv_heads, head_dim])
    if window > 0:
      o, _0, _1, _2, _3 = torch._flash_attention_forward(q, packed_k, packed_v, cu_q, cu_k, 1, capacity, 0., False, False, scale=scale, window_size_left=window - 1, window_size_right=0, seqused_k=seqused)
    else:
      o, _0, _1, _2, _3 = torch._flash_attention_forward(q, packed_k, packed_v, cu_q, cu_k, 1, capacity, 0., False, False, scale=scale, seqused_k=seqused)
    return torch.reshape(o, [b, num_heads * head_dim])  # (B, N, D) -> (B, N*D)
  def head(self: __torch__.FusedDecodeOps,
    h: Tensor,
    lm_head: Tensor) -> Tensor:
    # logits of the normed hidden states in the compute dtype: (B, H) -> (B, V); the greedy argmax reads them
    # as they are, and DecodeGraphs casts them to float32 only for steps that sample
    return torch.mm(h, torch.t(lm_head))
