# The PyTorch parts of a fused decode step (io.sparkinfer.backend.fused.FusedDecodeStep): the embedding, the
# matrix multiplications and attention, one method each, called between the fused kernels of
# decode_kernels.cu while a CUDA graph captures the step. They compute what llama_step.py computes for a
# decode step (S = 1). A fused packed prefill step (io.sparkinfer.backend.fused.FusedPrefillStep) calls the same
# projections and the packed_ methods, as plain calls. TorchScript source in the form torch.jit.save writes it
# (see llama_step.py).
#
# Dimensions: B rows, H hidden, N query heads, K key/value heads, D head dim, C cache slots, V vocab; a packed
# prefill line has T tokens of R rows.
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
    # out = h @ weight^T + bias: (B, in) -> (B, out); an absent bias is an empty tensor (float8 weights: project_quantized)
    if torch.numel(bias) > 0:
      return torch.addmm(bias, h, torch.t(weight), out=out)
    return torch.mm(h, torch.t(weight), out=out)
  def add_projection(self: __torch__.FusedDecodeOps,
    a: Tensor,
    x: Tensor,
    weight: Tensor,
    bias: Tensor) -> Tensor:
    # the residual stream in place: x += a @ weight^T + bias, (B, in) -> (B, H) (float8 weights: project_quantized into QuantizedRows' update)
    torch.addmm_(x, a, torch.t(weight))
    if torch.numel(bias) > 0:
      torch.add_(x, bias)
    return x
  def scaled_mm(self: __torch__.FusedDecodeOps,
    q: Tensor,
    q_scale: Tensor,
    weight: Tensor,
    weight_scale: Tensor) -> Tensor:
    # (q * q_scale) @ (weight * weight_scale)^T in bf16, q (M, in) and weight (out, in) float8, scales (M, 1) and
    # (1, out) float32: torch._scaled_mm on CUDA (fast accumulation), emulated in float32 elsewhere
    if q.is_cuda:
      return torch._scaled_mm(q, torch.t(weight), q_scale, weight_scale, None, None, 15, True)  # bfloat16, fast accumulation
    return torch.mm(torch.mul(q.float(), q_scale), torch.t(torch.mul(weight.float(), torch.t(weight_scale)))).to(15)
  def project_quantized(self: __torch__.FusedDecodeOps,
    q: Tensor,
    q_scale: Tensor,
    weight: Tensor,
    weight_scale: Tensor,
    bias: Tensor,
    out: Tensor) -> Tensor:
    # out = (q * q_scale) @ weight^T + bias for an input our kernels quantized (rms_norm_fp8): (B, in) -> (B, out);
    # on CUDA the product and the bias are written into out itself (no (B, out) temporary, copy or separate add)
    if q.is_cuda:
      if torch.numel(bias) > 0:
        torch._scaled_mm(q, torch.t(weight), torch.view(q_scale, [-1, 1]), weight_scale, bias, None, 15, True, out=out)
      else:
        torch._scaled_mm(q, torch.t(weight), torch.view(q_scale, [-1, 1]), weight_scale, None, None, 15, True, out=out)
      return out
    torch.copy_(out, self.scaled_mm(q, torch.view(q_scale, [-1, 1]), weight, weight_scale))
    if torch.numel(bias) > 0:
      torch.add_(out, bias)
    return out
  def add_into(self: __torch__.FusedDecodeOps,
    x: Tensor,
    update: Tensor) -> Tensor:
    # the residual stream in place: x += update, (B, H) (fp8's last down projection, io.sparkinfer.backend.fused.QuantizedRows)
    return torch.add_(x, update)
  def empty_fp8(self: __torch__.FusedDecodeOps,
    like: Tensor,
    rows: int,
    cols: int) -> Tensor:
    # an uninitialised (rows, cols) float8 e4m3 tensor on like's device (DJL cannot make one)
    return torch.empty([rows, cols], dtype=24, layout=None, device=like.device)
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
    return self.varlen_attend(qkv, k_cache, v_cache, seqused, cu_q, cu_k, 1, False, num_heads, num_kv_heads, head_dim, window, scale)
  def head(self: __torch__.FusedDecodeOps,
    h: Tensor,
    lm_head: Tensor) -> Tensor:
    # logits of the normed hidden states in the compute dtype: (B, H) -> (B, V); the greedy argmax reads them
    # as they are, and DecodeGraphs casts them to float32 only for steps that sample
    return torch.mm(h, torch.t(lm_head))
  def empty(self: __torch__.FusedDecodeOps,
    like: Tensor,
    rows: int,
    cols: int) -> Tensor:
    # an uninitialised (rows, cols) tensor of like's dtype on its device (a packed step's buffers; DJL cannot make
    # bfloat16 ones)
    return torch.empty([rows, cols], dtype=like.dtype, layout=None, device=like.device)
  def packed_attention_inputs(self: __torch__.FusedDecodeOps,
    positions: Tensor,
    last_index: Tensor,
    cache_rows: Tensor,
    capacity: int,
    cache_batch: int) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    # a packed line's rows as flash attention's packed sequences, as llama_step.py: row r's queries are line
    # tokens cu_q[r] .. cu_q[r + 1], its keys slots cache_rows[r]*C .. cache_rows[r]*C + seqused[r] of a cache of
    # cache_batch rows (cache_rows empty: row r); each token's cache row (T); and each row's cache row (R). With
    # seqused_k, flash reads cu_k[r] as a start only, so rows need not be neighbours.
    t = positions.size(1)
    dev = positions.device
    ends = torch.add(last_index, 1)  # (R)
    starts = torch.cat([torch.zeros([1], dtype=4, device=dev), torch.slice(ends, 0, 0, -1)])  # int64
    rows = cache_rows
    if torch.numel(cache_rows) == 0:
      rows = torch.arange(last_index.size(0), dtype=4, device=dev)  # (R) int64
    token_rows = torch.repeat_interleave(rows, torch.sub(ends, starts), 0, output_size=t)  # (R) -> (T)
    cu_q = torch.cat([torch.zeros([1], dtype=4, device=dev), ends]).to(3)  # int32  # (R + 1)
    cu_k = torch.mul(torch.cat([rows, torch.full([1], cache_batch, dtype=4, device=dev)]), capacity).to(3)  # (R + 1)
    seqused = torch.add(torch.index(torch.select(positions, 0, 0), [last_index]), 1).to(3)  # (R): slots written
    return (seqused, cu_q, cu_k, token_rows, rows)
  def packed_attend(self: __torch__.FusedDecodeOps,
    qkv: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    seqused: Tensor,
    cu_q: Tensor,
    cu_k: Tensor,
    max_q: int,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    window: int,
    scale: float) -> Tensor:
    # each row's tokens over its written slots, causal from the bottom right, as llama_step.py's packed step
    return self.varlen_attend(qkv, k_cache, v_cache, seqused, cu_q, cu_k, max_q, True, num_heads, num_kv_heads, head_dim, window, scale)
  def packed_attend_float8(self: __torch__.FusedDecodeOps,
    qkv: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    rows: Tensor,
    seqused: Tensor,
    cu_q: Tensor,
    max_q: int,
    key_length: int,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    window: int,
    scale: float) -> Tensor:
    # packed_attend over a float8 e4m3 cache (uint8 bytes, --kv-cache-dtype fp8), which flash attention cannot read:
    # the line's R rows' first key_length slots (1 + the line's largest position) widened to qkv's dtype, then flash
    # attention over them as R packed sequences of key_length slots: (T, N*D)
    keys = torch.index_select(torch.slice(k_cache, 1, 0, key_length), 0, rows)  # (B', C, K, D) -> (R, L, K, D) bytes
    values = torch.index_select(torch.slice(v_cache, 1, 0, key_length), 0, rows)
    wide_k = torch.view_copy(keys, dtype=24).to(qkv.dtype)  # float8_e4m3fn -> the compute dtype
    wide_v = torch.view_copy(values, dtype=24).to(qkv.dtype)
    cu_k = torch.mul(torch.arange(rows.size(0) + 1, dtype=3, device=rows.device), key_length)  # int32  # (R + 1)
    return self.varlen_attend(qkv, wide_k, wide_v, seqused, cu_q, cu_k, max_q, True, num_heads, num_kv_heads, head_dim, window, scale)
  def packed_attend_line(self: __torch__.FusedDecodeOps,
    qkv: Tensor,
    cu_q: Tensor,
    max_q: int,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    window: int,
    scale: float) -> Tensor:
    # a line whose rows all start at position 0 over a float8 cache: each row's tokens over the line's own rotated
    # keys and values (rotary_cache_write_packed_fp8 keeps the rotated keys in qkv), causal, rather than over its
    # cache slots widened: (T, N*D)
    t = qkv.size(0)
    q = torch.view(torch.slice(qkv, 1, 0, num_heads * head_dim), [t, num_heads, head_dim])  # (T, N*D) -> (T, N, D)
    k = torch.view(torch.slice(qkv, 1, num_heads * head_dim, (num_heads + num_kv_heads) * head_dim), [t, num_kv_heads, head_dim])  # (T, K*D) -> (T, K, D)
    v = torch.view(torch.slice(qkv, 1, (num_heads + num_kv_heads) * head_dim, (num_heads + 2 * num_kv_heads) * head_dim), [t, num_kv_heads, head_dim])
    if window > 0:
      o, _0, _1, _2, _3 = torch._flash_attention_forward(q, k, v, cu_q, cu_q, max_q, max_q, 0., True, False, scale=scale, window_size_left=window - 1, window_size_right=0)
    else:
      o, _0, _1, _2, _3 = torch._flash_attention_forward(q, k, v, cu_q, cu_q, max_q, max_q, 0., True, False, scale=scale)
    return torch.contiguous(torch.reshape(o, [t, num_heads * head_dim]))  # (T, N, D) -> (T, N*D)
  def varlen_attend(self: __torch__.FusedDecodeOps,
    qkv: Tensor,
    k_cache: Tensor,
    v_cache: Tensor,
    seqused: Tensor,
    cu_q: Tensor,
    cu_k: Tensor,
    max_q: int,
    causal: bool,
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    window: int,
    scale: float) -> Tensor:
    # variable-length flash attention: the rotated queries of qkv's lines (T lines: B rows of one token, or a packed
    # line), row r's queries cu_q[r] .. cu_q[r + 1] over its cache row's first seqused[r] slots: (T, N*D)
    t = qkv.size(0)
    rows = k_cache.size(0)
    capacity = k_cache.size(1)
    q = torch.view(torch.slice(qkv, 1, 0, num_heads * head_dim), [t, num_heads, head_dim])  # (T, N*D) -> (T, N, D)
    packed_k = torch.view(k_cache, [rows * capacity, num_kv_heads, head_dim])  # the cache's (B', C, K, D) -> (B'*C, K, D)
    packed_v = torch.view(v_cache, [rows * capacity, num_kv_heads, head_dim])
    if window > 0:
      o, _0, _1, _2, _3 = torch._flash_attention_forward(q, packed_k, packed_v, cu_q, cu_k, max_q, capacity, 0., causal, False, scale=scale, window_size_left=window - 1, window_size_right=0, seqused_k=seqused)
    else:
      o, _0, _1, _2, _3 = torch._flash_attention_forward(q, packed_k, packed_v, cu_q, cu_k, max_q, capacity, 0., causal, False, scale=scale, seqused_k=seqused)
    # (T, N, D) -> (T, N*D), rows back to back (quantize_fp8 reads them so; a no-op when flash wrote them so)
    return torch.contiguous(torch.reshape(o, [t, num_heads * head_dim]))
  def packed_last(self: __torch__.FusedDecodeOps,
    x: Tensor,
    last_index: Tensor) -> Tensor:
    # each row's last token of the line: (T, H) -> (R, H)
    return torch.index_select(x, 0, last_index)
  def logits(self: __torch__.FusedDecodeOps,
    h: Tensor,
    lm_head: Tensor) -> Tensor:
    # float32 logits of the normed hidden states, as llama_step.py returns them: (R, H) -> (R, V)
    return torch.mm(h, torch.t(lm_head)).float()
