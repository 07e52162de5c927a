// Fused elementwise kernels of a decode step (one new token per row), compiled at run time with NVRTC
// (io.sparkinfer.cuda.CudaKernels) and launched inside the captured decode graph between the TorchScript
// matrix multiplications and attention (io.sparkinfer.backend.fused.FusedDecodeStep). Each replaces a chain of
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

// Two floats as two e4m3 bytes, lo in the low byte (the lower address).
__device__ __forceinline__ unsigned short e4m3x2(float lo, float hi) {
  unsigned short r;
#if __CUDA_ARCH__ >= 890
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
#else
  r = 0;
  __trap();  // fp8 needs compute capability 8.9
#endif
  return r;
}

// 8 values quantized by 1/scale as 8 e4m3 bytes (one 8-byte store).
__device__ __forceinline__ void store_e4m3x8(unsigned char* q, const float* v, float scale) {
  uint2 packed;
  packed.x = (unsigned) e4m3x2(v[0] / scale, v[1] / scale) | ((unsigned) e4m3x2(v[2] / scale, v[3] / scale) << 16);
  packed.y = (unsigned) e4m3x2(v[4] / scale, v[5] / scale) | ((unsigned) e4m3x2(v[6] / scale, v[7] / scale) << 16);
  *reinterpret_cast<uint2*>(q) = packed;
}

// How a KV cache holds keys and values (the rotary kernels' cache writes): in the storage type (StorageCache), or
// as float8 e4m3 bytes (Fp8Cache, --kv-cache-dtype fp8): the storage-type value rounded to e4m3, saturated at
// +-448 (no scale), as llama_step.py's fp8 cache writes it. Over a float8 cache the rotated keys are also written
// back into qkv, where a prefill line whose rows start at position 0 attends to them (fused_decode.py,
// packed_attend_line) instead of widening its rows' slots.
struct StorageCache {
  typedef storage_t value_t;
  static constexpr bool keeps_rotated_keys = false;
  // 8 values (one 16-byte chunk) at dst
  __device__ static void put8(storage_t* dst, const Pack& p) { *reinterpret_cast<Chunk*>(dst) = p.chunk; }
  __device__ static void put1(storage_t* dst, storage_t v) { *dst = v; }
};
struct Fp8Cache {
  typedef unsigned char value_t;
  static constexpr bool keeps_rotated_keys = true;
  // 8 values as 8 e4m3 bytes (one 8-byte store)
  __device__ static void put8(unsigned char* dst, const Pack& p) {
    float v[8];
#pragma unroll
    for (int k = 0; k < 8; k++) {
      v[k] = load(p.h[k]);
    }
    store_e4m3x8(dst, v, 1.f);
  }
  __device__ static void put1(unsigned char* dst, storage_t v) { *dst = (unsigned char) (e4m3x2(load(v), 0.f) & 0xffu); }
};

// Rotary embedding of the step's queries and keys, and the step's keys and values written to the cache: queries
// rotated in place in qkv, rotated keys and the values written to slot positions[b] of cache row b; a block per
// row (rotary_cache_write). A packed prefill line (rotary_cache_write_packed) has a block per token t, written to
// slot positions[t] of cache row cache_rows[t]. The _fp8 variants write a float8 cache (Fp8Cache above).
// qkv: (B, (N + 2K) * D) rows [q heads | k heads | v heads] (packed: (T, ..)); positions: (B) int64 (packed: (T));
// cache_rows: (T) int64; inv_freq: (D/2) float32; k_cache, v_cache: (B, C, K, D) (packed: (R, C, K, D)).
// cos and sin of position * inv_freq[i] (cosf, sinf in float32, rounded to the storage type, as llama_step.py)
// are computed once per (row, frequency) into shared memory and used for every head;
// out[i] = x[i] c - x[i + D/2] s and out[i + D/2] = x[i + D/2] c + x[i] s.
// Work items of a row: when D % 16 == 0 and qkv, k_cache, v_cache are 16-byte aligned, item (head, j) of the
// (N + 2K) * D/16 items takes the 16-byte chunks of dims 8j .. 8j + 7 and D/2 + 8j .. (8 pairs, one load and
// one store of 16 bytes each per half); otherwise item (head, i) of the (N + 2K) * D/2 items takes dims i, D/2 + i.
// Block (b, y) takes items y * blockDim.x + threadIdx.x, strided by gridDim.y * blockDim.x.
// Grid (B, Y) (Y = 1, or 2..4 for more blocks at small B), block a multiple of 32 (128: all 128 items of the
// Qwen2-1.5B row with Y = 1), static shared memory 2 KB; D <= 512.
#define ROTARY_MAX_HALF 256
// Line b of qkv (this block's): its token at `position`, written to cache row `cache_row`.
template <typename Cache>
__device__ __forceinline__ void rotary_line(storage_t* qkv, long long b, long long position, long long cache_row,
                                            const float* inv_freq, typename Cache::value_t* k_cache,
                                            typename Cache::value_t* v_cache,
                                            long long num_heads, long long num_kv_heads, long long head_dim,
                                            long long capacity) {
  __shared__ float cos_s[ROTARY_MAX_HALF];
  __shared__ float sin_s[ROTARY_MAX_HALF];
  const int half = (int) (head_dim / 2);
  const int heads = (int) (num_heads + 2 * num_kv_heads);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float angle = (float) position * inv_freq[i];
    cos_s[i] = rounded(cosf(angle));
    sin_s[i] = rounded(sinf(angle));
  }
  __syncthreads();
  storage_t* row = qkv + b * heads * head_dim;
  const long long slot = (cache_row * capacity + position) * num_kv_heads;  // cache line of kv head 0 at the slot
  const int stride = gridDim.y * blockDim.x;
  const unsigned long long addresses = (unsigned long long) qkv | (unsigned long long) k_cache |
                                       (unsigned long long) v_cache;
  const bool chunked = head_dim % 16 == 0 && (addresses & 15) == 0;
  if (chunked) {  // the same for the whole grid
    const int per_head = half / 8;  // chunk pairs per head
    for (int item = blockIdx.y * blockDim.x + threadIdx.x; item < heads * per_head; item += stride) {
      const int head = item / per_head;
      const int i0 = 8 * (item - head * per_head);  // first dim of the chunk in the first half
      storage_t* src = row + (long long) head * head_dim + i0;
      Pack x1, x2;
      x1.chunk = *reinterpret_cast<const Chunk*>(src);
      x2.chunk = *reinterpret_cast<const Chunk*>(src + half);
      typename Cache::value_t* dst =  // the cache line's chunk of a key or value head
          head < num_heads ? nullptr
          : head < num_heads + num_kv_heads ? k_cache + (slot + (head - num_heads)) * head_dim + i0
                                            : v_cache + (slot + (head - num_heads - num_kv_heads)) * head_dim + i0;
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
      if (head < num_heads || (Cache::keeps_rotated_keys && head < num_heads + num_kv_heads)) {
        *reinterpret_cast<Chunk*>(src) = x1.chunk;  // the rotated query (or key), back in place
        *reinterpret_cast<Chunk*>(src + half) = x2.chunk;
      }
      if (head >= num_heads) {
        Cache::put8(dst, x1);
        Cache::put8(dst + half, x2);
      }
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
      if (head < num_heads || Cache::keeps_rotated_keys) {
        src[i] = out1;
        src[i + half] = out2;
      }
      if (head >= num_heads) {
        typename Cache::value_t* dst = k_cache + (slot + (head - num_heads)) * head_dim;
        Cache::put1(dst + i, out1);
        Cache::put1(dst + i + half, out2);
      }
    } else {
      typename Cache::value_t* dst = v_cache + (slot + (head - num_heads - num_kv_heads)) * head_dim;
      Cache::put1(dst + i, src[i]);
      Cache::put1(dst + i + half, src[i + half]);
    }
  }
}

