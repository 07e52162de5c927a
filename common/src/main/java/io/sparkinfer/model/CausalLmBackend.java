package io.sparkinfer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Runs a Llama-family model step: the layer math, apart from weights (shared, {@link ModelWeights}), the
 * KV cache ({@link KvCache}) and the generation loop. Implementations: the eager Java model
 * ({@link CausalLm}), and TorchScript kernels that run a whole step per call.
 */
public interface CausalLmBackend extends AutoCloseable {

  /**
   * Runs {@code batch} through the model, writing its keys and values into {@code cache}.
   *
   * @param scope the manager that owns every temporary and the result
   * @return (B, V) float32 logits at each row's last real token
   */
  NDArray forward(NDManager scope, ForwardBatch batch, KvCache cache);

  /**
   * Runs one decode step (S = 1) over {@code cache}, a batch's long-lived cache that decode steps reuse
   * until it closes. Backends may keep work across such calls (captured CUDA graphs, attached to the
   * cache); by default this is {@link #forward}.
   */
  default NDArray decode(NDManager scope, ForwardBatch batch, KvCache cache) {
    return forward(scope, batch, cache);
  }

  /** The backend's name on command lines: {@code eager} or {@code scripted}. */
  String name();

  /** Frees what the backend holds beyond the shared weights (kernels, fused copies). */
  @Override
  default void close() {}
}
