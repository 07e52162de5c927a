package io.sparkinfer.backend;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Runs a Llama-family model step: the layer math, apart from weights (shared,
 * {@link io.sparkinfer.model.ModelWeights}), the KV cache ({@link KvCache}) and the generation loop, which
 * asks only this interface. Implementations: {@code backend.eager} (the model in Java, op by op) and
 * {@code backend.scripted} (one TorchScript call per step, CUDA graphs of fused kernels on GPUs); a sharded
 * model for tensor or pipeline parallelism implements it too.
 */
public interface CausalLmBackend extends AutoCloseable {

  /**
   * Runs {@code batch} through the model, writing its keys and values into {@code cache}.
   *
   * @param scope the manager that owns every temporary and the result
   * @return (B, V) float32 logits at each row's last real token
   */
  NDArray forward(NDManager scope, ForwardBatch batch, BatchCache cache);

  /**
   * A zeroed cache for {@code batchSize} sequences of up to {@code capacity} slots, in the backend's layout
   * (one device's {@link KvCache}, or a cache per shard).
   *
   * @param parent the manager whose life the cache's arrays share (a sub-manager per device is made of it)
   */
  BatchCache allocateCache(NDManager parent, int batchSize, int capacity);

  /**
   * The dtype {@link #allocateCache}'s caches hold keys and values in, for steps computing in {@code computeType}
   * (what batch sizing counts a slot in): {@code computeType}, or {@link DataType#UINT8} for a float8 cache.
   */
  default DataType cacheStorageType(DataType computeType) {
    return computeType;
  }

  /**
   * Runs one decode step (S = 1) over {@code cache}, a batch's long-lived cache that decode steps reuse
   * until it closes. Backends may keep work across such calls (captured CUDA graphs, attached to the
   * cache); by default this is {@link #forward} on device copies of the inputs.
   *
   * @param tokenIds (B) each row's input token
   * @param positions (B) each row's position (= the cache slot it writes)
   * @param keyLength 1 + the largest position: how many cache slots attention reads
   * @return (B, V) float32 logits attached to {@code scope}
   */
  default NDArray decode(NDManager scope, long[] tokenIds, long[] positions, int keyLength, BatchCache cache) {
    int b = tokenIds.length;
    ForwardBatch batch = new ForwardBatch(scope.create(tokenIds, new Shape(b, 1)), scope.create(positions, new Shape(b, 1)),
        scope.zeros(new Shape(b), DataType.INT64), keyLength);
    return forward(scope, batch, cache);
  }

  /**
   * Runs {@code steps} greedy decode steps, each taking the previous step's most likely token as its input
   * and every position one further (at most the cache's last slot). Backends may run them without the host
   * in between; by default it is {@link #decode} step by step.
   *
   * @param keyLength 1 + the largest position the last step reads
   * @return each step's tokens, [step][row]
   */
  default long[][] decodeGreedy(NDManager scope, long[] tokenIds, long[] positions, int keyLength, BatchCache cache,
      int steps) {
    long[][] out = new long[steps][];
    long[] ids = tokenIds.clone();
    long[] pos = positions.clone();
    for (int s = 0; s < steps; s++) {
      try (NDManager step = scope.newSubManager()) {
        ids = decode(step, ids, pos, keyLength, cache).argMax(-1).toLongArray();
      }
      out[s] = ids;
      for (int i = 0; i < pos.length; i++) {
        pos[i] = Math.min(pos[i] + 1, cache.capacity() - 1);
      }
    }
    return out;
  }

  /** The backend's name on command lines: {@code eager} or {@code scripted}. */
  String name();

  /**
   * One phrase for logs and benchmark files: the backend and how its decode steps run on this device, e.g.
   * {@code scripted backend, CUDA graphs of fused decode kernels}.
   */
  default String describe() {
    return name() + " backend";
  }

  /**
   * Whether {@link #forward} takes packed steps, several rows in one line without padding, written into the cache rows
   * {@link ForwardBatch#cacheRows} names.
   */
  default boolean runsPacked() {
    return false;
  }

  /** Whether decode steps replay CUDA graphs. */
  default boolean usesCudaGraphs() {
    return false;
  }

  /**
   * Device bytes one sequence of {@code tokens} slots needs from the backend while its batch decodes, beyond
   * its KV cache and the prefill's activations (which {@code BatchSizer} counts): what the backend keeps per
   * batch row, such as captured graphs' outputs and the fused step's buffers.
   */
  default long workspaceBytesPerSequence(int tokens) {
    return 0;
  }

  /** Frees what the backend holds beyond the shared weights (kernels, fused copies). */
  @Override
  default void close() {}
}
