package io.sparkinfer.backend.eager;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.model.LayerWeights;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.RotaryEmbedding;

/**
 * Grouped-query self-attention with the KV cache: each group of {@code N / K} query heads shares one
 * key/value head. Scores and softmax run in float32.
 *
 * <p>Dimensions: B batch, S query tokens, T key slots, H hidden, N query heads, K key/value heads,
 * G = N / K, D head dim.
 */
public final class Attention {

  private final int numHeads;
  private final int numKeyValueHeads;
  private final int headDim;
  private final float scaling;

  public Attention(ModelConfig config) {
    this.numHeads = config.numAttentionHeads();
    this.numKeyValueHeads = config.numKeyValueHeads();
    this.headDim = config.headDim();
    this.scaling = (float) (1.0 / Math.sqrt(headDim));
  }

  /**
   * (B, S, H) -> (B, S, H).
   *
   * @param cos (B, 1, S, D)
   * @param sin (B, 1, S, D)
   * @param mask (B, 1, 1, S, T) float32, 0 where a key is visible and a large negative value elsewhere
   */
  public NDArray forward(NDManager scope, NDArray x, LayerWeights w, int layer, RotaryEmbedding rope,
      NDArray cos, NDArray sin, NDArray mask, ForwardBatch batch, KvCache cache) {
    long b = x.getShape().get(0);
    long s = x.getShape().get(1);
    long groups = numHeads / numKeyValueHeads;
    DataType dtype = x.getDataType();

    NDArray q = w.qProj().forward(x).reshape(b, s, numHeads, headDim).transpose(0, 2, 1, 3); // (B, S, N*D) -> (B, N, S, D)
    NDArray k = w.kProj().forward(x).reshape(b, s, numKeyValueHeads, headDim).transpose(0, 2, 1, 3); // (B, S, K*D) -> (B, K, S, D)
    NDArray v = w.vProj().forward(x).reshape(b, s, numKeyValueHeads, headDim).transpose(0, 2, 1, 3); // (B, S, K*D) -> (B, K, S, D)
    q = rope.apply(q, cos, sin);
    k = rope.apply(k, cos, sin);
    cache.write(layer, batch.positions(), k, v);

    int t = batch.keyLength();
    NDArray keys = cache.keys(scope, layer, t).transpose(0, 1, 3, 2); // (B, K, T, D) -> (B, K, D, T)
    NDArray values = cache.values(scope, layer, t); // (B, K, T, D)
    // Each key/value head serves its G query heads as G*S queries: no copy of the keys per group.
    NDArray grouped = q.reshape(b, numKeyValueHeads, groups * s, headDim); // (B, N, S, D) -> (B, K, G*S, D)
    NDArray scores = grouped.matMul(keys) // (B, K, G*S, T)
        .toType(DataType.FLOAT32, false).mul(scaling)
        .reshape(b, numKeyValueHeads, groups, s, t).add(mask); // (B, K, G*S, T) -> (B, K, G, S, T)
    NDArray probs = scores.softmax(-1).toType(dtype, false).reshape(b, numKeyValueHeads, groups * s, t);
    NDArray out = probs.matMul(values) // (B, K, G*S, D)
        .reshape(b, numHeads, s, headDim) // (B, K, G*S, D) -> (B, N, S, D)
        .transpose(0, 2, 1, 3) // (B, N, S, D) -> (B, S, N, D)
        .reshape(b, s, (long) numHeads * headDim); // (B, S, N, D) -> (B, S, N*D)
    return w.oProj().forward(out);
  }
}
