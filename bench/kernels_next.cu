// Next versions of kernels of decode_kernels.cu, for measurement (bench/fused_step.py --next) before they replace
// the originals: each v2 kernel computes exactly what its original computes, rounding where it rounds.
//
// Same conventions as decode_kernels.cu: storage is float16, or bfloat16 with -DSPARKINFER_BF16; arithmetic is
// float32; no headers (NVRTC alone); every parameter is 8 bytes (pointers, long long, double); the attention
// kernels need -DGROUP= (query heads per key/value head) and -DHEAD_DIM= (head dim) at compile time.
//
// Dimensions: B rows, H hidden, N query heads, K key/value heads, D head dim, C cache slots, I MLP width.
//
//   silu_mul_v2             silu_mul, 8 elements (16-byte loads of gate and up) per thread, a flat grid
//   rotary_cache_write_v2   rotary_cache_write, a block per row (or a part of its heads), cos/sin once per
//                           (row, frequency) in shared memory, 16-byte loads and stores
//   decode_attention_v2     decode_attention + decode_attention_combine in one kernel: the last split block of
//                           a (row, kv head) to finish merges the group's splits
//
// It is compiled appended to decode_kernels.cu (bench/fused_step.py --next), whose helpers and attention code
// (attention_split) it uses.


// ------------------------------------------------------------------------------------------------------------
// silu_mul_v2: out = silu(gate) * up as silu_mul, gate_up: (B, 2I) rows [gate | up], out: (B, I).
// silu(g) = g / (1 + exp(-g)) rounded to the storage type, then the product rounded (the expression of silu_mul).
// Thread t of the flat grid computes out elements 8t .. 8t + 7 of the (B, I) output seen as one array.
// When I % 8 == 0 and gate_up and out are 16-byte aligned (the engine's buffers) those 8 are one 16-byte chunk of
// one row: one 16-byte load of gate, one of up, one 16-byte store. Otherwise element by element (same values).
// Grid (ceil(B * I / 8 / blockDim.x)), block a multiple of 32 (256), no shared memory; B * I < 2^32 * 8.
extern "C" __global__ void silu_mul_v2(const storage_t* gate_up, storage_t* out, long long inter, long long rows) {
  const unsigned long long t = blockIdx.x * (unsigned long long) blockDim.x + threadIdx.x;
  const unsigned long long total = (unsigned long long) rows * (unsigned long long) inter;
  if (8 * t >= total) {
    return;
  }
  const bool chunked = inter % 8 == 0 && (((unsigned long long) gate_up | (unsigned long long) out) & 15) == 0;
  if (chunked) {  // the same for the whole grid
    const unsigned chunks = (unsigned) (inter / 8);  // per row
    const unsigned r = (unsigned) t / chunks;         // t < 2^32: B I / 8 chunks
    const unsigned c = (unsigned) t - r * chunks;
    const Chunk* gate_row = reinterpret_cast<const Chunk*>(gate_up + (unsigned long long) r * 2 * inter);
    Pack g, u, o;
    g.chunk = gate_row[c];
    u.chunk = gate_row[chunks + c];
#pragma unroll
    for (int k = 0; k < 8; k++) {
      float gv = load(g.h[k]);
      float uv = load(u.h[k]);
      o.h[k] = store(rounded(gv / (1.f + expf(-gv))) * uv);
    }
    reinterpret_cast<Chunk*>(out)[t] = o.chunk;
    return;
  }
  for (unsigned long long e = 8 * t; e < 8 * t + 8 && e < total; e++) {
    const unsigned long long r = e / (unsigned long long) inter;
    const unsigned long long c = e - r * inter;
    float gv = load(gate_up[r * 2 * inter + c]);
    float uv = load(gate_up[r * 2 * inter + inter + c]);
    out[e] = store(rounded(gv / (1.f + expf(-gv))) * uv);
  }
}

