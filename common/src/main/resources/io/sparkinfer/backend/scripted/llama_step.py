# One model step of a Llama-family causal LM (Llama, Qwen2, Mistral) as a TorchScript module: every layer,
# the final norm and the LM head in one call, so a decode step costs one JNI call instead of ~1,000.
#
# This file is TorchScript source in the form torch.jit.save writes it (code/__torch__.py of an archive);
# io.sparkinfer.torchscript.TorchScriptArchive zips it into a loadable module at run time, so the source here
# is the artifact: nothing binary is committed. It computes exactly what io.sparkinfer.model.CausalLm
# computes op by op (same KV cache layout, positions and masks); CI checks the two against each other.
#
# Dimensions: B rows, S new tokens per row, T key slots read, C cache slots, H hidden, N query heads,
# K key/value heads, D head dim, I MLP width, V vocab.
#
# params holds every weight by its Hugging Face name (io.sparkinfer.model.ModelWeights.stepParameters, whose
# keys io.sparkinfer.model.LayerParameter defines): model.embed_tokens.weight, model.norm.weight, lm_head.weight,
# and per layer model.layers.<i>. + input_layernorm.weight, self_attn.qkv_proj.weight (q, k, v stacked),
# self_attn.o_proj.weight, post_attention_layernorm.weight, mlp.gate_up_proj.weight (gate, up stacked),
# mlp.down_proj.weight, and the biases (.bias) a model has (absent keys: no bias).
# k_cache / v_cache hold one (B, C, K, D) tensor per layer, written in place: in the compute dtype, or uint8 for a
# float8 e4m3 cache (--kv-cache-dtype fp8).
# In fp8 (io.sparkinfer.model.Precision.FP8) the four projection weights are float8 e4m3 and each has a float32
# scale per output channel under its key + "_scale" ((1, out)); fp8_mm then quantizes the projection's input per
# row and multiplies with torch._scaled_mm on CUDA (fast accumulation, written in bf16), or emulates it in float32
# elsewhere (the same quantized values).
#
# A packed step is one line of tokens (B = 1, S = T > 1) that holds R rows' tokens back to back: last_index (R)
# gives the index in the line of each row's last token, and row r's tokens follow row r-1's. Prefill runs packed: no
# padding to the longest prompt. A single row reads the same either way.
# Row r (of B, or of R when packed) is written to and reads from cache row cache_rows[r] (increasing), or row r where
# cache_rows is empty: a prefill writes straight into the rows of a running batch.
#
# On CUDA in fp16/bf16 with flash on, decode steps (S = 1) and packed steps run variable-length flash attention: the
# cache reads as B (or R) packed sequences of C slots (B*C, K, D), each row uses only the slots written so far
# (seqused_k), causal from the bottom right (a row's i-th new token sees every slot before the row's new tokens and
# i more), and the kernel serves every query head of a group from its key/value head. Other steps run SDPA over
# the first key_length slots with an additive mask; a packed step then lays its rows out padded for it.
class LlamaStep(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.LlamaStep,
    input_ids: Tensor,
    positions: Tensor,
    last_index: Tensor,
    cache_rows: Tensor,
    key_length: int,
    params: Dict[str, Tensor],
    inv_freq: Tensor,
    k_cache: List[Tensor],
    v_cache: List[Tensor],
    windows: List[int],
    num_heads: int,
    num_kv_heads: int,
    head_dim: int,
    eps: float,
    use_flash: bool) -> Tensor:
    b = input_ids.size(0)
    s = input_ids.size(1)
    x = torch.embedding(params["model.embed_tokens.weight"], input_ids)  # (B, S) -> (B, S, H); updated in place below
    hidden = x.size(-1)
    rows_x = torch.view(x, [b * s, hidden])  # (B*S, H) view of x: the residual stream for in-place matmuls
    dtype = x.dtype
    # rotary angles in float32, per position: (B, S, 1) * (D/2) -> (B, S, D/2) -> (B, 1, S, D).
    # rotate_half(t) * sin == roll(t, D/2) * [-sin, sin], so a rotation is one roll and two multiplies.
    freqs = torch.mul(torch.unsqueeze(positions.float(), -1), inv_freq)
    half = head_dim // 2
    cos = torch.unsqueeze(torch.cos(torch.cat([freqs, freqs], -1)), 1).to(dtype)
    sin_half = torch.sin(freqs)
    sin = torch.unsqueeze(torch.cat([torch.neg(sin_half), sin_half], -1), 1).to(dtype)
    groups = num_heads // num_kv_heads
    capacity = k_cache[0].size(1)
    dev = input_ids.device
    packed = b == 1 and s > 1
    targeted = torch.numel(cache_rows) > 0  # row r goes to cache row cache_rows[r], not r
    flash = use_flash and input_ids.is_cuda and head_dim % 8 == 0 and (dtype == 5 or dtype == 15) and (s == 1 or packed)  # float16, bfloat16
    # attention's rows (B, or R when packed) and each row's query tokens (S; the widest row, at most key_length, when packed)
    ab = b
    aq = s
    rows = torch.unsqueeze(torch.arange(b, device=dev), 1)  # (B, 1): the cache row of each token
    if targeted:
      rows = torch.unsqueeze(cache_rows, 1)
    row_of = torch.zeros([s], dtype=4, device=dev)  # packed: (T) the row of each token  # int64
    col_of = torch.arange(s, device=dev)  # packed: (T) each token's index within its row
    query_pos = torch.unsqueeze(positions, -1)  # (AB, AQ, 1)
    cu_q = torch.arange(b + 1, dtype=3, device=dev)  # int32  # (B + 1): row r's queries are r .. r + 1 (decode)
    seqused = torch.add(torch.select(positions, 1, 0), 1).to(3)  # int32: (B, 1) -> (B): slots a row has written
    if packed:
      ab = last_index.size(0)
      aq = key_length
      ends = torch.add(last_index, 1)  # (R)
      lens = torch.sub(ends, torch.cat([torch.zeros([1], dtype=4, device=dev), torch.slice(ends, 0, 0, -1)]))
      row_of = torch.repeat_interleave(lens, output_size=s)  # (T)
      col_of = torch.sub(col_of, torch.index(torch.sub(ends, lens), [row_of]))
      rows = torch.unsqueeze(row_of, 0)  # (1, T)
      if targeted:
        rows = torch.unsqueeze(torch.index(cache_rows, [row_of]), 0)  # (1, T): each token's cache row
      cu_q = torch.cat([torch.zeros([1], dtype=4, device=dev), ends]).to(3)  # (R + 1)
      seqused = torch.add(torch.index(torch.select(positions, 0, 0), [last_index]), 1).to(3)  # (R)
      if not flash:
        # padded query positions for the masks: (R, AQ), padding at position 0 (it sees slot 0, its output is dropped)
        padded_pos = torch.zeros([ab, aq], dtype=4, device=dev)
        torch.index_put_(padded_pos, [row_of, col_of], torch.select(positions, 0, 0))
        query_pos = torch.unsqueeze(padded_pos, -1)
    cu_k = torch.mul(torch.arange(ab + 1, dtype=3, device=dev), capacity)  # row r's slots start at r*C
    if targeted:
      # row r's slots start at cache_rows[r]*C; with seqused_k flash reads cu_k[r] as a start only
      cu_k = torch.mul(torch.cat([cache_rows, torch.full([1], k_cache[0].size(0), dtype=4, device=dev)]), capacity).to(3)
    # visibility: query (r, j) sees slots 0..query_pos[r, j]; (T) vs (AB, AQ, 1) -> (AB, AQ, T) -> (AB, 1, AQ, T).
    # Masks are additive (0 or -inf) in the compute dtype, built once per step for every layer, over slots
    # padded to a multiple of 16 and sliced back, so SDPA's memory-efficient kernel takes them as they are.
    padded = 16
    mask_shape = [1, 1, 1, padded]  # flash steps use no mask
    if not flash:
      padded = (key_length + 15) // 16 * 16
      mask_shape = [ab, 1, groups * aq, padded]
    slots = torch.view(torch.arange(padded, device=dev), [1, 1, padded])
    causal = torch.le(slots, query_pos)
    zeros = torch.zeros(mask_shape, dtype=dtype, device=dev)
    full_mask = zeros
    if not flash:
      # the mask of each query row, repeated for the G query heads a key/value head serves: (AB, 1, G*AQ, T)
      full_mask = torch.slice(torch.masked_fill(zeros, torch.logical_not(torch.repeat(torch.unsqueeze(causal, 1), [1, 1, groups, 1])), float("-inf")), -1, 0, key_length)
    window_mask = full_mask
    mask_window = 0
    q_size = num_heads * head_dim
    kv_size = num_kv_heads * head_dim
    scaling = 1.0 / torch.sqrt(float(head_dim))
    for l in range(len(k_cache)):
      p = "model.layers." + str(l) + "."
      mask = full_mask
      if windows[l] > 0 and not flash:
        if windows[l] != mask_window:
          in_window = torch.logical_and(causal, torch.lt(torch.sub(query_pos, slots), windows[l]))
          window_mask = torch.slice(torch.masked_fill(zeros, torch.logical_not(torch.repeat(torch.unsqueeze(in_window, 1), [1, 1, groups, 1])), float("-inf")), -1, 0, key_length)
          mask_window = windows[l]
        mask = window_mask
      # attention
      xf = x.float()
      h = torch.mul(params[p + "input_layernorm.weight"], torch.mul(xf, torch.rsqrt(torch.add(torch.mean(torch.pow(xf, 2), [-1], True), eps))).to(dtype))
      if p + "self_attn.qkv_proj.weight_scale" in params:
        qkv = torch.view(self.fp8_mm(torch.view(h, [b * s, hidden]), params, p + "self_attn.qkv_proj", True), [b, s, -1])  # (B*S, H) -> (B, S, N*D + 2*K*D)
      elif p + "self_attn.qkv_proj.bias" in params:
        qkv = torch.linear(h, params[p + "self_attn.qkv_proj.weight"], params[p + "self_attn.qkv_proj.bias"])  # (B, S, N*D + 2*K*D)
      else:
        qkv = torch.linear(h, params[p + "self_attn.qkv_proj.weight"])
      # queries and keys rotated together: (B, S, (N+K)*D) -> (B, N+K, S, D)
      qk = torch.transpose(torch.view(torch.slice(qkv, -1, 0, q_size + kv_size), [b, s, num_heads + num_kv_heads, head_dim]), 1, 2)
      qk = torch.addcmul(torch.mul(qk, cos), torch.roll(qk, [half], [-1]), sin)
      q = torch.slice(qk, 1, 0, num_heads)  # (B, N, S, D)
      k = torch.slice(qk, 1, num_heads)  # (B, K, S, D)
      v = torch.transpose(torch.view(torch.slice(qkv, -1, q_size + kv_size, q_size + 2 * kv_size), [b, s, num_kv_heads, head_dim]), 1, 2)
      kc = k_cache[l]
      vc = v_cache[l]
      # in place at each row's positions: cache[rows, positions] is (B, S, K, D)
      if kc.dtype == 0:
        # uint8: a float8 e4m3 cache (--kv-cache-dtype fp8), written as our kernels write it (rounded, saturated at
        # 448) and read widened to the compute dtype: the whole cache, here (the kernels widen only what they read)
        torch.index_put_(kc, [rows, positions], self.e4m3_bytes(torch.transpose(k, 1, 2)))
        torch.index_put_(vc, [rows, positions], self.e4m3_bytes(torch.transpose(v, 1, 2)))
        kc = torch.view_copy(kc, dtype=24).to(dtype)  # float8_e4m3fn (B', C, K, D) -> the compute dtype
        vc = torch.view_copy(vc, dtype=24).to(dtype)
      else:
        torch.index_put_(kc, [rows, positions], torch.transpose(k, 1, 2))
        torch.index_put_(vc, [rows, positions], torch.transpose(v, 1, 2))
      if flash:
        packed_k = torch.view(kc, [kc.size(0) * capacity, num_kv_heads, head_dim])  # (B', C, K, D) -> (B'*C, K, D)
        packed_v = torch.view(vc, [vc.size(0) * capacity, num_kv_heads, head_dim])
        if packed:
          q1 = torch.transpose(torch.select(q, 0, 0), 0, 1)  # (1, N, T, D) -> (T, N, D): row r's queries at cu_q[r]..
          max_q = key_length  # at least the widest row's tokens (the kernel skips the blocks past a row's end)
        else:
          q1 = torch.select(q, 2, 0)  # (B, N, 1, D) -> (B, N, D): one query per packed sequence
          max_q = 1
        if windows[l] > 0:
          o, _0, _1, _2, _3 = torch._flash_attention_forward(q1, packed_k, packed_v, cu_q, cu_k, max_q, capacity, 0., packed, False, scale=scaling, window_size_left=windows[l] - 1, window_size_right=0, seqused_k=seqused)
        else:
          o, _0, _1, _2, _3 = torch._flash_attention_forward(q1, packed_k, packed_v, cu_q, cu_k, max_q, capacity, 0., packed, False, scale=scaling, seqused_k=seqused)
        o = torch.reshape(o, [b * s, q_size])  # (B*S, N, D) -> (B*S, N*D)
      else:
        row_k = torch.slice(kc, 0, 0, ab)  # the rows attended: rows 0 .. AB-1 (a view), or cache_rows
        row_v = torch.slice(vc, 0, 0, ab)
        if targeted:
          row_k = torch.index_select(kc, 0, cache_rows)  # (B', C, K, D) -> (AB, C, K, D): the rows attended
          row_v = torch.index_select(vc, 0, cache_rows)
        keys = torch.transpose(torch.slice(row_k, 1, 0, key_length), 1, 2)  # (AB, T, K, D) -> (AB, K, T, D)
        values = torch.transpose(torch.slice(row_v, 1, 0, key_length), 1, 2)
        if packed:
          # rows laid out padded: (1, N, T, D) -> (T, N, D) -> (R, AQ, N, D) -> (R, N, AQ, D)
          padded_q = torch.zeros([ab, aq, num_heads, head_dim], dtype=dtype, device=dev)
          torch.index_put_(padded_q, [row_of, col_of], torch.transpose(torch.select(q, 0, 0), 0, 1))
          q = torch.transpose(padded_q, 1, 2)
        # GQA without copying keys: each key/value head serves its G query heads as G*AQ queries,
        # (AB, N, AQ, D) -> (AB, K, G*AQ, D), with the mask repeated per group above.
        grouped = torch.reshape(q, [ab, num_kv_heads, groups * aq, head_dim])
        o = torch.scaled_dot_product_attention(grouped, keys, values, mask, 0., False, scale=scaling)
        o = torch.transpose(torch.reshape(o, [ab, num_heads, aq, head_dim]), 1, 2)  # (AB, K, G*AQ, D) -> (AB, N, AQ, D) -> (AB, AQ, N, D)
        if packed:
          o = torch.index(o, [row_of, col_of])  # (R, AQ, N, D) -> (T, N, D): the line's tokens back
        o = torch.reshape(o, [b * s, q_size])  # -> (B*S, N*D)
      # residual added by the matmul itself: x += o @ Wo^T
      if p + "self_attn.o_proj.weight_scale" in params:
        torch.add_(rows_x, self.fp8_mm(o, params, p + "self_attn.o_proj", False))
      else:
        torch.addmm_(rows_x, o, torch.t(params[p + "self_attn.o_proj.weight"]))
      if p + "self_attn.o_proj.bias" in params:
        torch.add_(x, params[p + "self_attn.o_proj.bias"])
      # MLP
      xf = x.float()
      h = torch.mul(params[p + "post_attention_layernorm.weight"], torch.mul(xf, torch.rsqrt(torch.add(torch.mean(torch.pow(xf, 2), [-1], True), eps))).to(dtype))
      if p + "mlp.gate_up_proj.weight_scale" in params:
        gate_up = torch.view(self.fp8_mm(torch.view(h, [b * s, hidden]), params, p + "mlp.gate_up_proj", True), [b, s, -1])  # (B*S, H) -> (B, S, 2*I)
      elif p + "mlp.gate_up_proj.bias" in params:
        gate_up = torch.linear(h, params[p + "mlp.gate_up_proj.weight"], params[p + "mlp.gate_up_proj.bias"])  # (B, S, 2*I)
      else:
        gate_up = torch.linear(h, params[p + "mlp.gate_up_proj.weight"])
      inter = torch.size(gate_up, -1) // 2
      act = torch.mul(torch.silu(torch.slice(gate_up, -1, 0, inter)), torch.slice(gate_up, -1, inter))
      if p + "mlp.down_proj.weight_scale" in params:
        torch.add_(rows_x, self.fp8_mm(torch.view(act, [b * s, inter]), params, p + "mlp.down_proj", False))  # x += act @ Wdown^T
      else:
        torch.addmm_(rows_x, torch.view(act, [b * s, inter]), torch.t(params[p + "mlp.down_proj.weight"]))  # x += act @ Wdown^T
      if p + "mlp.down_proj.bias" in params:
        torch.add_(x, params[p + "mlp.down_proj.bias"])
    last = torch.index(x, [torch.arange(b, device=dev), last_index])  # (B, S, H) -> (B, H); packed: (1, T, H) -> (R, H)
    lf = last.float()
    normed = torch.mul(params["model.norm.weight"], torch.mul(lf, torch.rsqrt(torch.add(torch.mean(torch.pow(lf, 2), [-1], True), eps))).to(dtype))
    return torch.linear(normed, params["lm_head.weight"]).float()  # (B, V)
  def e4m3_bytes(self: __torch__.LlamaStep,
    t: Tensor) -> Tensor:
    # t rounded to float8 e4m3 (to nearest even, saturated at +-448 as cvt.rn.satfinite does), as uint8 bytes
    return torch.view_copy(torch.clamp(t, -448., 448.).to(24), dtype=0)
  def fp8_mm(self: __torch__.LlamaStep,
    a: Tensor,
    params: Dict[str, Tensor],
    name: str,
    with_bias: bool) -> Tensor:
    # a @ W^T (+ name's bias, with_bias and the model has one) with W float8 (name's weight and weight_scale):
    # (M, in) -> (M, out) in bf16; without with_bias the caller adds the bias. a is quantized per row: scale =
    # max|a_row| / 448 (e4m3's largest finite value), q = a / scale in float8 e4m3; the product is rescaled by the
    # row's and the output channel's scales. On CUDA the bias is added inside _scaled_mm before the product is
    # rounded to bf16, as the fused steps' project_quantized adds it (fused_decode.py).
    w = params[name + ".weight"]  # (out, in) float8
    w_scale = params[name + ".weight_scale"]  # (1, out) float32
    scale = torch.clamp(torch.div(torch.linalg_vector_norm(a, float("inf"), [-1], True).float(), 448.), 1e-12)  # (M, 1) float32: max|row| / 448
    q = torch.div(a, scale).to(24)  # float32 -> float8_e4m3fn
    biased = with_bias and name + ".bias" in params
    if a.is_cuda:
      if biased:
        return torch._scaled_mm(q, torch.t(w), scale, w_scale, params[name + ".bias"], None, 15, True)  # bfloat16, fast accumulation
      return torch._scaled_mm(q, torch.t(w), scale, w_scale, None, None, 15, True)
    out = torch.mm(torch.mul(q.float(), scale), torch.t(torch.mul(w.float(), torch.t(w_scale)))).to(15)
    if biased:
      out = torch.add(out, params[name + ".bias"])
    return out
