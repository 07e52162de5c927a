package io.sparkinfer.backend.eager;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.SparseFormat;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.model.Linear;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.RotaryEmbedding;
import java.util.HashMap;
import java.util.Map;

/**
 * The eager backend: a Llama-family causal LM ({@code LlamaForCausalLM}, {@code Qwen2ForCausalLM},
 * {@code MistralForCausalLM}) written with DJL NDArray ops, one op at a time. The readable reference
 * that every other backend is checked against.
 *
 * <p>Dimensions: B batch, S tokens, T key slots, H hidden, V vocab.
 */
public final class CausalLm implements CausalLmBackend {

  /** Added to scores of keys a query must not see; exp() of it is exactly 0 in float32. */
  static final float MASKED = -1e30f;

  private final ModelWeights weights;
  private final ModelConfig config;
  private final RotaryEmbedding rotaryEmb;
  private final DecoderLayer decoderLayer;

  public CausalLm(ModelWeights weights) {
    this(weights, new RotaryEmbedding(weights.config()));
  }

  public CausalLm(ModelWeights weights, RotaryEmbedding rotaryEmb) {
    if (weights.precision().isBf16()) {
      throw new IllegalArgumentException(weights.precision().label() + " runs on the scripted backend only: the eager "
          + "model's DJL ops cannot make bf16 tensors (use --backend scripted, or --precision fp16 or fp32)");
    }
    this.weights = weights;
    this.config = weights.config();
    this.rotaryEmb = rotaryEmb;
    this.decoderLayer = new DecoderLayer(config);
  }

  @Override
  public String name() {
    return "eager";
  }

  @Override
  public BatchCache allocateCache(NDManager parent, int batchSize, int capacity) {
    return KvCache.allocate(parent, config, batchSize, capacity, weights.precision().dataType());
  }

  @Override
  public NDArray forward(NDManager scope, ForwardBatch batch, BatchCache batchCache) {
    batch.requireRowsInOrder(name());
    KvCache cache = KvCache.of(batchCache);
    NDArray ids = batch.inputIds(); // (B, S)
    long b = ids.getShape().get(0);
    DataType dtype = weights.precision().dataType();
    NDArray hidden = ids.getNDArrayInternal().embedding(ids, weights.embedTokens(), SparseFormat.DENSE)
        .singletonOrThrow(); // (B, S) -> (B, S, H)
    NDList cosSin = rotaryEmb.cosSin(scope, batch.positions(), dtype);
    Map<Integer, NDArray> masks = new HashMap<>();
    for (int i = 0; i < config.numHiddenLayers(); i++) {
      int window = config.slidingWindows()[i];
      NDArray mask = masks.computeIfAbsent(window, w -> attentionMask(scope, batch, w));
      // A layer's temporaries live in a scope of their own and die with it; only its output moves on.
      NDArray input = hidden;
      try (NDManager layerScope = scope.newSubManager()) {
        input.tempAttach(layerScope);
        hidden = decoderLayer.forward(layerScope, input, weights.layers().get(i), i, rotaryEmb,
            cosSin.get(0), cosSin.get(1), mask, batch, cache);
        hidden.attach(scope);
      }
      input.close();
    }
    NDArray rows = scope.arange(0, (int) b, 1, DataType.INT64);
    NDArray last = hidden.get(new NDIndex("{}, {}", rows, batch.lastIndex())); // (B, S, H) -> (B, H)
    NDArray normed = RmsNorm.forward(last, weights.norm(), (float) config.rmsNormEps());
    return new Linear(weights.lmHead(), null).forward(normed).toType(DataType.FLOAT32, false); // (B, V)
  }

  /**
   * (B, 1, 1, S, T) float32: 0 where token (b, s) may attend to slot t (t at or before its position and,
   * for a sliding window W, within its last W positions), {@link #MASKED} elsewhere.
   */
  public static NDArray attentionMask(NDManager scope, ForwardBatch batch, int window) {
    NDArray positions = batch.positions(); // (B, S)
    long b = positions.getShape().get(0);
    long s = positions.getShape().get(1);
    int t = batch.keyLength();
    NDArray slots = scope.arange(0, t, 1, DataType.INT64).reshape(1, 1, t); // (T) -> (1, 1, T)
    NDArray queryPos = positions.expandDims(-1); // (B, S) -> (B, S, 1)
    NDArray visible = slots.lte(queryPos); // (B, S, T)
    if (window > 0) {
      visible = visible.logicalAnd(queryPos.sub(slots).lt(window));
    }
    return visible.toType(DataType.FLOAT32, false).sub(1f).mul(-MASKED).reshape(b, 1, 1, s, t); // (B, S, T) -> (B, 1, 1, S, T)
  }
}