extern "C" __global__ void rotary_cache_write(storage_t* qkv, const long long* positions, const float* inv_freq,
                                              storage_t* k_cache, storage_t* v_cache, long long num_heads,
                                              long long num_kv_heads, long long head_dim, long long capacity) {
  const long long b = blockIdx.x;
  rotary_line<StorageCache>(qkv, b, positions[b], b, inv_freq, k_cache, v_cache, num_heads, num_kv_heads, head_dim,
                            capacity);
}

extern "C" __global__ void rotary_cache_write_packed(storage_t* qkv, const long long* positions,
                                                     const long long* cache_rows, const float* inv_freq,
                                                     storage_t* k_cache, storage_t* v_cache, long long num_heads,
                                                     long long num_kv_heads, long long head_dim, long long capacity) {
  const long long t = blockIdx.x;
  rotary_line<StorageCache>(qkv, t, positions[t], cache_rows[t], inv_freq, k_cache, v_cache, num_heads, num_kv_heads,
                            head_dim, capacity);
}

// The same two writing a float8 e4m3 cache (Fp8Cache): k_cache, v_cache (B, C, K, D) bytes.
extern "C" __global__ void rotary_cache_write_fp8(storage_t* qkv, const long long* positions, const float* inv_freq,
                                                  unsigned char* k_cache, unsigned char* v_cache, long long num_heads,
                                                  long long num_kv_heads, long long head_dim, long long capacity) {
  const long long b = blockIdx.x;
  rotary_line<Fp8Cache>(qkv, b, positions[b], b, inv_freq, k_cache, v_cache, num_heads, num_kv_heads, head_dim,
                        capacity);
}

extern "C" __global__ void rotary_cache_write_packed_fp8(storage_t* qkv, const long long* positions,
                                                         const long long* cache_rows, const float* inv_freq,
                                                         unsigned char* k_cache, unsigned char* v_cache,
                                                         long long num_heads, long long num_kv_heads,
                                                         long long head_dim, long long capacity) {
  const long long t = blockIdx.x;
  rotary_line<Fp8Cache>(qkv, t, positions[t], cache_rows[t], inv_freq, k_cache, v_cache, num_heads, num_kv_heads,
                        head_dim, capacity);
}