// ------------------------------------------------------------------------------------------------------------
// rotary_cache_write_v2: rotary_cache_write's results (queries rotated in place in qkv, rotated keys and the
// values written to slot positions[b] of the caches), the work of a row shared by a block.
// qkv: (B, (N + 2K) * D) rows [q heads | k heads | v heads]; positions: (B) int64; inv_freq: (D/2) float32;
// k_cache, v_cache: (B, C, K, D). cos and sin of position * inv_freq[i] (cosf, sinf in float32, rounded to the
// storage type) are computed once per (row, frequency) into shared memory and used for every head; the rotation
// is rotary_cache_write's expression, out[i] = x[i] c - x[i + D/2] s, out[i + D/2] = x[i + D/2] c + x[i] s.
// Work items of a row: when D % 16 == 0 and qkv, k_cache, v_cache are 16-byte aligned, item (head, j) of the
// (N + 2K) * D/16 items takes the 16-byte chunks of dims 8j .. 8j + 7 and D/2 + 8j .. (8 pairs, one load and
// one store of 16 bytes each per half); otherwise item (head, i) of the (N + 2K) * D/2 items takes dims i, D/2 + i.
// Block (b, y) takes items y * blockDim.x + threadIdx.x, strided by gridDim.y * blockDim.x.
// Grid (B, Y) (Y = 1, or 2..4 for more blocks at small B), block a multiple of 32 (128: all 128 items of the
// Qwen2-1.5B row with Y = 1), static shared memory 2 KB; D <= 512.
#define ROTARY_MAX_HALF 256
extern "C" __global__ void rotary_cache_write_v2(storage_t* qkv, const long long* positions, const float* inv_freq,
                                                 storage_t* k_cache, storage_t* v_cache, long long num_heads,
                                                 long long num_kv_heads, long long head_dim, long long capacity) {
  __shared__ float cos_s[ROTARY_MAX_HALF];
  __shared__ float sin_s[ROTARY_MAX_HALF];
  const long long b = blockIdx.x;
  const int half = (int) (head_dim / 2);
  const int heads = (int) (num_heads + 2 * num_kv_heads);
  const long long position = positions[b];
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float angle = (float) position * inv_freq[i];
    cos_s[i] = rounded(cosf(angle));
    sin_s[i] = rounded(sinf(angle));
  }
  __syncthreads();
  storage_t* row = qkv + b * heads * head_dim;
  const long long slot = (b * capacity + position) * num_kv_heads;  // cache row of kv head 0 at the slot
  const int stride = gridDim.y * blockDim.x;
  const bool chunked = head_dim % 16 == 0 &&
                       (((unsigned long long) qkv | (unsigned long long) k_cache | (unsigned long long) v_cache) & 15) == 0;
  if (chunked) {  // the same for the whole grid
    const int per_head = half / 8;  // chunk pairs per head
    for (int item = blockIdx.y * blockDim.x + threadIdx.x; item < heads * per_head; item += stride) {
      const int head = item / per_head;
      const int i0 = 8 * (item - head * per_head);  // first dim of the chunk in the first half
      storage_t* src = row + (long long) head * head_dim + i0;
      Pack x1, x2;
      x1.chunk = *reinterpret_cast<const Chunk*>(src);
      x2.chunk = *reinterpret_cast<const Chunk*>(src + half);
      storage_t* dst;
      if (head < num_heads) {
        dst = src;
      } else if (head < num_heads + num_kv_heads) {
        dst = k_cache + (slot + (head - num_heads)) * head_dim + i0;
      } else {
        dst = v_cache + (slot + (head - num_heads - num_kv_heads)) * head_dim + i0;
      }
      if (head < num_heads + num_kv_heads) {
        Pack o1, o2;
#pragma unroll
        for (int k = 0; k < 8; k++) {
          float c = cos_s[i0 + k];
          float s = sin_s[i0 + k];
          float a = load(x1.h[k]);
          float e = load(x2.h[k]);
          o1.h[k] = store(rounded(a * c) - e * s);
          o2.h[k] = store(rounded(e * c) + a * s);
        }
        x1 = o1;
        x2 = o2;
      }
      *reinterpret_cast<Chunk*>(dst) = x1.chunk;
      *reinterpret_cast<Chunk*>(dst + half) = x2.chunk;
    }
    return;
  }
  for (int item = blockIdx.y * blockDim.x + threadIdx.x; item < heads * half; item += stride) {
    const int head = item / half;
    const int i = item - head * half;
    storage_t* src = row + (long long) head * head_dim;
    if (head < num_heads + num_kv_heads) {
      float c = cos_s[i];
      float s = sin_s[i];
      float x1 = load(src[i]);
      float x2 = load(src[i + half]);
      storage_t out1 = store(rounded(x1 * c) - x2 * s);
      storage_t out2 = store(rounded(x2 * c) + x1 * s);
      storage_t* dst = head < num_heads ? src : k_cache + (slot + (head - num_heads)) * head_dim;
      dst[i] = out1;
      dst[i + half] = out2;
    } else {
      storage_t* dst = v_cache + (slot + (head - num_heads - num_kv_heads)) * head_dim;
      dst[i] = src[i];
      dst[i + half] = src[i + half];
    }
  }
}

