// Fused elementwise kernels of a decode step (one new token per row), compiled at run time with NVRTC
// (io.sparkinfer.kernels.CudaKernels) and launched inside the captured decode graph between the TorchScript
// matrix multiplications and attention (io.sparkinfer.kernels.FusedDecodeStep). Each replaces a chain of
// 3-8 small PyTorch kernels of llama_step.py and computes what that chain computes, rounding where it rounds.
//
// Storage is float16, or bfloat16 when compiled with -DSPARKINFER_BF16; arithmetic is float32. No headers:
// conversions are written out below, so the source compiles with NVRTC alone. Every parameter is 8 bytes
// (pointers, long long, double), so the launcher passes each one as a Java long.
//
// Dimensions: B rows, H hidden, N query heads, K key/value heads, D head dim, C cache slots, I MLP width.

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

#define RMS_CHUNKS 4  // 16-byte chunks of a row a thread keeps in registers: rows of up to 32 * blockDim.x values

// RMSNorm as transformers' LlamaRMSNorm: out = weight * (x * rsqrt(mean(x^2) + eps)).to(dtype).
// x, out: (B, H) rows `stride` elements apart; weight: (H). Grid (B), block a multiple of 32 (256).
// When the rows are whole 16-byte chunks (H, stride multiples of 8, aligned pointers) and fit in RMS_CHUNKS
// chunks per thread, a thread reads its chunks of x and weight once into registers; otherwise it reads x twice.
extern "C" __global__ void rms_norm(const storage_t* x, const storage_t* weight, storage_t* out, long long hidden,
                                   long long stride, double eps) {
  const storage_t* row = x + blockIdx.x * stride;
  storage_t* out_row = out + blockIdx.x * stride;
  const bool chunked = hidden % 8 == 0 && stride % 8 == 0 && hidden <= RMS_CHUNKS * 8 * (long long) blockDim.x &&
                       (((unsigned long long) x | (unsigned long long) weight | (unsigned long long) out) & 15) == 0;
  if (chunked) {  // the same for the whole block
    const int chunks = (int) (hidden / 8);
    Pack xs[RMS_CHUNKS], ws[RMS_CHUNKS];  // chunks threadIdx.x + j * blockDim.x of x and weight
    float squares = 0.f;
#pragma unroll
    for (int j = 0; j < RMS_CHUNKS; j++) {
      int c = threadIdx.x + j * blockDim.x;
      if (c < chunks) {
        xs[j].chunk = reinterpret_cast<const Chunk*>(row)[c];
        ws[j].chunk = reinterpret_cast<const Chunk*>(weight)[c];
      }
    }
#pragma unroll
    for (int j = 0; j < RMS_CHUNKS; j++) {
      if (threadIdx.x + j * blockDim.x < chunks) {
#pragma unroll
        for (int k = 0; k < 8; k++) {
          float v = load(xs[j].h[k]);
          squares += v * v;
        }
      }
    }
    float scale = rsqrtf(block_reduce<Sum>(squares) / (float) hidden + (float) eps);
#pragma unroll
    for (int j = 0; j < RMS_CHUNKS; j++) {
      int c = threadIdx.x + j * blockDim.x;
      if (c < chunks) {
        Pack o;
#pragma unroll
        for (int k = 0; k < 8; k++) {
          o.h[k] = store(load(ws[j].h[k]) * rounded(load(xs[j].h[k]) * scale));
        }
        reinterpret_cast<Chunk*>(out_row)[c] = o.chunk;
      }
    }
    return;
  }
  float squares = 0.f;
  for (long long i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = load(row[i]);
    squares += v * v;
  }
  float scale = rsqrtf(block_reduce<Sum>(squares) / (float) hidden + (float) eps);
  for (long long i = threadIdx.x; i < hidden; i += blockDim.x) {
    out_row[i] = store(load(weight[i]) * rounded(load(row[i]) * scale));
  }
}