// The gated MLP activation: out = silu(gate) * up, gate_up: (B, 2I) rows [gate | up], out: (B, I).
// silu(g) = g / (1 + exp(-g)) rounded to the storage type, then the product rounded (as PyTorch's two kernels).
// Thread t of the flat grid computes out elements 8t .. 8t + 7 of the (B, I) output seen as one array.
// When I % 8 == 0 and gate_up and out are 16-byte aligned (the engine's buffers) those 8 are one 16-byte chunk of
// one row: one 16-byte load of gate, one of up, one 16-byte store. Otherwise element by element (same values).
// Grid (ceil(B * I / 8 / blockDim.x)), block a multiple of 32 (256), no shared memory; B * I < 2^32 * 8.
extern "C" __global__ void silu_mul(const storage_t* gate_up, storage_t* out, long long inter, long long rows) {
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


// Float8 e4m3 quantization of rows for fp8 projections (io.sparkinfer.model.Precision.FP8), fused into the kernel
// that makes the row: each row r of the (B, N) result h (rounded to the storage type, as the unquantized kernel would
// write it) is written as q[r] = e4m3(h[r] / scale[r]) with scale[r] = max(max|h[r]| / 448, 1e-12) in float32, the
// values and rounding of llama_step.py's fp8_mm (448 is e4m3's largest finite value; round to nearest even).
// q: (B, N) bytes, scale: (B) float32. The conversion is sm_89's cvt.rn.satfinite.e4m3x2.f32 (a row's values are at
// most 448 by construction, where saturating and PyTorch's conversion agree). A row's values stay in registers
// between its maximum and its quantization when they fit (FP8_CHUNKS 8-value chunks a thread), else are made twice.

#ifndef FP8_CHUNKS  // the engine passes it (io.sparkinfer.backend.fused.LaunchPlan.FP8_CHUNKS)
#define FP8_CHUNKS 4
#endif

// Row r's 8 values of chunk c: rms_norm's output (Row::Norm) or silu_mul's (Row::Gate), rounded to the storage type.
struct NormRow {
  const storage_t* x;
  const storage_t* weight;
  float inv_rms;
  __device__ void values(long long c, float* v) const {
    Pack xs, ws;
    xs.chunk = reinterpret_cast<const Chunk*>(x)[c];
    ws.chunk = reinterpret_cast<const Chunk*>(weight)[c];
#pragma unroll
    for (int k = 0; k < 8; k++) {
      v[k] = rounded(load(ws.h[k]) * rounded(load(xs.h[k]) * inv_rms));
    }
  }
};

struct GateRow {
  const storage_t* gate;  // the row's gate half; its up half follows `inter` values on
  long long inter;
  __device__ void values(long long c, float* v) const {
    Pack g, u;
    g.chunk = reinterpret_cast<const Chunk*>(gate)[c];
    u.chunk = reinterpret_cast<const Chunk*>(gate + inter)[c];
#pragma unroll
    for (int k = 0; k < 8; k++) {
      float gv = load(g.h[k]);
      v[k] = rounded(rounded(gv / (1.f + expf(-gv))) * load(u.h[k]));
    }
  }
};

// A row as it is (the attention's output, for the o projection).
struct PlainRow {
  const storage_t* x;
  __device__ void values(long long c, float* v) const {
    Pack xs;
    xs.chunk = reinterpret_cast<const Chunk*>(x)[c];
#pragma unroll
    for (int k = 0; k < 8; k++) {
      v[k] = load(xs.h[k]);
    }
  }
};

// Quantizes one row of `chunks` 8-value chunks made by `row` into q_row and scale (a block per row).
template <typename Row>
__device__ void quantize_row(const Row& row, long long chunks, unsigned char* q_row, float* scale) {
  float v[FP8_CHUNKS][8];
  float amax = 0.f;
  const bool kept = chunks <= (long long) FP8_CHUNKS * blockDim.x;  // the same for the whole block
#pragma unroll
  for (int j = 0; j < FP8_CHUNKS; j++) {
    long long c = threadIdx.x + (long long) j * blockDim.x;
    if (kept && c < chunks) {
      row.values(c, v[j]);
#pragma unroll
      for (int k = 0; k < 8; k++) {
        amax = fmaxf(amax, fabsf(v[j][k]));
      }
    }
  }
  if (!kept) {
    for (long long c = threadIdx.x; c < chunks; c += blockDim.x) {
      float w[8];
      row.values(c, w);
      for (int k = 0; k < 8; k++) {
        amax = fmaxf(amax, fabsf(w[k]));
      }
    }
  }
  const float s = fmaxf(block_reduce<Max>(amax) / 448.f, 1e-12f);
  if (threadIdx.x == 0) {
    *scale = s;
  }
  if (kept) {
#pragma unroll
    for (int j = 0; j < FP8_CHUNKS; j++) {
      long long c = threadIdx.x + (long long) j * blockDim.x;
      if (c < chunks) {
        store_e4m3x8(q_row + 8 * c, v[j], s);
      }
    }
    return;
  }
  for (long long c = threadIdx.x; c < chunks; c += blockDim.x) {
    float w[8];
    row.values(c, w);
    store_e4m3x8(q_row + 8 * c, w, s);
  }
}

// rms_norm's output quantized: x (B, H) rows `stride` apart, weight (H), q (B, H), scale (B). H a multiple of 8,
// x, weight 16-byte aligned, q 8-byte aligned. Grid (B), block a multiple of 32 (LaunchPlan.fp8Threads).
// With `update` ((B, H), 16-byte aligned; null for none) the row is first updated in place, x += update rounded to
// the storage type as torch.add_ rounds it: the residual stream's addition of the sub-layer before (the o or down
// projection's output), done here instead of by a separate op that reads and writes x once more. Each thread reads
// back only the chunks it wrote.
extern "C" __global__ void rms_norm_fp8(storage_t* x, const storage_t* update, const storage_t* weight,
                                        unsigned char* q, float* scale, long long hidden, long long stride,
                                        double eps) {
  storage_t* row = x + blockIdx.x * stride;
  const storage_t* added = update == nullptr ? nullptr : update + blockIdx.x * hidden;
  const long long chunks = hidden / 8;
  float squares = 0.f;
  for (long long c = threadIdx.x; c < chunks; c += blockDim.x) {
    Pack xs;
    xs.chunk = reinterpret_cast<const Chunk*>(row)[c];
    if (added != nullptr) {
      Pack us;
      us.chunk = reinterpret_cast<const Chunk*>(added)[c];
#pragma unroll
      for (int k = 0; k < 8; k++) {
        xs.h[k] = store(load(xs.h[k]) + load(us.h[k]));
      }
      reinterpret_cast<Chunk*>(row)[c] = xs.chunk;
    }
#pragma unroll
    for (int k = 0; k < 8; k++) {
      float v = load(xs.h[k]);
      squares += v * v;
    }
  }
  NormRow norm{row, weight, rsqrtf(block_reduce<Sum>(squares) / (float) hidden + (float) eps)};
  quantize_row(norm, chunks, q + blockIdx.x * hidden, scale + blockIdx.x);
}

// silu_mul's output quantized: gate_up (B, 2I) rows [gate | up], q (B, I), scale (B). I a multiple of 8, gate_up
// 16-byte aligned, q 8-byte aligned. Grid (B), block a multiple of 32 (LaunchPlan.fp8Threads).
extern "C" __global__ void silu_mul_fp8(const storage_t* gate_up, unsigned char* q, float* scale, long long inter) {
  GateRow gate{gate_up + blockIdx.x * 2 * inter, inter};
  quantize_row(gate, inter / 8, q + blockIdx.x * inter, scale + blockIdx.x);
}

// x's rows quantized as they are (the attention's output, before the o projection): x (B, C) rows `stride` apart,
// q (B, C), scale (B). C a multiple of 8, x 16-byte aligned, q 8-byte aligned. Grid (B), block a multiple of 32
// (LaunchPlan.fp8Threads).
extern "C" __global__ void quantize_fp8(const storage_t* x, unsigned char* q, float* scale, long long cols,
                                        long long stride) {
  PlainRow row{x + blockIdx.x * stride};
  quantize_row(row, cols / 8, q + blockIdx.x * cols, scale + blockIdx.x);
}

// Decode attention over the KV cache, split over the keys ("flash decoding"): decode_attention (below
// decode_attention_wide, for groups of up to 16 heads of dims up to 128, a multiple of 16) or
// decode_attention_wide (any shape), then, when a row has more than one split, decode_attention_combine.
//
// decode_attention_wide: block (b, kv head, split) reads its split's keys and values once, in tiles of TILE slots
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

// The split a decode attention block (b, kv head, split) reads: slots [begin, end) of row b (empty when the row
// ends before the split), and first_stat, the index of (b, the kv head's first query head, split) in the (B, N, Z)
// statistics (query head g of the group: + g Z). The grid is (B, K, Z), but blocks start in order of their linear
// index, x fastest: reading that index as (kv head fastest, then split, then row) lets the blocks that read the
// same cache rows (both key/value heads of a slot share 2 K D bytes) and consecutive slots of a row run at the
// same time.
struct Split {
  int b, kv_head, split, num_splits;
  long long begin, end, first_stat;
};

__device__ __forceinline__ Split block_split(const long long* positions, long long num_kv_heads, long long window,
                                             long long split_size) {
  Split w;
  w.num_splits = gridDim.z;
  const int linear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  w.kv_head = linear % gridDim.y;
  w.split = linear / gridDim.y % w.num_splits;
  w.b = linear / (gridDim.y * w.num_splits);
  const long long length = positions[w.b] + 1;
  const long long start = window > 0 && length > window ? length - window : 0;
  w.begin = start + w.split * split_size;
  w.end = min_ll(length, w.begin + split_size);
  w.first_stat = ((long long) w.b * GROUP * num_kv_heads + w.kv_head * GROUP) * w.num_splits + w.split;
  return w;
}

// An empty split's statistics: maxima -inf and sums 0, which decode_attention_combine skips.
__device__ __forceinline__ void mark_empty(const Split& w, float* partial_max, float* partial_sum) {
  for (int g = threadIdx.x; g < GROUP; g += blockDim.x) {
    partial_max[w.first_stat + g * w.num_splits] = negative_infinity();
    partial_sum[w.first_stat + g * w.num_splits] = 0.f;
  }
}

// The work of one decode_attention_wide block: its split's partials written; false (nothing written, or with
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
  const Split w = block_split(positions, num_kv_heads, window, split_size);
  const int num_heads = GROUP * (int) num_kv_heads;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int row = lane >> 2;       // mma rows (query heads) row and row + 8, columns 2 col, 2 col + 1 (+ 8)
  const int col = lane & 3;
  if (w.begin >= w.end) {
    if (MARK_EMPTY) {
      mark_empty(w, partial_max, partial_sum);
    }
    return false;
  }
  const storage_t* q =
      qkv + (long long) w.b * (num_heads + 2 * num_kv_heads) * HEAD_DIM + w.kv_head * GROUP * HEAD_DIM;
  const long long row_begin = ((long long) w.b * capacity + w.begin) * num_kv_heads + w.kv_head;  // slot begin's row

  for (int pass = 0; pass < PASSES; pass++) {
    const int h0 = pass * HEADS;  // first query head of the group in this pass
    __syncthreads();              // the last pass is done with the shared tiles
    // the first STAGES tiles' keys and values on their way while the queries are set up
#pragma unroll
    for (int stage = 0; stage < STAGES; stage++) {
      const int n = (int) min_ll(TILE, w.end - w.begin - stage * TILE);  // <= 0 past the split
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
    for (long long t0 = w.begin, tile = 0; t0 < w.end; t0 += TILE, tile++) {
      const int n = (int) min_ll(TILE, w.end - t0);
      const int n_next = (int) min_ll(TILE, w.end - t0 - STAGES * TILE);  // tile + STAGES, <= 0 past the split
      const long long row_next = row_begin + (t0 + STAGES * TILE - w.begin) * num_kv_heads;
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
          *reinterpret_cast<float2*>(partial_out + (w.first_stat + (h0 + row) * w.num_splits) * HEAD_DIM + d) =
              make_float2(acc[j][0], acc[j][1]);
        }
        if (row + 8 < HEADS && h0 + row + 8 < GROUP) {
          *reinterpret_cast<float2*>(partial_out + (w.first_stat + (h0 + row + 8) * w.num_splits) * HEAD_DIM + d) =
              make_float2(acc[j][2], acc[j][3]);
        }
      }
    }
    if (threadIdx.x < HEADS && h0 + threadIdx.x < GROUP) {
      partial_max[w.first_stat + (h0 + threadIdx.x) * w.num_splits] = max_s[threadIdx.x];
      partial_sum[w.first_stat + (h0 + threadIdx.x) * w.num_splits] = sum_s[threadIdx.x];
    }
  }
  return true;
}

