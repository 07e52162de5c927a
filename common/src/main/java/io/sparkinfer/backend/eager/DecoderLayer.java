package io.sparkinfer.backend.eager;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.model.LayerWeights;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.RotaryEmbedding;

/** One pre-norm transformer block: attention and MLP, each with its RMSNorm and residual. */
public final class DecoderLayer {

  private final Attention selfAttn;
  private final float eps;

  public DecoderLayer(ModelConfig config) {
    this.selfAttn = new Attention(config);
    this.eps = (float) config.rmsNormEps();
  }

  /** (B, S, H) -> (B, S, H). */
  public NDArray forward(NDManager scope, NDArray hidden, LayerWeights w, int layer, RotaryEmbedding rope,
      NDArray cos, NDArray sin, NDArray mask, ForwardBatch batch, KvCache cache) {
    NDArray normed = RmsNorm.forward(hidden, w.inputLayernorm(), eps);
    NDArray attn = selfAttn.forward(scope, normed, w, layer, rope, cos, sin, mask, batch, cache);
    NDArray h = hidden.add(attn);
    NDArray mlp = Mlp.forward(RmsNorm.forward(h, w.postAttentionLayernorm(), eps), w);
    return h.add(mlp);
  }
}
