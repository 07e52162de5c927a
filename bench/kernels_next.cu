// Kernels under measurement (bench/fused_step.py --next, --attention-variants), beside decode_kernels.cu: none are
// waiting to replace a kernel now (silu_mul_v2, rotary_cache_write_v2 and decode_attention_v3 became silu_mul,
// rotary_cache_write and decode_attention). What is left is a probe.
//
// Same conventions as decode_kernels.cu: storage is float16, or bfloat16 with -DSPARKINFER_BF16; no headers
// (NVRTC alone); every parameter is 8 bytes (pointers, long long, double). Compiled appended to decode_kernels.cu,
// whose helpers it uses.
//
//   cache_read_bound        loads what decode attention reads and nothing else: the bandwidth its access pattern
//                           can reach

// ------------------------------------------------------------------------------------------------------------
// cache_read_bound: reads what decode attention reads (slots [0, positions[b] + 1) of row b, every key/value head,
// keys and values) with 16-byte loads and nothing else, for the bandwidth this access pattern can reach.
// Block (b, split): slots [split * split_size, ..) of row b; k_cache, v_cache: (B, C, K, D); sink: (B * Z) floats.
extern "C" __global__ void cache_read_bound(const storage_t* k_cache, const storage_t* v_cache,
                                           const long long* positions, float* sink, long long row_chunks,
                                           long long capacity, long long split_size) {
  const long long b = blockIdx.x;
  const long long begin = blockIdx.y * split_size;
  const long long end = min_ll(positions[b] + 1, begin + split_size);
  float acc = 0.f;
  if (begin < end) {
    const Chunk* k = reinterpret_cast<const Chunk*>(k_cache) + (b * capacity + begin) * row_chunks;
    const Chunk* v = reinterpret_cast<const Chunk*>(v_cache) + (b * capacity + begin) * row_chunks;
    const long long n = (end - begin) * row_chunks;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
      Chunk a = k[i];
      Chunk c = v[i];
      acc += __uint_as_float(a.a ^ c.b) + __uint_as_float(a.c ^ c.d);
    }
  }
  if (acc == 12345.f) {
    sink[blockIdx.x * gridDim.y + blockIdx.y] = acc;  // never, in practice: keeps the loads
  }
}