extern "C" __global__ void __launch_bounds__(THREADS) decode_attention_wide(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, long long num_kv_heads, long long capacity,
    long long window, long long split_size, double scale) {
  attention_split<true>(qkv, positions, k_cache, v_cache, partial_out, partial_max, partial_sum, num_kv_heads,
                        capacity, window, split_size, scale);
}
#endif

// decode_attention: the partials decode_attention_wide writes (same grid, splits, layout; decode_attention_combine
// merges them), in about an eighth of its instructions per cache byte: decode_attention_wide's 4 warps share each
// 32-slot tile through shared memory and 4 block barriers (scores, softmax, values); here each warp of the block
// works alone on the 16-slot chunks w, w + SOLO_WARPS, ... of the split, FlashAttention-2 style:
//   (1) its chunks' keys and values stream into its own ring of SOLO_STAGES buffers (cp.async, SOLO_STAGES - 1 chunks
//       ahead; with the one stage used, each warp waits for its chunk while the block's other warps and the SM's
//       other blocks compute), so only __syncwarp orders them;
//   (2) scores S (16 query-head rows, 16 slots) = Q K^T: 2 mma per 16 dims, keys read with ldmatrix;
//   (3) online softmax in the score registers: row maxima across the 4 lanes of a row (2 shuffles), exponentials
//       split into storage-type hi + lo parts as decode_attention_wide does (about float32 accuracy), row sums kept per
//       lane until the end; the output is rescaled only when some row's maximum moved;
//   (4) O += (P hi + P lo) V with P's score registers as the a operand (no shared memory), values read with
//       ldmatrix.trans;
// then the warps merge their (max, sum, output) through shared memory and warp 0 writes the split's partials, or,
// with one split per row (Z = 1), the normalized output itself to out (B, N * D) (no combine needed).
// Needs GROUP <= 16 and HEAD_DIM % 16 == 0, HEAD_DIM <= 128 (registers); other shapes use decode_attention_wide.
// On an H100 (bench/fused_step.py --attention-variants 256, Qwen2-1.5B shape, 256 rows of 128-576 slots) one split
// per row with 4 warps of one stage each read the cache at 2.0 TB/s, against 1.7 for decode_attention_wide +
// combine and 2.5 for a kernel that only loads the same bytes; 2 warps of 2 stages and 1 warp of 3 were slower.
// Grid (B, K, Z) read as decode_attention_wide reads it, block SOLO_WARPS * 32, static shared memory
// SOLO_WARPS * SOLO_STAGES * 2 * 16 * (D + 8) * 2 bytes (34.8 KB at D = 128).
#if defined(GROUP) && defined(HEAD_DIM) && GROUP <= 16 && HEAD_DIM % 16 == 0 && HEAD_DIM <= 128
#define SOLO_WARPS 4
#define SOLO_STAGES 1
#define SOLO_SLOTS 16                     // slots per chunk: the k of the values mma
#define SOLO_ROW (HEAD_DIM / 8 + 1)       // staged cache row stride in 16-byte chunks: odd, so ldmatrix's 8 rows
                                          // at one column hit distinct banks
