package io.sparkinfer.generate;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.djl.util.cuda.CudaUtils;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.model.ModelConfig;
import java.lang.management.MemoryUsage;

/**
 * Sizes batches from the device's free memory ({@code --batch-size auto}). Each row of a batch holds, for as long
 * as the batch runs, its KV cache for its whole length (in the backend's {@link CausalLmBackend#cacheStorageType}), two rows of float32 logits for a step, and what the
 * backend keeps per row ({@link CausalLmBackend#workspaceBytesPerSequence}: captured graphs' outputs, fused step
 * buffers). Prefill is different: the generator prefills joining rows in groups of at most
 * {@code --max-prefill-tokens} padded tokens, one group at a time, so the group's own KV cache, activations and
 * attention scores are needed once per batch, not once per row: a reserve taken off the budget before it is
 * divided into rows. Where a whole group's reserve would take more than half the budget, auto-sized batches prefill
 * smaller groups ({@link #prefillTokens}).
 */
public final class BatchSizer {

  /** Fraction of free GPU memory a batch may take; the rest absorbs allocator fragmentation. */
  static final double GPU_MEMORY_FRACTION = 0.8;
  /** Memory a batch may take on CPU, where the host's RAM is shared with everything else. */
  static final long CPU_BUDGET_BYTES = 2L << 30;
  /**
   * The widest batch auto sizing picks. Wider batches still paid on an H200 where memory allowed them: the fp8 job on
   * 8,192 prompts ran at 44,680 completion tokens/s at 1,024 rows, 45,130 at 2,048 and 46,377 at 4,096, one machine,
   * alternated (bench/results/2026-12-02-e2e-NVIDIA-H200-run19, e5-*.log).
   */
  public static final int MAX_BATCH = 4096;

  private BatchSizer() {}

  /** Bytes one row of {@code promptTokens + newTokens} holds while its batch runs (prefill not included). */
  public static long bytesPerSequence(ModelConfig c, DataType dtype, CausalLmBackend backend, int promptTokens,
      int newTokens) {
    long tokens = (long) promptTokens + newTokens;
    long kv = KvCache.bytesPerToken(c, backend.cacheStorageType(dtype)) * tokens;
    long logits = 2L * c.vocabSize() * 4;
    return kv + logits + backend.workspaceBytesPerSequence((int) Math.min(tokens, Integer.MAX_VALUE));
  }

  /**
   * Bytes of one prefill group of prompts of up to {@code promptTokens} tokens, {@code maxPrefillTokens} padded
   * tokens at most (one prompt at least): the group's KV cache, a few live temporaries per layer, and float32
   * attention scores and probabilities (eager attention's; fused attention needs less). A packed prefill writes into
   * the batch's own rows and holds no cache of its own; the reserve still counts one, as a padded prefill needs it.
   */
  public static long prefillBytes(ModelConfig c, DataType dtype, int promptTokens, int maxPrefillTokens) {
    long rows = Math.max(1, maxPrefillTokens / Math.max(promptTokens, 1));
    long tokens = rows * promptTokens; // the group's padded tokens
    long width = 2L * c.hiddenSize() + 2L * c.intermediateSize()
        + (long) (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * c.headDim();
    long kv = KvCache.bytesPerToken(c, dtype) * tokens;
    long activations = 3L * tokens * width * dtype.getNumOfBytes();
    long scores = 2L * c.numAttentionHeads() * tokens * promptTokens * 4;
    return kv + activations + scores;
  }

  /**
   * The padded tokens of a prefill group under {@code budget}: {@code maxPrefillTokens}, halved while the group's
   * reserve ({@link #prefillBytes}) would take more than half the budget, down to one prompt of {@code promptTokens}.
   * Without it, prompts of 421 tokens on the demo model sized batches of one row on a CPU (2 GiB: a group of 32,768
   * tokens reserves 2.2 GB for eager attention's scores and activations); prefilling them 8,192 tokens at a time
   * leaves room for hundreds.
   */
  public static int prefillTokens(long budget, ModelConfig c, DataType dtype, int promptTokens, int maxPrefillTokens) {
    int tokens = maxPrefillTokens;
    while (tokens / 2 >= promptTokens && prefillBytes(c, dtype, promptTokens, tokens) > budget / 2) {
      tokens /= 2;
    }
    return tokens;
  }

  /**
   * The largest batch that fits {@code budget} bytes (at least 1, at most {@link #MAX_BATCH}): the reserve of a prefill
   * group ({@link #prefillTokens}) first, then whole rows.
   */
  public static int fit(long budget, ModelConfig c, DataType dtype, CausalLmBackend backend, int promptTokens,
      int newTokens, int maxPrefillTokens) {
    long rows = budget - prefillBytes(c, dtype, promptTokens, prefillTokens(budget, c, dtype, promptTokens,
        maxPrefillTokens));
    long per = bytesPerSequence(c, dtype, backend, promptTokens, newTokens);
    return (int) Math.max(1, Math.min(MAX_BATCH, rows / Math.max(per, 1)));
  }

  /** The bytes batches may take on {@code device} now: a share of its free memory on a GPU, a fixed budget on CPU. */
  public static long budget(Device device) {
    return device.isGpu() ? freeGpuBytes(device) : CPU_BUDGET_BYTES;
  }

  private static long freeGpuBytes(Device device) {
    MemoryUsage usage = CudaUtils.getGpuMemory(device);
    return (long) ((usage.getMax() - usage.getUsed()) * GPU_MEMORY_FRACTION);
  }
}
