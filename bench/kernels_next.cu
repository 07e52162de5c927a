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
//   decode_attention_v2_direct  decode_attention_v2, and a row whose keys fit in one split writes its output
//                           directly (no partials, no counter)

typedef unsigned short storage_t;

// 16 bytes copied as one load and one store.
struct alignas(16) Chunk {
  unsigned a, b, c, d;
};

__device__ __forceinline__ long long min_ll(long long a, long long b) { return a < b ? a : b; }

#if defined(SPARKINFER_BF16)
__device__ __forceinline__ float load(storage_t v) { return __uint_as_float(((unsigned) v) << 16); }
__device__ __forceinline__ storage_t store(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return (storage_t) ((u >> 16) | 0x40u);  // NaN stays NaN
  }
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return (storage_t) (u >> 16);
}
#else
__device__ __forceinline__ float load(storage_t v) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v));
  return f;
}
__device__ __forceinline__ storage_t store(float f) {
  storage_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
#endif

// The value rounded to the storage type, as PyTorch leaves every intermediate of a float16 chain.
__device__ __forceinline__ float rounded(float f) { return load(store(f)); }

__device__ __forceinline__ float negative_infinity() { return __int_as_float(0xff800000); }

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

// The sum (Sum) or largest value (Max) over the block (blockDim.x a multiple of 32, at most 1024), returned
// to every thread; identity is the value lanes past the last warp contribute.
struct Sum {
  __device__ static float warp(float v) { return warp_sum(v); }
  __device__ static float identity() { return 0.f; }
};
struct Max {
  __device__ static float warp(float v) { return warp_max(v); }
  __device__ static float identity() { return negative_infinity(); }
};

template <typename Op>
__device__ float block_reduce(float v) {
  __shared__ float warp_results[32];
  __shared__ float total;
  v = Op::warp(v);
  int lane = threadIdx.x & 31;
  int warp = threadIdx.x >> 5;
  if (lane == 0) {
    warp_results[warp] = v;
  }
  __syncthreads();
  if (warp == 0) {
    v = Op::warp(lane < (int) (blockDim.x >> 5) ? warp_results[lane] : Op::identity());
    if (lane == 0) {
      total = v;
    }
  }
  __syncthreads();
  return total;
}

// 8 storage values, as one 16-byte chunk.
union Pack {
  Chunk chunk;
  storage_t h[8];
};

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
#define THREADS 128
#define WARPS (THREADS / 32)
#define CHUNKS (HEAD_DIM / 8)                        // 16-byte chunks per cache row (8 dims)
#define ROW (CHUNKS | 1)                             // cache row stride in shared memory, in chunks: odd, so
                                                     // 8 lanes reading 8 rows at one column hit distinct banks
#define PASSES ((GROUP + 15) / 16)                   // passes over the split, each for HEADS query heads
#define HEADS ((GROUP + PASSES - 1) / PASSES)        // query heads per pass, at most 16 (the mma rows)
#define SLOT_BLOCKS 1                                // 8-slot blocks a warp scores per tile
#define STAGES 1                                     // tiles of keys and values in shared memory (in flight
                                                     // at once); 2 (fits for D <= 144) measured no faster on H100
#define TILE (8 * WARPS * SLOT_BLOCKS)               // slots staged in shared memory at a time
#define P_ROW (TILE + 8)                             // exponentials row stride in shared memory, in elements
#define KSTEPS ((HEAD_DIM + 15) / 16)                // 16-dim steps of a score
#define NT_PER_WARP ((CHUNKS + WARPS - 1) / WARPS)   // 8-dim output column blocks per warp (at most)

static_assert(HEAD_DIM % 8 == 0 && HEAD_DIM <= 256, "head dim must be a multiple of 8, at most 256");

__device__ __forceinline__ unsigned shared_address(const void* p) {
  unsigned a;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(a) : "l"(p));
  return a;
}
// 16-byte copy global -> shared bypassing registers (and L1), or 16 zero bytes when !valid; completes at
// cp_async_wait.
__device__ __forceinline__ void cp_async16(void* shared_dst, const void* global_src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared_address(shared_dst)), "l"(global_src),
               "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Waits until at most `pending` of this thread's committed copy groups are still in flight.