#define SOLO_BLOCKS (HEAD_DIM / 8)        // 8-dim output blocks
#define SOLO_MERGE (SOLO_BLOCKS * 4 + 4)  // floats per lane a warp hands to warp 0: output, 2 maxima, 2 sums

// Four 8x8 b16 matrices from shared memory: lanes 8i .. 8i + 7 give the row addresses of matrix i, register i
// gets the fragment of matrix i (lane l: row l / 4, columns 2 (l % 4), + 1); .trans gives it transposed.
__device__ __forceinline__ void ldmatrix_x4(unsigned* r, const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(row)) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned* r, const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(shared_address(row)) : "memory");
}

// Two storage-type values packed as an mma operand register: a in the low half (the lower column).
__device__ __forceinline__ unsigned pack2(storage_t a, storage_t b) { return (unsigned) a | ((unsigned) b << 16); }

// Copies chunk `chunk` of a split (slots 16 chunk .. + 15 from its first, those at or past `count` zero-filled) of
// one key/value head's cache rows to a staged buffer (16 rows of SOLO_ROW chunks). base: the split's first slot row;
// stride: elements from one slot to the next.
__device__ __forceinline__ void solo_copy_chunk(Chunk* buffer, const storage_t* base, long long stride,
                                                long long chunk, long long count, int lane) {
#pragma unroll
  for (int p = lane; p < SOLO_SLOTS * SOLO_BLOCKS; p += 32) {
    const int t = p / SOLO_BLOCKS;
    const int c = p - t * SOLO_BLOCKS;
    const long long slot = SOLO_SLOTS * chunk + t;
    const bool valid = slot < count;
    cp_async16(buffer + t * SOLO_ROW + c, base + (valid ? slot : 0) * stride + 8 * c, valid);
  }
}

// Pick<c, T, F>::type: T if c, else F.
template <bool c, typename T, typename F>
struct Pick {
  typedef T type;
};
template <typename T, typename F>
struct Pick<false, T, F> {
  typedef F type;
};

// A float8 e4m3 cache's chunk of 16 slots (decode_attention_fp8): slots 16 chunk .. + 15 of one key/value head's
// cache rows copied as they are (D bytes a slot, D / 16 16-byte pieces), those at or past `count` zero-filled.
__device__ __forceinline__ void solo_copy_chunk_fp8(Chunk* raw, const unsigned char* base, long long stride,
                                                    long long chunk, long long count, int lane) {
#pragma unroll
  for (int p = lane; p < SOLO_SLOTS * (HEAD_DIM / 16); p += 32) {
    const int t = p / (HEAD_DIM / 16);
    const int c = p - t * (HEAD_DIM / 16);
    const long long slot = SOLO_SLOTS * chunk + t;
    const bool valid = slot < count;
    cp_async16(raw + p, base + (valid ? slot : 0) * stride + 16 * c, valid);
  }
}

// Two e4m3 bytes of `bytes` (`selector` 0x1404: bytes 0 and 1, 0x3424: bytes 2 and 3) as two storage-type values,
// the lower byte in the low half: exact, e4m3's values all being float16's and bfloat16's. Float16: sm_89's
// conversion, one instruction a pair (it took decode_attention_fp8 at 1,024 rows from 92.2 to 81.5 us on an H200,
// bench/results/2026-12-02-e2e-NVIDIA-H200-run19/kv-fp8.txt). Bfloat16, which has no such conversion: sign, exponent and
// mantissa moved to where bfloat16 keeps them, which reads as the value times 2^-120 (its exponent bias is 127
// against e4m3's 7; subnormals alike), then multiplied back: a few integer ops and one fma a pair.
__device__ __forceinline__ unsigned widen_e4m3x2(unsigned bytes, unsigned selector) {
  unsigned out;
#if defined(SPARKINFER_BF16)
  const unsigned v = __byte_perm(bytes, 0u, selector);  // each byte in the high byte of its 16-bit half
  const unsigned bits = (v & 0x80008000u) | ((v & 0x7f007f00u) >> 4);
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(out) : "r"(bits), "r"(0x7b807b80u), "r"(0x80008000u));  // * 2^120 - 0
#else
#if __CUDA_ARCH__ >= 890
  const unsigned short pair = (unsigned short) (selector == 0x1404u ? bytes : bytes >> 16);
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(out) : "h"(pair));
#else
  out = 0;
  __trap();  // a float8 cache needs compute capability 8.9
#endif
#endif
  return out;
}

// The widened buffer of decode_attention_fp8 (16 slots of D / 8 storage-type chunks): where chunk c of slot t is.
// Where D / 8 is a multiple of 8 (D = 64, 128) the rows are not padded but swizzled, chunk c of row t at c ^ (t % 8),
// so ldmatrix's 8 rows at one column still hit distinct banks and the buffer takes D * 32 bytes (the second stage
// of raw chunks fits beside it); other head dims pad rows to SOLO_ROW chunks as decode_attention's buffers do.
#define FP8_SWIZZLED (HEAD_DIM % 64 == 0)
#define FP8_WIDE_ROW (FP8_SWIZZLED ? HEAD_DIM / 8 : SOLO_ROW)  // chunks from one widened row to the next
#ifndef SOLO_FP8_STAGES
#define SOLO_FP8_STAGES (FP8_SWIZZLED ? 2 : 1)                  // raw chunks in flight per warp (48 KB a block at most)
#endif
__device__ __forceinline__ int wide_at(int t, int c) { return t * FP8_WIDE_ROW + (FP8_SWIZZLED ? c ^ (t & 7) : c); }