// Rotary embedding of the step's queries and keys, and the step's keys and values written to the cache.
// qkv: (B, (N + 2K) * D), each row [q heads | k heads | v heads], queries rotated in place; positions: (B)
// int64; inv_freq: (D/2) float32; k_cache, v_cache: (B, C, K, D), slot positions[b] of row b written.
// Rotation as llama_step.py: cos and sin of position * inv_freq in float32, rounded to the storage type,
// out[i] = x[i] cos - x[i + D/2] sin and out[i + D/2] = x[i + D/2] cos + x[i] sin.
// Grid (B, N + 2K), block (D/2).
extern "C" __global__ void rotary_cache_write(storage_t* qkv, const long long* positions, const float* inv_freq,
                                              storage_t* k_cache, storage_t* v_cache, long long num_heads,
                                              long long num_kv_heads, long long head_dim, long long capacity) {
  long long b = blockIdx.x;
  long long head = blockIdx.y;
  long long half = head_dim / 2;
  long long i = threadIdx.x;
  storage_t* src = qkv + b * (num_heads + 2 * num_kv_heads) * head_dim + head * head_dim;
  long long position = positions[b];
  if (head < num_heads + num_kv_heads) {
    float angle = (float) position * inv_freq[i];
    float c = rounded(cosf(angle));
    float s = rounded(sinf(angle));
    float x1 = load(src[i]);
    float x2 = load(src[i + half]);
    storage_t out1 = store(rounded(x1 * c) - x2 * s);
    storage_t out2 = store(rounded(x2 * c) + x1 * s);
    if (head < num_heads) {
      src[i] = out1;
      src[i + half] = out2;
    } else {
      storage_t* dst = k_cache + ((b * capacity + position) * num_kv_heads + (head - num_heads)) * head_dim;
      dst[i] = out1;
      dst[i + half] = out2;
    }
  } else {
    storage_t* dst = v_cache + ((b * capacity + position) * num_kv_heads + (head - num_heads - num_kv_heads)) * head_dim;
    dst[i] = src[i];
    dst[i + half] = src[i + half];
  }
}

// The gated MLP activation: out = silu(gate) * up, gate_up: (B, 2I) rows [gate | up], out: (B, I).
// silu(g) = g / (1 + exp(-g)) rounded, then the product rounded, as PyTorch's two kernels.
// Grid (ceil(I / blockDim.x), B).
extern "C" __global__ void silu_mul(const storage_t* gate_up, storage_t* out, long long inter) {
  long long c = blockIdx.x * (long long) blockDim.x + threadIdx.x;
  if (c < inter) {
    long long r = blockIdx.y;
    float g = load(gate_up[r * 2 * inter + c]);
    float u = load(gate_up[r * 2 * inter + inter + c]);
    out[r * inter + c] = store(rounded(g / (1.f + expf(-g))) * u);
  }
}

// Decode attention over the KV cache, split over the keys ("flash decoding"), in two kernels.
//
// decode_attention: block (b, kv head, split) reads its split's keys and values once, in tiles of TILE slots
// staged in shared memory, for every query head of the group (so grouped-query attention reads the cache
// once per key/value head), with an online softmax over the tiles. It leaves per query head and split the
// unnormalised output (float32), the running maximum score and the sum of exponentials.
// decode_attention_combine: block (b, query head) merges the splits and writes the output in the storage type.
//
// Row b reads slots [start, positions[b]] of its cache row, start = max(0, positions[b] + 1 - window) when
// window > 0 (transformers' sliding window) and 0 otherwise; split z covers [start + z*split_size, + split_size).
// qkv: (B, (N + 2K) * D) with the rotated queries first; k_cache, v_cache: (B, C, K, D);
// partial_out: (B, N, Z, D), partial_max and partial_sum: (B, N, Z) for Z splits (gridDim.z); out: (B, N * D).
// The model's group size N / K and head dim D are compile-time constants (-DGROUP=, -DHEAD_DIM=), so every
// per-head loop unrolls into registers. Grid (B, K, Z), block THREADS, D a multiple of 8, at most 256.
//
// The products run on tensor cores (mma.sync m16n8k16, storage-type inputs, float32 accumulation), the query
// heads of the group as the 16 rows of the A operand: scores S = Q K^T in float32, times scale; exponentials
// P = exp(S - running max) and their sums in float32. P goes in as two storage-type parts, P = hi + lo, so O
// keeps about float32 accuracy. Per tile of TILE = 32 slots: (1) cp.async copies keys and values to shared
// memory STAGES tiles ahead: the keys of tile i + STAGES once tile i's scores are done (so they load while its
// softmax and values run), its values once tile i's values are done (while the next scores run); (2) scores:
// warp w computes the (16 heads, 8 slots) blocks of slots 8i .. 8i + 7, i = w, w + 4, ... (SLOT_BLOCKS of
// them); (3) softmax: a warp per head, a lane per slot (and slot + 32); (4) values: warp w accumulates the
// (16 heads, 8 dims) blocks of dims 8j, j = w, w + 4, ...
// Groups of more than 16 heads run in PASSES passes over the split.
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