// ------------------------------------------------------------------------------------------------------------
// Decode attention with the split merge folded in (decode_kernels.cu's decode_attention and
// decode_attention_combine in one kernel). The tensor-core score/softmax/value code below is decode_attention's.
#if defined(GROUP) && defined(HEAD_DIM)
// Occupancy hint of the v2 attention kernels: __launch_bounds__(THREADS, V2_MIN_BLOCKS) caps registers at
// 65536 / (THREADS V2_MIN_BLOCKS) (7: 72, 6: 80, 5: 96, 4: 128, 3: 168). Left to itself, ptxas (CUDA 12 NVRTC,
// sm_90) picks 56-96 registers with small spills for some shapes (decode_attention spills 4-12 bytes at 1x128,
// 4x128, 6x128, 7x128); these values are the largest that compiled without spills for each shape of
// bench/compile_kernels.py (fp16 and bf16; 6x128, the bench model: 72 registers, 7 blocks per SM as
// decode_attention). Override with -DV2_MIN_BLOCKS=.
#if !defined(V2_MIN_BLOCKS)
#if HEAD_DIM > 128
#define V2_MIN_BLOCKS 3
#elif GROUP > 8
#define V2_MIN_BLOCKS (HEAD_DIM > 96 ? 4 : 5)
#elif HEAD_DIM == 128 && GROUP == 4
#define V2_MIN_BLOCKS 4
#elif HEAD_DIM == 128 && GROUP >= 7
#define V2_MIN_BLOCKS 6
#else
#define V2_MIN_BLOCKS 7
#endif
#endif

// A float read from L2 (ld.global.cg), not from this SM's L1: the merge reads partials other blocks wrote.
__device__ __forceinline__ float load_cg(const float* p) {
  float v;
  asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
  return v;
}

// Splits [0, active) of row b see slots (a prefix: split z sees some iff start + z split_size < length).
// Recomputed where needed rather than kept in a register across the main loop.
__device__ __forceinline__ int active_splits(const long long* positions, int b, long long window,
                                             long long split_size, int num_splits) {
  const long long length = positions[b] + 1;
  const long long start = window > 0 && length > window ? length - window : 0;
  return (int) min_ll(num_splits, (length - start + split_size - 1) / split_size);
}

#define MERGE_SPLITS 32                                    // splits whose weights are staged in shared memory at a time
#define MERGE_OUTS ((GROUP * HEAD_DIM + THREADS - 1) / THREADS)  // outputs (head, dim) per thread in the merge