// Widens a chunk of raw e4m3 cache rows (16 slots of D / 16 pieces) into storage-type rows (wide_at), the layout
// decode_attention_fp8's products read with ldmatrix.
__device__ __forceinline__ void solo_widen(Chunk* wide, const Chunk* raw, int lane) {
#pragma unroll
  for (int p = lane; p < SOLO_SLOTS * (HEAD_DIM / 16); p += 32) {
    const int t = p / (HEAD_DIM / 16);
    const int c = p - t * (HEAD_DIM / 16);
    const Chunk r = raw[p];
    Chunk lo, hi;  // dims 16 c .. + 7, then + 8 .. + 15
    lo.a = widen_e4m3x2(r.a, 0x1404u);
    lo.b = widen_e4m3x2(r.a, 0x3424u);
    lo.c = widen_e4m3x2(r.b, 0x1404u);
    lo.d = widen_e4m3x2(r.b, 0x3424u);
    hi.a = widen_e4m3x2(r.c, 0x1404u);
    hi.b = widen_e4m3x2(r.c, 0x3424u);
    hi.c = widen_e4m3x2(r.d, 0x1404u);
    hi.d = widen_e4m3x2(r.d, 0x3424u);
    wide[wide_at(t, 2 * c)] = lo;
    wide[wide_at(t, 2 * c + 1)] = hi;
  }
}

// decode_attention's body; FP8_KV: the cache is float8 e4m3 bytes (decode_attention_fp8). Then each warp's chunks
// arrive as they are in the cache (half the bytes) into a ring of SOLO_FP8_STAGES raw stages, and each is widened into
// the storage type in shared memory, the keys before the scores and the values into the same buffer after them; a
// stage is refilled SOLO_FP8_STAGES chunks on once its values are widened. Per warp, static shared memory: FP8_KV
// false, SOLO_STAGES stages of keys and values in the storage type (34.8 KB a block at D = 128); true, the raw stages
// and one widened buffer (48 KB at D = 128: two stages; with one, as at D = 128 the bytes in flight per warp were half
// decode_attention's, and it read a float8 cache no faster than decode_attention an fp16 one on an H200).
template <bool FP8_KV>
__device__ __forceinline__ void solo_attention(
    const storage_t* qkv, const long long* positions, const void* k_cache, const void* v_cache, float* partial_out,
    float* partial_max, float* partial_sum, storage_t* out, long long num_kv_heads, long long capacity,
    long long window, long long split_size, double scale) {
  constexpr int kWide = SOLO_SLOTS * (FP8_KV ? FP8_WIDE_ROW : SOLO_ROW);  // chunks of one storage-type buffer
  constexpr int kRaw = SOLO_SLOTS * (HEAD_DIM / 16);                       // chunks of one raw e4m3 buffer
  constexpr int kStages = FP8_KV ? SOLO_FP8_STAGES : SOLO_STAGES;
  constexpr int kStaged = FP8_KV ? kWide + kStages * 2 * kRaw : SOLO_STAGES * 2 * kWide;
  // per warp: FP8_KV false, per stage keys then values; true, the widened buffer, then per stage raw keys and values
  __shared__ Chunk staged[SOLO_WARPS][kStaged];
  typedef typename Pick<FP8_KV, unsigned char, storage_t>::type cache_t;
  const Split w = block_split(positions, num_kv_heads, window, split_size);
  const int num_heads = GROUP * (int) num_kv_heads;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int row = lane >> 2;  // mma rows (query heads) row and row + 8, columns 2 col, 2 col + 1 (+ 8)
  const int col = lane & 3;
  if (w.begin >= w.end) {
    mark_empty(w, partial_max, partial_sum);
    return;
  }
  const long long count = w.end - w.begin;                             // slots of the split
  const long long chunks = (count + SOLO_SLOTS - 1) / SOLO_SLOTS;
  const long long stride = num_kv_heads * HEAD_DIM;                    // elements from slot to slot
  const long long first_row = ((long long) w.b * capacity + w.begin) * num_kv_heads + w.kv_head;
  const cache_t* keys = static_cast<const cache_t*>(k_cache) + first_row * HEAD_DIM;
  const cache_t* values = static_cast<const cache_t*>(v_cache) + first_row * HEAD_DIM;
  Chunk* const buffers = staged[warp];
  // FP8_KV: stage s's raw keys and values
  auto raw_keys = [&](int s) { return buffers + kWide + 2 * s * kRaw; };
  auto raw_values = [&](int s) { return buffers + kWide + (2 * s + 1) * kRaw; };
  // copies chunk `chunk` of the split's keys and values to stage `s`
  auto copy_chunk = [&](int s, long long chunk) {
    if constexpr (FP8_KV) {
      solo_copy_chunk_fp8(raw_keys(s), keys, stride, chunk, count, lane);
      solo_copy_chunk_fp8(raw_values(s), values, stride, chunk, count, lane);
    } else {
      solo_copy_chunk(buffers + (2 * s) * kWide, keys, stride, chunk, count, lane);
      solo_copy_chunk(buffers + (2 * s + 1) * kWide, values, stride, chunk, count, lane);
    }
  };
  // ldmatrix's chunk c of row t of a staged buffer
  auto at = [](int t, int c) { return FP8_KV ? wide_at(t, c) : t * SOLO_ROW + c; };

  // this warp's first kStages chunks on their way (a group per stage, empty past the split)
#pragma unroll
  for (int s = 0; s < kStages; s++) {
    const long long chunk = warp + (long long) SOLO_WARPS * s;
    if (chunk < chunks) {
      copy_chunk(s, chunk);
    }
    cp_async_commit();
  }
  // the a operands of the scores: queries (16 rows, D) in pairs, 0 past GROUP
  const storage_t* q =
      qkv + (long long) w.b * (num_heads + 2 * num_kv_heads) * HEAD_DIM + w.kv_head * GROUP * HEAD_DIM;
  unsigned qa[HEAD_DIM / 16][4];
#pragma unroll
  for (int k = 0; k < HEAD_DIM / 16; k++) {
#pragma unroll
    for (int r = 0; r < 4; r++) {
      const int h = row + (r & 1) * 8;
      const int d = 16 * k + 2 * col + (r >> 1) * 8;
      qa[k][r] = h < GROUP ? *reinterpret_cast<const unsigned*>(q + h * HEAD_DIM + d) : 0u;
    }
  }
  const float score_scale = (float) scale;
  float max_lo = negative_infinity(), max_hi = negative_infinity();  // rows `row`, `row + 8`
  float sum_lo = 0.f, sum_hi = 0.f;                                  // this lane's share of the row sums
  float acc[SOLO_BLOCKS][4];  // output blocks (16 heads, dims 8 j ..), c layout of mma16816
#pragma unroll
  for (int j = 0; j < SOLO_BLOCKS; j++) {
#pragma unroll
    for (int r = 0; r < 4; r++) {
      acc[j][r] = 0.f;
    }
  }
  // ldmatrix row addresses: keys, matrix i = lane / 8: slots 8 (i / 2) + lane % 8, dims 8 (i % 2) of a 16-dim step;
  // values (.trans), matrix i: slots 8 (i % 2) + lane % 8, dims 8 (i / 2) of a 16-dim pair of output blocks
  const int key_row = (lane & 7) + 8 * (lane >> 4);
  const int key_col = (lane >> 3) & 1;
  const int value_row = (lane & 7) + 8 * ((lane >> 3) & 1);
  const int value_col = lane >> 4;

  int stage = 0;
  for (long long chunk = warp; chunk < chunks; chunk += SOLO_WARPS) {
    cp_async_wait<kStages - 1>();  // this chunk's keys and values (later chunks' may still be in flight)
    __syncwarp();
    const Chunk* key_s = buffers + (2 * stage) * kWide;
    const Chunk* value_s = buffers + (2 * stage + 1) * kWide;
    if constexpr (FP8_KV) {
      solo_widen(buffers, raw_keys(stage), lane);
      __syncwarp();
      key_s = buffers;
      value_s = buffers;  // once the scores are done, see below
    }
    const int n = (int) min_ll(SOLO_SLOTS, count - SOLO_SLOTS * chunk);  // valid slots of the chunk

    // scores: c[nb] is the (16 heads, 8 slots) block of slots 8 nb ..
    float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int k = 0; k < HEAD_DIM / 16; k++) {
      unsigned kb[4];  // b0, b1 of slots 0..7, then of slots 8..15
      ldmatrix_x4(kb, key_s + at(key_row, 2 * k + key_col));
      mma16816(c[0], qa[k], kb[0], kb[1]);
      mma16816(c[1], qa[k], kb[2], kb[3]);
    }
    // online softmax over the chunk: lane holds slots 8 nb + 2 col (+1) of rows row (c[nb][0, 1]), row + 8 ([2, 3])
    float tile_lo = negative_infinity(), tile_hi = negative_infinity();
#pragma unroll
    for (int nb = 0; nb < 2; nb++) {
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const int slot = 8 * nb + 2 * col + (r & 1);
        c[nb][r] = slot < n ? c[nb][r] * score_scale : negative_infinity();
      }
      tile_lo = fmaxf(tile_lo, fmaxf(c[nb][0], c[nb][1]));
      tile_hi = fmaxf(tile_hi, fmaxf(c[nb][2], c[nb][3]));
    }
    tile_lo = fmaxf(tile_lo, __shfl_xor_sync(0xffffffffu, tile_lo, 1));
    tile_lo = fmaxf(tile_lo, __shfl_xor_sync(0xffffffffu, tile_lo, 2));
    tile_hi = fmaxf(tile_hi, __shfl_xor_sync(0xffffffffu, tile_hi, 1));
    tile_hi = fmaxf(tile_hi, __shfl_xor_sync(0xffffffffu, tile_hi, 2));
    const float new_lo = fmaxf(max_lo, tile_lo);  // finite: slot 0 of every chunk read is valid
    const float new_hi = fmaxf(max_hi, tile_hi);
    const float alpha_lo = expf(max_lo - new_lo);  // 0 on the first chunk
    const float alpha_hi = expf(max_hi - new_hi);
    max_lo = new_lo;
    max_hi = new_hi;
    unsigned pa[2][4];  // the a operand (16 heads, 16 slots) of the values: [hi, lo part][register]
