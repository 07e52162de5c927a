package io.sparkinfer.backend.fused;

import io.sparkinfer.model.ModelConfig;

/**
 * How a fused decode step launches our kernels for one batch and cache: each kernel's grid and block, the
 * attention kernel and how it splits each row's keys. {@link FusedDecodeStep} launches by it, and the
 * benchmark's Python tools read it ({@code io.sparkinfer.bench.StepPlan}) instead of repeating its rules.
 *
 * @param rmsNorm one block per row
 * @param rotaryCacheWrite one block per row, one thread per 16-byte work item in whole warps
 * @param siluMul 8 outputs a thread
 * @param rmsNormFp8 one block per row of H, {@link #fp8Threads} threads
 * @param quantizeFp8 one block per row of the attention's N*D outputs, {@link #fp8Threads} threads
 * @param siluMulFp8 one block per row of I, {@link #fp8Threads} threads
 * @param attentionKernel {@code decode_attention} or {@code decode_attention_wide}
 * @param attention (B, K, splits) blocks
 * @param attentionCombine one block per row and query head; launched only with several splits, or always after
 *     {@code decode_attention_wide}
 * @param splitSize key slots per split, a whole number of tiles
 * @param splits splits per row
 */
public record LaunchPlan(Dims rmsNorm, Dims rotaryCacheWrite, Dims siluMul, Dims rmsNormFp8, Dims quantizeFp8,
    Dims siluMulFp8, String attentionKernel, Dims attention, Dims attentionCombine, int splitSize, int splits) {

  /** A kernel launch's blocks and threads, x, y, z each. */
  public record Dims(int[] grid, int[] block) {}

  static final int NORM_THREADS = 256;
  static final int SILU_THREADS = 256;
  static final int ATTENTION_THREADS = 128;
  /**
   * 8-value chunks of its row a thread of the float8 quantizing kernels keeps in registers between the row's maximum
   * and its quantization (the kernels' {@code FP8_CHUNKS}, passed to NVRTC). Eight made rows of 1,536 values in
   * 256-thread blocks run at 13-18% of the H200's copy bandwidth, registers limiting how many blocks an SM holds;
   * four in blocks just wide enough for the row ran 2-3x faster (bench/prefill_kernels.py --variants, bench/results/
   * 2026-12-02-prefill-kernels-NVIDIA-H200).
   */
  static final int FP8_CHUNKS = 4;
  /** The fewest threads of a quantizing block: narrower ones were not faster. */
  static final int FP8_MIN_THREADS = 128;
  /** Splits are whole multiples of this many key slots. */
  static final int ATTENTION_TILE = 64;
  /**
   * Attention blocks {@code decode_attention_wide} aims for over the batch: enough to fill an H100's 132 SMs
   * several times. ({@code decode_attention} aims for {@link FusedOptions#FUSED_ATTENTION_BLOCKS}.)
   */
  static final int WIDE_ATTENTION_BLOCKS = 4096;

  /**
   * The plan for {@code batch} rows over a cache of {@code capacity} slots.
   *
   * @param perWarp whether attention is {@code decode_attention} (else {@code decode_attention_wide})
   * @param attentionBlocks blocks {@code decode_attention} aims for
   */
  public static LaunchPlan of(ModelConfig c, int batch, int capacity, boolean perWarp, int attentionBlocks) {
    int[] split = attentionSplits(batch, c.numKeyValueHeads(), capacity, perWarp ? attentionBlocks : WIDE_ATTENTION_BLOCKS);
    long siluThreads = ((long) batch * c.intermediateSize() + 7) / 8; // 8 outputs a thread
    return new LaunchPlan(
        dims(batch, 1, NORM_THREADS),
        dims(batch, 1, rotaryThreads(c)),
        dims((int) ((siluThreads + SILU_THREADS - 1) / SILU_THREADS), 1, SILU_THREADS),
        dims(batch, 1, fp8Threads(c.hiddenSize())),
        dims(batch, 1, fp8Threads(c.numAttentionHeads() * c.headDim())),
        dims(batch, 1, fp8Threads(c.intermediateSize())),
        perWarp ? "decode_attention" : "decode_attention_wide",
        new Dims(new int[] {batch, c.numKeyValueHeads(), split[1]}, new int[] {ATTENTION_THREADS, 1, 1}),
        dims(batch * c.numAttentionHeads(), 1, ATTENTION_THREADS),
        split[0], split[1]);
  }

  /** Whether the step runs {@code decode_attention_combine} after the attention kernel. */
  public boolean combines() {
    return !attentionKernel.equals("decode_attention") || splits > 1;
  }

  /**
   * How our attention kernels split each row's keys: {slots per split, splits}, at least {@code blocks} blocks
   * over the batch where the cache has enough tiles, each split a whole number of tiles.
   */
  static int[] attentionSplits(int batch, int kvHeads, int capacity, int blocks) {
    int tiles = (capacity + ATTENTION_TILE - 1) / ATTENTION_TILE;
    int wanted = Math.max(1, (blocks + batch * kvHeads - 1) / (batch * kvHeads));
    int splits = Math.min(tiles, wanted);
    int splitSize = (tiles + splits - 1) / splits * ATTENTION_TILE;
    return new int[] {splitSize, (capacity + splitSize - 1) / splitSize};
  }

  /**
   * Threads of a block quantizing one row of {@code width} values: enough for the row's 8-value chunks to stay in
   * registers ({@link #FP8_CHUNKS} a thread), in whole warps, from {@link #FP8_MIN_THREADS} to 1,024 (wider rows
   * are made twice instead of kept).
   */
  static int fp8Threads(int width) {
    long chunks = (width + 7L) / 8;
    long threads = (chunks + FP8_CHUNKS - 1) / FP8_CHUNKS;
    return (int) Math.min(1024, Math.max(FP8_MIN_THREADS, (threads + 31) / 32 * 32));
  }

  /**
   * Threads of a rotary_cache_write block (one block per row): one per 16-byte work item of the row, in whole
   * warps, at most 256 (they loop over the rest); 128 when head dims are not a multiple of 16.
   */
  static int rotaryThreads(ModelConfig c) {
    if (c.headDim() % 16 != 0) {
      return 128;
    }
    int items = (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * (c.headDim() / 16);
    return Math.min(256, (items + 31) / 32 * 32);
  }

  private static Dims dims(int gridX, int gridY, int threads) {
    return new Dims(new int[] {gridX, gridY, 1}, new int[] {threads, 1, 1});
  }
}