// The end of every split block of decode_attention_v2 with slots to read: its partials written, it arrives at
// the (row, kv head) counter; the block arriving last (the active-th) resets the counter to 0 and merges the
// `active` splits of the group's GROUP query heads as decode_attention_combine does per (row, head): M the largest
// max of the splits whose sum > 0, weights exp(max[z] - M) (0 for the others, which are skipped), the total
// sum_z sum[z] w[z] and the output sum_z partial[z] w[z] accumulated in split order, out = (output / total)
// in the storage type. Thread t computes outputs (head, dim) = t + THREADS j of the group's (GROUP, D).
__device__ __forceinline__ void merge_splits(const float* partial_out, const float* partial_max,
                                             const float* partial_sum, storage_t* out, int* counters,
                                             const long long* positions, int num_kv_heads, long long window,
                                             long long split_size) {
  // block (row b, kv head) as decode_attention_v2 reads its linear index
  const int num_splits = gridDim.z;
  const int linear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int kv_head = linear % gridDim.y;
  const int b = linear / (gridDim.y * num_splits);
  const int active = active_splits(positions, b, window, split_size, num_splits);
  __shared__ int last_s;
  __shared__ float overall_s[GROUP];                  // M per head
  __shared__ float weight_s[GROUP][MERGE_SPLITS];     // exp(max[z0 + i] - M), 0 for skipped splits
  __shared__ float msum_s[GROUP][MERGE_SPLITS];       // sum[z0 + i], 0 for skipped splits
  __threadfence();  // this block's partials visible to the whole GPU before it arrives
  __syncthreads();
  if (threadIdx.x == 0) {
    int* counter = counters + (long long) b * num_kv_heads + kv_head;
    const bool last = atomicAdd(counter, 1) == active - 1;
    if (last) {
      atomicExch(counter, 0);  // every split of the group has arrived: clean for the next launch (graph replay)
      __threadfence();         // (acquire) the other splits' partials are read after their arrivals
    }
    last_s = last;
  }
  __syncthreads();
  if (!last_s) {
    return;
  }
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int num_heads = GROUP * num_kv_heads;
  const long long base = ((long long) b * num_heads + kv_head * GROUP) * num_splits;  // head g, split z: + g Z + z
  for (int g = warp; g < GROUP; g += WARPS) {
    float overall = negative_infinity();
    for (int z = lane; z < active; z += 32) {
      const float s = load_cg(partial_sum + base + g * num_splits + z);
      const float m = load_cg(partial_max + base + g * num_splits + z);
      if (s > 0.f) {
        overall = fmaxf(overall, m);
      }
    }
    overall = warp_max(overall);
    if (lane == 0) {
      overall_s[g] = overall;
    }
  }
  __shared__ float total_s[GROUP];                    // sum_z sum[z] w[z] per head
  float o[MERGE_OUTS];  // output t + THREADS j
  float total = 0.f;    // thread g < GROUP: the total of head g
#pragma unroll
  for (int j = 0; j < MERGE_OUTS; j++) {
    o[j] = 0.f;
  }
  for (int z0 = 0; z0 < active; z0 += MERGE_SPLITS) {
    const int nz = min(MERGE_SPLITS, active - z0);
    __syncthreads();  // overall_s complete (first chunk); the last chunk's weights read (later ones)
    for (int i = threadIdx.x; i < GROUP * nz; i += THREADS) {
      const int g = i / nz;
      const int z = i - g * nz;
      const float s = load_cg(partial_sum + base + g * num_splits + z0 + z);
      const float m = load_cg(partial_max + base + g * num_splits + z0 + z);
      msum_s[g][z] = s > 0.f ? s : 0.f;
      weight_s[g][z] = s > 0.f ? expf(m - overall_s[g]) : 0.f;
    }
    __syncthreads();
    if (threadIdx.x < GROUP) {
      for (int i = 0; i < nz; i++) {
        if (msum_s[threadIdx.x][i] > 0.f) {
          total += msum_s[threadIdx.x][i] * weight_s[threadIdx.x][i];
        }
      }
    }
#pragma unroll
    for (int j = 0; j < MERGE_OUTS; j++) {
      const int idx = threadIdx.x + THREADS * j;
      if (idx < GROUP * HEAD_DIM) {
        const int g = idx / HEAD_DIM;
        const float* part = partial_out + (base + g * num_splits + z0) * HEAD_DIM + (idx - g * HEAD_DIM);
#pragma unroll 4
        for (int i = 0; i < nz; i++) {
          if (msum_s[g][i] > 0.f) {
            o[j] += load_cg(part + i * HEAD_DIM) * weight_s[g][i];
          }
        }
      }
    }
  }
  if (threadIdx.x < GROUP) {
    total_s[threadIdx.x] = total;
  }
  __syncthreads();
  storage_t* out_group = out + ((long long) b * num_heads + kv_head * GROUP) * HEAD_DIM;  // (GROUP, D)
#pragma unroll
  for (int j = 0; j < MERGE_OUTS; j++) {
    const int idx = threadIdx.x + THREADS * j;
    if (idx < GROUP * HEAD_DIM) {
      out_group[idx] = store(o[j] / total_s[idx / HEAD_DIM]);
    }
  }
}

// decode_attention_v2: decode_attention and decode_attention_combine in one launch, with their results.
// Block (b, kv head, split) computes its split's partials as decode_attention does (attention_split), writes
// them, and arrives at counters[b, kv head]; the last of the row's active splits to arrive merges them
// (merge_splits) into out. Splits past the row's slots return at once: they write nothing and do not arrive.
// qkv: (B, (N + 2K) * D) with the rotated queries first; k_cache, v_cache: (B, C, K, D);
// partial_out: (B, N, Z, D), partial_max and partial_sum: (B, N, Z) float32 scratch; out: (B, N * D) storage;
// counters: (B, K) int32, zeroed once when allocated: every launch leaves it 0 again (so CUDA-graph replays
// start clean); two launches must not use the same counters at once.
// Grid (B, K, Z), block THREADS (128), static shared memory (decode_attention's + about 8 GROUP * MERGE_SPLITS
// bytes).
extern "C" __global__ void __launch_bounds__(THREADS, V2_MIN_BLOCKS) decode_attention_v2(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, storage_t* out, int* counters, long long num_kv_heads,
    long long capacity, long long window, long long split_size, double scale) {
  if (attention_split<false>(qkv, positions, k_cache, v_cache, partial_out, partial_max, partial_sum, num_kv_heads,
                             capacity, window, split_size, scale)) {
    merge_splits(partial_out, partial_max, partial_sum, out, counters, positions, (int) num_kv_heads, window,
                 split_size);
  }
}
#endif