#pragma unroll
    for (int nb = 0; nb < 2; nb++) {
      float e[4];
#pragma unroll
      for (int r = 0; r < 4; r++) {
        e[r] = expf(c[nb][r] - (r < 2 ? new_lo : new_hi));  // 0 for masked slots
      }
      sum_lo = (nb == 0 ? sum_lo * alpha_lo : sum_lo) + e[0] + e[1];
      sum_hi = (nb == 0 ? sum_hi * alpha_hi : sum_hi) + e[2] + e[3];
      storage_t hi[4], lo[4];
#pragma unroll
      for (int r = 0; r < 4; r++) {
        hi[r] = store(e[r]);
        lo[r] = store(e[r] - load(hi[r]));
      }
      // a0: (row, slots 2 col, +1) = c[0][0, 1]; a1: (row + 8, ..) = c[0][2, 3]; a2, a3: the same of slots 8 ..
      pa[0][2 * nb] = pack2(hi[0], hi[1]);
      pa[0][2 * nb + 1] = pack2(hi[2], hi[3]);
      pa[1][2 * nb] = pack2(lo[0], lo[1]);
      pa[1][2 * nb + 1] = pack2(lo[2], lo[3]);
    }
    if (__any_sync(0xffffffffu, alpha_lo != 1.f || alpha_hi != 1.f)) {
#pragma unroll
      for (int j = 0; j < SOLO_BLOCKS; j++) {
        acc[j][0] *= alpha_lo;
        acc[j][1] *= alpha_lo;
        acc[j][2] *= alpha_hi;
        acc[j][3] *= alpha_hi;
      }
    }
    if constexpr (FP8_KV) {
      __syncwarp();  // every lane's keys are read: the values take their buffer
      solo_widen(buffers, raw_values(stage), lane);
      __syncwarp();
      // this stage's raw buffers are free: the chunk kStages on comes behind the values
      const long long next = chunk + (long long) SOLO_WARPS * kStages;
      if (next < chunks) {
        copy_chunk(stage, next);
      }
      cp_async_commit();
      stage = stage + 1 == kStages ? 0 : stage + 1;
    }
    // values: O (16 heads, 8 dims) += (P hi + P lo) (16 heads, 16 slots) V (16 slots, 8 dims), two blocks per load
