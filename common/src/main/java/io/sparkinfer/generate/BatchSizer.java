package io.sparkinfer.generate;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import ai.djl.util.cuda.CudaUtils;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.model.ModelConfig;
import java.lang.management.MemoryUsage;

/**
 * Sizes batches from the device's free memory ({@code --batch-size auto}): each sequence needs its KV cache
 * for its whole length, the prefill's activations and attention scores, two rows of float32 logits for a
 * step, and what the backend keeps per row ({@link CausalLmBackend#workspaceBytesPerSequence}: captured
 * graphs' outputs, fused step buffers).
 */
public final class BatchSizer {

  /** Fraction of free GPU memory a batch may take; the rest absorbs allocator fragmentation. */
  static final double GPU_MEMORY_FRACTION = 0.8;
  /** Memory a batch may take on CPU, where the host's RAM is shared with everything else. */
  static final long CPU_BUDGET_BYTES = 2L << 30;
  public static final int MAX_BATCH = 1024;

  private BatchSizer() {}

  /** Bytes one sequence of {@code promptTokens + newTokens} needs while its batch runs. */
  public static long bytesPerSequence(ModelConfig c, DataType dtype, CausalLmBackend backend, int promptTokens,
      int newTokens) {
    long tokens = (long) promptTokens + newTokens;
    long kv = KvCache.bytesPerToken(c, dtype) * tokens;
    long width = 2L * c.hiddenSize() + 2L * c.intermediateSize()
        + (long) (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * c.headDim();
    long activations = 3L * promptTokens * width * dtype.getNumOfBytes(); // a few live temporaries per layer
    long scores = 2L * c.numAttentionHeads() * promptTokens * (long) promptTokens * 4; // float32 scores and probs
    long logits = 2L * c.vocabSize() * 4;
    return kv + activations + scores + logits + backend.workspaceBytesPerSequence((int) Math.min(tokens, Integer.MAX_VALUE));
  }

  /** The largest batch that fits the device's free memory (at least 1, at most {@link #MAX_BATCH}). */
  public static int fit(Device device, ModelConfig c, DataType dtype, CausalLmBackend backend, int promptTokens,
      int newTokens) {
    long budget = device.isGpu() ? freeGpuBytes(device) : CPU_BUDGET_BYTES;
    long per = bytesPerSequence(c, dtype, backend, promptTokens, newTokens);
    return (int) Math.max(1, Math.min(MAX_BATCH, budget / Math.max(per, 1)));
  }

  private static long freeGpuBytes(Device device) {
    MemoryUsage usage = CudaUtils.getGpuMemory(device);
    return (long) ((usage.getMax() - usage.getUsed()) * GPU_MEMORY_FRACTION);
  }
}