template <int pending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(pending) : "memory"); }

// c (16x8 float32) += a (16x16, row major) b (16x8, column major), storage-type inputs packed in pairs.
// Lane l holds rows l/4 (a0, a2, c0, c1) and l/4 + 8 (a1, a3, c2, c3), columns 2 (l%4) (+1) (+8 for a2, a3)
// of a and c; b0, b1: rows 2 (l%4) (+1) (+8 for b1), column l/4 of b.
__device__ __forceinline__ void mma16816(float* c, const unsigned* a, unsigned b0, unsigned b1) {
#if defined(SPARKINFER_BF16)
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};"
#endif
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The b operand (16x8, column major) of an mma from 16 rows of 8 elements in shared memory (row-major k x n):
// lanes 0..15 give the addresses of rows 0..15.
__device__ __forceinline__ void ldmatrix_x2_trans(unsigned& b0, unsigned& b1, const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];"
               : "=r"(b0), "=r"(b1) : "r"(shared_address(row)) : "memory");
}

// Copies slots [t0, t0 + n) of one key/value head's cache rows, (n, D), to tile (TILE, ROW chunks), the rows
// from n on zeroed (so products with their zero exponentials stay 0).
__device__ __forceinline__ void copy_tile(Chunk* tile, const storage_t* cache, long long row0,
                                          long long num_kv_heads, int n) {
  for (int i = threadIdx.x; i < TILE * CHUNKS; i += THREADS) {
    int t = i / CHUNKS;
    int c = i - t * CHUNKS;
    cp_async16(tile + t * ROW + c, cache + (row0 + (t < n ? t : 0) * num_kv_heads) * HEAD_DIM + c * 8, t < n);
  }
}


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
// Block (b, kv head, split) computes its split's partials exactly as decode_attention (the code below is its
// code), writes them, and arrives at counters[b, kv head]; the last of the row's active splits to arrive merges
// them (merge_splits) into out. Splits past the row's slots (begin >= end) return at once: they write nothing
// (decode_attention writes max -inf, sum 0, which the combine skips) and do not arrive.
// qkv: (B, (N + 2K) * D) with the rotated queries first; k_cache, v_cache: (B, C, K, D);
// partial_out: (B, N, Z, D), partial_max and partial_sum: (B, N, Z) float32 scratch; out: (B, N * D) storage;
// counters: (B, K) int32, zeroed once when allocated: every launch leaves it 0 again (so CUDA-graph replays
// start clean); two launches must not use the same counters at once.
// Grid (B, K, Z), block THREADS (128), static shared memory (decode_attention's + about 8 GROUP * MERGE_SPLITS
// bytes). decode_attention_v2_direct: the same, except that when the row's slots fit in one split (active == 1)
// its block writes out directly (combine's arithmetic for one split) without partials or counter.
template <bool DIRECT>
__device__ __forceinline__ void attention_v2(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, storage_t* out, int* counters, long long num_kv_heads,
    long long capacity, long long window, long long split_size, double scale) {
  __shared__ Chunk k_s[STAGES][TILE * ROW];                  // (TILE, D) keys of tiles i, i + STAGES, ..., rows
                                                             // ROW chunks apart
  __shared__ Chunk v_s[STAGES][TILE * ROW];                  // (TILE, D) values
  __shared__ float s_s[HEADS][TILE];                         // scores
  __shared__ __align__(16) storage_t p_s[2][16][P_ROW];      // exponentials (hi, lo) parts (16 mma rows, TILE),
                                                             // rows >= HEADS 0
  __shared__ float max_s[HEADS];                             // running maximum score
  __shared__ float sum_s[HEADS];                             // running sum of exponentials
  __shared__ float alpha_s[HEADS];                           // this tile's rescale of the earlier sums
  // The grid is (B, K, Z), but blocks start in order of their linear index, x fastest: reading that index as
  // (kv head fastest, then split, then row) lets the blocks that read the same cache rows (both key/value
  // heads of a slot share 2 K D bytes) and consecutive slots of a row run at the same time.
  const int num_splits = gridDim.z;
  const int linear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int kv_head = linear % gridDim.y;
  const int split = linear / gridDim.y % num_splits;
  const int b = linear / (gridDim.y * num_splits);
  const int num_heads = GROUP * (int) num_kv_heads;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int row = lane >> 2;       // mma rows (query heads) row and row + 8, columns 2 col, 2 col + 1 (+ 8)
  const int col = lane & 3;

  const long long length = positions[b] + 1;
  const long long start = window > 0 && length > window ? length - window : 0;
  const long long begin = start + split * split_size;
  const long long end = min_ll(length, begin + split_size);
  const long long first_stat = ((long long) b * num_heads + kv_head * GROUP) * num_splits + split;  // + g * Z
  if (begin >= end) {
    return;  // (split >= active_splits) writes nothing, and the merge does not read it
  }
  const storage_t* q = qkv + (long long) b * (num_heads + 2 * num_kv_heads) * HEAD_DIM + kv_head * GROUP * HEAD_DIM;
  const long long row_begin = ((long long) b * capacity + begin) * num_kv_heads + kv_head;  // slot begin's row

  for (int pass = 0; pass < PASSES; pass++) {
    const int h0 = pass * HEADS;  // first query head of the group in this pass
    __syncthreads();              // the last pass is done with the shared tiles
    // the first STAGES tiles' keys and values on their way while the queries are set up
#pragma unroll
    for (int stage = 0; stage < STAGES; stage++) {
      const int n = (int) min_ll(TILE, end - begin - stage * TILE);  // <= 0 past the split
      if (n > 0) {
        copy_tile(k_s[stage], k_cache, row_begin + stage * TILE * num_kv_heads, num_kv_heads, n);
      }
      cp_async_commit();
      if (n > 0) {
        copy_tile(v_s[stage], v_cache, row_begin + stage * TILE * num_kv_heads, num_kv_heads, n);
      }
      cp_async_commit();
    }
    // the a operands of the scores: queries (16 rows, D) in pairs, 0 past HEADS and D
    unsigned qa[KSTEPS][4];
#pragma unroll
    for (int k = 0; k < KSTEPS; k++) {
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int h = row + (r & 1) * 8;
        const int d = 16 * k + 2 * col + (r >> 1) * 8;
        qa[k][r] = h < HEADS && h0 + h < GROUP && d < HEAD_DIM
                       ? *reinterpret_cast<const unsigned*>(q + (h0 + h) * HEAD_DIM + d) : 0u;
      }
    }
    for (int i = threadIdx.x; i < (16 - HEADS) * P_ROW; i += THREADS) {
      p_s[0][HEADS + i / P_ROW][i % P_ROW] = 0;
      p_s[1][HEADS + i / P_ROW][i % P_ROW] = 0;
    }
    if (threadIdx.x < HEADS) {
      max_s[threadIdx.x] = negative_infinity();
      sum_s[threadIdx.x] = 0.f;
    }
    float acc[NT_PER_WARP][4];  // output blocks (16 heads, dims 8 (warp + WARPS j) ..), c layout of mma16816
#pragma unroll
    for (int j = 0; j < NT_PER_WARP; j++) {
#pragma unroll
      for (int r = 0; r < 4; r++) {
        acc[j][r] = 0.f;
      }
    }
    // Copy groups are committed in the order keys, values of tiles 0, 1, ..., the keys of tile i + STAGES
    // after tile i's scores, its values after tile i's values, so 2 STAGES - 1 groups follow this tile's keys at
    // the tile's start and its values after its scores.
    for (long long t0 = begin, tile = 0; t0 < end; t0 += TILE, tile++) {
      const int n = (int) min_ll(TILE, end - t0);
      const int n_next = (int) min_ll(TILE, end - t0 - STAGES * TILE);  // tile + STAGES, <= 0 past the split
      const long long row_next = row_begin + (t0 + STAGES * TILE - begin) * num_kv_heads;
      const Chunk* keys = k_s[tile % STAGES];
      const Chunk* values = v_s[tile % STAGES];
      cp_async_wait<2 * STAGES - 1>();  // this tile's keys (its values may still be in flight)
      __syncthreads();

      // scores of slots 8 i .. 8 i + 7, i = warp + WARPS j: b operand column `row` is key 8 i + row
#pragma unroll
      for (int j = 0; j < SLOT_BLOCKS; j++) {
        const int slot0 = 8 * (warp + WARPS * j);
        float c[4] = {0.f, 0.f, 0.f, 0.f};
        const storage_t* key = reinterpret_cast<const storage_t*>(keys + (slot0 + row) * ROW);
#pragma unroll
        for (int k = 0; k < KSTEPS; k++) {
          unsigned b0 = *reinterpret_cast<const unsigned*>(key + 16 * k + 2 * col);
          unsigned b1 = 16 * k + 8 < HEAD_DIM ? *reinterpret_cast<const unsigned*>(key + 16 * k + 8 + 2 * col) : 0u;
          mma16816(c, qa[k], b0, b1);
        }
        const int t = slot0 + 2 * col;
        if (row < HEADS) {
          s_s[row][t] = c[0] * (float) scale;
          s_s[row][t + 1] = c[1] * (float) scale;
        }
        if (row + 8 < HEADS) {
          s_s[row + 8][t] = c[2] * (float) scale;
          s_s[row + 8][t + 1] = c[3] * (float) scale;
        }
      }
      __syncthreads();  // scores done, this tile's keys buffer free
      if (n_next > 0) {
        copy_tile(k_s[tile % STAGES], k_cache, row_next, num_kv_heads, n_next);
      }
      cp_async_commit();  // (an empty group on the last tile keeps the group count uniform)

      // online softmax: a warp per query head, a lane per slot lane + 32 i
      for (int g = warp; g < HEADS; g += WARPS) {
        float s[TILE / 32];
        float tile_max = negative_infinity();
#pragma unroll
        for (int i = 0; i < TILE / 32; i++) {
          s[i] = lane + 32 * i < n ? s_s[g][lane + 32 * i] : negative_infinity();
          tile_max = fmaxf(tile_max, s[i]);
        }
        float old_max = max_s[g];
        float new_max = fmaxf(old_max, warp_max(tile_max));
        float tile_sum = 0.f;
#pragma unroll
        for (int i = 0; i < TILE / 32; i++) {
          float e = lane + 32 * i < n ? expf(s[i] - new_max) : 0.f;
          storage_t hi = store(e);
          p_s[0][g][lane + 32 * i] = hi;
          p_s[1][g][lane + 32 * i] = store(e - load(hi));
          tile_sum += e;
        }
        tile_sum = warp_sum(tile_sum);
        if (lane == 0) {
          float alpha = expf(old_max - new_max);  // 0 on the first tile
          alpha_s[g] = alpha;
          sum_s[g] = sum_s[g] * alpha + tile_sum;
          max_s[g] = new_max;
        }
      }
      cp_async_wait<2 * STAGES - 1>();  // this tile's values (later tiles' may still be in flight)
      __syncthreads();

      // values: O (16 heads, 8 dims) += (P hi + P lo) (16 heads, TILE) V (TILE, 8 dims) per output block
      const float alpha_lo = row < HEADS ? alpha_s[row] : 0.f;
      const float alpha_hi = row + 8 < HEADS ? alpha_s[row + 8] : 0.f;
#pragma unroll
      for (int j = 0; j < NT_PER_WARP; j++) {
        acc[j][0] *= alpha_lo;
        acc[j][1] *= alpha_lo;
        acc[j][2] *= alpha_hi;
        acc[j][3] *= alpha_hi;
      }
#pragma unroll
      for (int k = 0; k < TILE / 16; k++) {
        unsigned pa[2][4];
#pragma unroll
        for (int part = 0; part < 2; part++) {
          pa[part][0] = *reinterpret_cast<const unsigned*>(&p_s[part][row][16 * k + 2 * col]);
          pa[part][1] = *reinterpret_cast<const unsigned*>(&p_s[part][row + 8][16 * k + 2 * col]);
          pa[part][2] = *reinterpret_cast<const unsigned*>(&p_s[part][row][16 * k + 8 + 2 * col]);
          pa[part][3] = *reinterpret_cast<const unsigned*>(&p_s[part][row + 8][16 * k + 8 + 2 * col]);
        }
#pragma unroll
        for (int j = 0; j < NT_PER_WARP; j++) {
          const int block = warp + WARPS * j;
          if (block < CHUNKS) {
            unsigned b0, b1;
            ldmatrix_x2_trans(b0, b1, values + (16 * k + (lane & 15)) * ROW + block);
            mma16816(acc[j], pa[0], b0, b1);
            mma16816(acc[j], pa[1], b0, b1);
          }
        }
      }
      __syncthreads();  // values and exponentials done, this tile's values buffer and p_s free
      if (n_next > 0) {
        copy_tile(v_s[tile % STAGES], v_cache, row_next, num_kv_heads, n_next);
      }
      cp_async_commit();
    }
    cp_async_wait<0>();

    // (the same for the whole block; recomputed here, not kept live across the loop)
    const bool direct = DIRECT && active_splits(positions, b, window, split_size, num_splits) == 1;
    if (direct) {
      // decode_attention_combine's arithmetic for one split: weight exp(max - max), total 0 + sum * weight,
      // output (0 + partial * weight) / total, each head's skipped (0) unless its sum > 0
      storage_t* out_group = out + ((long long) b * num_heads + kv_head * GROUP + h0) * HEAD_DIM;
#pragma unroll
      for (int half = 0; half < 2; half++) {
        const int h = row + 8 * half;
        if (h < HEADS && h0 + h < GROUP) {
          const float m = max_s[h];
          const float s = sum_s[h];
          const float w = s > 0.f ? expf(m - m) : 0.f;
          const float total = s > 0.f ? 0.f + s * w : 0.f;
#pragma unroll
          for (int j = 0; j < NT_PER_WARP; j++) {
            const int d = 8 * (warp + WARPS * j) + 2 * col;
            if (d < HEAD_DIM) {
              const float o0 = s > 0.f ? 0.f + acc[j][2 * half] * w : 0.f;
              const float o1 = s > 0.f ? 0.f + acc[j][2 * half + 1] * w : 0.f;
              *reinterpret_cast<unsigned*>(out_group + h * HEAD_DIM + d) =
                  (unsigned) store(o0 / total) | ((unsigned) store(o1 / total) << 16);
            }
          }
        }
      }
      continue;  // (the next pass, if any, starts with __syncthreads)
    }
#pragma unroll
    for (int j = 0; j < NT_PER_WARP; j++) {
      const int d = 8 * (warp + WARPS * j) + 2 * col;
      if (d < HEAD_DIM) {
        if (row < HEADS && h0 + row < GROUP) {
          *reinterpret_cast<float2*>(partial_out + (first_stat + (h0 + row) * num_splits) * HEAD_DIM + d) =
              make_float2(acc[j][0], acc[j][1]);
        }
        if (row + 8 < HEADS && h0 + row + 8 < GROUP) {
          *reinterpret_cast<float2*>(partial_out + (first_stat + (h0 + row + 8) * num_splits) * HEAD_DIM + d) =
              make_float2(acc[j][2], acc[j][3]);
        }
      }
    }
    if (threadIdx.x < HEADS && h0 + threadIdx.x < GROUP) {
      partial_max[first_stat + (h0 + threadIdx.x) * num_splits] = max_s[threadIdx.x];
      partial_sum[first_stat + (h0 + threadIdx.x) * num_splits] = sum_s[threadIdx.x];
    }
  }
  if (DIRECT && active_splits(positions, b, window, split_size, num_splits) == 1) {
    return;  // output written directly
  }
  merge_splits(partial_out, partial_max, partial_sum, out, counters, positions, (int) num_kv_heads, window,
               split_size);
}

extern "C" __global__ void __launch_bounds__(THREADS, V2_MIN_BLOCKS) decode_attention_v2(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, storage_t* out, int* counters, long long num_kv_heads,
    long long capacity, long long window, long long split_size, double scale) {
  attention_v2<false>(qkv, positions, k_cache, v_cache, partial_out, partial_max, partial_sum, out, counters,
                      num_kv_heads, capacity, window, split_size, scale);
}

extern "C" __global__ void __launch_bounds__(THREADS, V2_MIN_BLOCKS) decode_attention_v2_direct(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, storage_t* out, int* counters, long long num_kv_heads,
    long long capacity, long long window, long long split_size, double scale) {
  attention_v2<true>(qkv, positions, k_cache, v_cache, partial_out, partial_max, partial_sum, out, counters,
                     num_kv_heads, capacity, window, split_size, scale);
}
#endif