#pragma unroll
    for (int j = 0; j < SOLO_BLOCKS; j += 2) {
      unsigned vb[4];  // b0, b1 of block j, then of block j + 1
      ldmatrix_x4_trans(vb, value_s + at(value_row, j + value_col));
      mma16816(acc[j], pa[0], vb[0], vb[1]);
      mma16816(acc[j], pa[1], vb[0], vb[1]);
      mma16816(acc[j + 1], pa[0], vb[2], vb[3]);
      mma16816(acc[j + 1], pa[1], vb[2], vb[3]);
    }
    __syncwarp();  // every lane is done with this stage: refill it SOLO_STAGES chunks on (FP8_KV: done above)
    if constexpr (!FP8_KV) {
      const long long next = chunk + (long long) SOLO_WARPS * SOLO_STAGES;
      if (next < chunks) {
        copy_chunk(stage, next);
      }
      cp_async_commit();
      stage = stage + 1 == SOLO_STAGES ? 0 : stage + 1;
    }
  }
  cp_async_wait<0>();
  sum_lo += __shfl_xor_sync(0xffffffffu, sum_lo, 1);
  sum_lo += __shfl_xor_sync(0xffffffffu, sum_lo, 2);
  sum_hi += __shfl_xor_sync(0xffffffffu, sum_hi, 1);
  sum_hi += __shfl_xor_sync(0xffffffffu, sum_hi, 2);

  // merge: warps 1.. hand (output, maxima, sums) to warp 0 in their lane layout (the staged buffers reused)
  __syncthreads();
  float* merge = reinterpret_cast<float*>(&staged[0][0]);  // (SOLO_WARPS - 1, SOLO_MERGE, 32)
  static_assert(sizeof(staged) >= (SOLO_WARPS - 1) * SOLO_MERGE * 32 * sizeof(float), "merge fits in the buffers");
  if (warp > 0) {
    float* mine = merge + (warp - 1) * SOLO_MERGE * 32 + lane;
#pragma unroll
    for (int j = 0; j < SOLO_BLOCKS; j++) {
#pragma unroll
      for (int r = 0; r < 4; r++) {
        mine[(4 * j + r) * 32] = acc[j][r];
      }
    }
    mine[(4 * SOLO_BLOCKS) * 32] = max_lo;
    mine[(4 * SOLO_BLOCKS + 1) * 32] = max_hi;
    mine[(4 * SOLO_BLOCKS + 2) * 32] = sum_lo;
    mine[(4 * SOLO_BLOCKS + 3) * 32] = sum_hi;
  }
  __syncthreads();
  if (warp > 0) {
    return;
  }
  for (int other = 1; other < SOLO_WARPS; other++) {
    const float* theirs = merge + (other - 1) * SOLO_MERGE * 32 + lane;
    const float their_lo = theirs[(4 * SOLO_BLOCKS) * 32];  // -inf when warp `other` had no chunk
    const float their_hi = theirs[(4 * SOLO_BLOCKS + 1) * 32];
    const float m_lo = fmaxf(max_lo, their_lo);
    const float m_hi = fmaxf(max_hi, their_hi);
    const float a_lo = expf(max_lo - m_lo), b_lo = expf(their_lo - m_lo);
    const float a_hi = expf(max_hi - m_hi), b_hi = expf(their_hi - m_hi);
#pragma unroll
    for (int j = 0; j < SOLO_BLOCKS; j++) {
      acc[j][0] = acc[j][0] * a_lo + theirs[(4 * j) * 32] * b_lo;
      acc[j][1] = acc[j][1] * a_lo + theirs[(4 * j + 1) * 32] * b_lo;
      acc[j][2] = acc[j][2] * a_hi + theirs[(4 * j + 2) * 32] * b_hi;
      acc[j][3] = acc[j][3] * a_hi + theirs[(4 * j + 3) * 32] * b_hi;
    }
    sum_lo = sum_lo * a_lo + theirs[(4 * SOLO_BLOCKS + 2) * 32] * b_lo;
    sum_hi = sum_hi * a_hi + theirs[(4 * SOLO_BLOCKS + 3) * 32] * b_hi;
    max_lo = m_lo;
    max_hi = m_hi;
  }
  if (w.num_splits == 1) {  // the split is the whole row: the output itself, in the storage type
    storage_t* group = out + ((long long) w.b * num_heads + w.kv_head * GROUP) * HEAD_DIM;  // (GROUP, D)
    const float inv_lo = 1.f / sum_lo, inv_hi = 1.f / sum_hi;
#pragma unroll
    for (int j = 0; j < SOLO_BLOCKS; j++) {
      const int d = 8 * j + 2 * col;
      if (row < GROUP) {
        *reinterpret_cast<unsigned*>(group + row * HEAD_DIM + d) =
            pack2(store(acc[j][0] * inv_lo), store(acc[j][1] * inv_lo));
      }
      if (row + 8 < GROUP) {
        *reinterpret_cast<unsigned*>(group + (row + 8) * HEAD_DIM + d) =
            pack2(store(acc[j][2] * inv_hi), store(acc[j][3] * inv_hi));
      }
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < SOLO_BLOCKS; j++) {
    const int d = 8 * j + 2 * col;
    if (row < GROUP) {
      *reinterpret_cast<float2*>(partial_out + (w.first_stat + row * w.num_splits) * HEAD_DIM + d) =
          make_float2(acc[j][0], acc[j][1]);
    }
    if (row + 8 < GROUP) {
      *reinterpret_cast<float2*>(partial_out + (w.first_stat + (row + 8) * w.num_splits) * HEAD_DIM + d) =
          make_float2(acc[j][2], acc[j][3]);
    }
  }
  if (col == 0 && row < GROUP) {
    partial_max[w.first_stat + row * w.num_splits] = max_lo;
    partial_sum[w.first_stat + row * w.num_splits] = sum_lo;
  }
  if (col == 0 && row + 8 < GROUP) {
    partial_max[w.first_stat + (row + 8) * w.num_splits] = max_hi;
    partial_sum[w.first_stat + (row + 8) * w.num_splits] = sum_hi;
  }
}

extern "C" __global__ void __launch_bounds__(SOLO_WARPS * 32) decode_attention(
    const storage_t* qkv, const long long* positions, const storage_t* k_cache, const storage_t* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, storage_t* out, long long num_kv_heads,
    long long capacity, long long window, long long split_size, double scale) {
  solo_attention<false>(qkv, positions, k_cache, v_cache, partial_out, partial_max, partial_sum, out, num_kv_heads,
                        capacity, window, split_size, scale);
}

// decode_attention over a float8 e4m3 cache (--kv-cache-dtype fp8): k_cache, v_cache (B, C, K, D) bytes.
extern "C" __global__ void __launch_bounds__(SOLO_WARPS * 32, 3) decode_attention_fp8(
    const storage_t* qkv, const long long* positions, const unsigned char* k_cache, const unsigned char* v_cache,
    float* partial_out, float* partial_max, float* partial_sum, storage_t* out, long long num_kv_heads,
    long long capacity, long long window, long long split_size, double scale) {
  solo_attention<true>(qkv, positions, k_cache, v_cache, partial_out, partial_max, partial_sum, out, num_kv_heads,
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