// The work of one decode_attention block: its split's partials written; false (nothing written, or with
// MARK_EMPTY the split's maxima -inf and sums 0, which the combine skips) when the split has no slots.
template <bool MARK_EMPTY>
__device__ __forceinline__ bool attention_split(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, long long num_kv_heads, long long capacity,
    long long window, long long split_size, double scale) {
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
    for (int g = threadIdx.x; MARK_EMPTY && g < GROUP; g += THREADS) {
      partial_max[first_stat + g * num_splits] = negative_infinity();
      partial_sum[first_stat + g * num_splits] = 0.f;  // the combine skips this split
    }
    return false;
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
  return true;
}

extern "C" __global__ void __launch_bounds__(THREADS) decode_attention(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, long long num_kv_heads, long long capacity,
    long long window, long long split_size, double scale) {
  attention_split<true>(qkv, positions, k_cache, v_cache, partial_out, partial_max, partial_sum, num_kv_heads,
                        capacity, window, split_size, scale);
}
#endif


#define COMBINE_SPLITS 256  // splits whose weights are staged in shared memory at a time

// Block (b, query head): out = sum_z partial_out[z] exp(max[z] - M) / sum_z sum[z] exp(max[z] - M), M the
// largest max of the splits that saw any slot, the others (sum 0) skipped. The weights exp(max[z] - M) are
// computed once per split into shared memory, then a thread per dim sums over the splits in order.
// Grid (B * N), block a multiple of 32 (128).
extern "C" __global__ void decode_attention_combine(const float* partial_out, const float* partial_max,
                                                    const float* partial_sum, storage_t* out, long long num_splits,
                                                    long long head_dim) {
  __shared__ float max_s[COMBINE_SPLITS];     // max[z0 + i], then the weights exp(max[z0 + i] - M)
  __shared__ float sum_s[COMBINE_SPLITS];     // sum[z0 + i], 0 for skipped splits
  const long long row_head = blockIdx.x;
  const float* maxima = partial_max + row_head * num_splits;
  const float* sums = partial_sum + row_head * num_splits;
  // M, keeping the first COMBINE_SPLITS splits' statistics in shared memory (mostly all of them)
  float overall = negative_infinity();
  for (long long z = threadIdx.x; z < num_splits; z += blockDim.x) {
    float s = sums[z];
    float m = maxima[z];
    if (s > 0.f) {
      overall = fmaxf(overall, m);
    }
    if (z < COMBINE_SPLITS) {
      max_s[z] = m;
      sum_s[z] = s > 0.f ? s : 0.f;
    }
  }
  overall = block_reduce<Max>(overall);  // (synchronises, so the shared statistics are complete)
  for (long long d0 = 0; d0 < head_dim; d0 += blockDim.x) {
    const long long d = d0 + threadIdx.x;
    float o = 0.f;
    float total = 0.f;
    for (long long z0 = 0; z0 < num_splits; z0 += COMBINE_SPLITS) {
      const int nz = (int) min_ll(COMBINE_SPLITS, num_splits - z0);
      if (z0 > 0 || d0 > 0) {
        __syncthreads();  // the last chunk's weights are read
      }
      for (int i = threadIdx.x; i < nz; i += blockDim.x) {
        if (z0 > 0 || d0 > 0) {  // statistics of a later chunk, or again after the weights replaced them
          float s = sums[z0 + i];
          max_s[i] = maxima[z0 + i];
          sum_s[i] = s > 0.f ? s : 0.f;
        }
        max_s[i] = sum_s[i] > 0.f ? expf(max_s[i] - overall) : 0.f;
      }
      __syncthreads();
      const float* part = partial_out + (row_head * num_splits + z0) * head_dim + d;
#pragma unroll 4
      for (int i = 0; i < nz; i++) {
        if (sum_s[i] > 0.f) {
          total += sum_s[i] * max_s[i];
          if (d < head_dim) {
            o += part[i * head_dim] * max_s[i];
          }
        }
      }
    }
    if (d < head_dim) {
      out[row_head * head_dim + d] = store(o / total);
    }
  }
}
