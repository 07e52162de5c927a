// bf16 weights widened to float32 on the GPU from their bits (io.sparkinfer.cuda.Bf16Bits): a bf16 value is the top
// 16 bits of the float32 with the same value, so widening is a 16-bit shift, exact for every pattern (inf, NaN,
// subnormals included). bits: n 16-bit patterns, out: n float32. Grid ceil(n / block), any block size.
extern "C" __global__ void bf16_bits_to_float(const unsigned short* bits, float* out, long long n) {
  const long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = __uint_as_float(((unsigned int) bits[i]) << 16);
  }
}
