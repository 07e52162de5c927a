package io.sparkinfer.backend.sharded;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.SparseFormat;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.eager.Attention;
import io.sparkinfer.backend.eager.CausalLm;
import io.sparkinfer.backend.eager.Mlp;
import io.sparkinfer.backend.eager.RmsNorm;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.LayerWeights;
import io.sparkinfer.model.Linear;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.model.RotaryEmbedding;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One replica of the model split over devices: {@code pp} pipeline stages of consecutive layers, each split into
 * {@code tp} tensor-parallel shards as Hugging Face's tensor-parallel plan states it ({@code base_model_tp_plan}):
 * the q/k/v and gate/up projections by columns (each shard computes its own heads and its slice of the MLP
 * width), the o and down projections by rows (each shard's partial sum, added on the stage's first device, the
 * bias once), the LM head by vocabulary rows (each shard's logits, joined), the KV cache by key/value heads (a
 * {@link KvCache} per shard, {@link ShardedCache}). Norms and the residual stream live on the stage's first device;
 * hidden states are copied to each shard's device and between stages.
 *
 * <p>Each shard runs the eager step's components ({@link Attention}, {@link Mlp}, {@link RmsNorm}) on its slice
 * of the weights, so the split model computes the unsplit one's math with the partial sums added in another
 * order (logits equal to rounding). DJL has no collective operations: a reduction is a copy of each partial sum
 * to the first device and an add there. Shards may share a device (on a CPU, or on one GPU for checks).
 *
 * <p>Dimensions: B batch, S tokens, H hidden, N query heads, K key/value heads, D head dim, I MLP width, V vocab,
 * T shards of a stage.
 */
public final class ShardedCausalLm implements CausalLmBackend {

  /** One shard: a stage's slice of its layers' weights on one device, with the config of that slice. */
  record Shard(Device device, ModelConfig config, List<LayerWeights> layers, Attention attention) {}

  /** A pipeline stage: its layers [first, end) and its shards. */
  record Stage(int first, int end, List<Shard> shards) {
    Device device() {
      return shards.get(0).device();
    }
  }

  private final ModelConfig config;
  private final Precision precision;
  private final Layout layout;
  private final RotaryEmbedding rope;
  private final NDManager manager;
  private final List<Stage> stages = new ArrayList<>();
  /** Per stage and layer: the norms, on the stage's first device. */
  private final Map<Integer, NDArray[]> norms = new HashMap<>();
  private final NDArray embedTokens; // (V, H) on the first stage's device
  private final NDArray norm; // (H) on the last stage's device
  private final List<NDArray> lmHeads = new ArrayList<>(); // per last-stage shard: (V_t, H)

  /**
   * Splits {@code weights} (loaded whole, on any device) over {@code devices}: stage {@code s}, shard {@code t}
   * takes {@code devices[(s * tp + t) % devices.size()]}, so one device may hold every shard.
   */
  public ShardedCausalLm(ModelWeights weights, RotaryEmbedding rope, Layout layout, List<Device> devices) {
    if (weights.precision().isBf16()) {
      throw new IllegalArgumentException("tp and pp layouts run the eager step on each shard, which cannot compute in "
          + weights.precision().label() + " (DJL makes no bf16 tensors): use --precision fp16 or fp32 with them");
    }
    this.config = weights.config();
    this.precision = weights.precision();
    this.layout = layout;
    this.rope = rope;
    this.manager = NDManager.newBaseManager(devices.get(0));
    try {
      int tp = layout.tp();
      List<int[]> split = layout.stageLayers(config.numHiddenLayers());
      for (int s = 0; s < split.size(); s++) {
        int[] range = split.get(s);
        List<Shard> shards = new ArrayList<>();
        for (int t = 0; t < tp; t++) {
          Device d = devices.get((s * tp + t) % devices.size());
          ModelConfig shardConfig = shardConfig(range, tp);
          List<LayerWeights> layers = new ArrayList<>();
          for (int l = range[0]; l < range[1]; l++) {
            layers.add(slice(weights.layers().get(l), t, tp, d));
          }
          shards.add(new Shard(d, shardConfig, layers, new Attention(shardConfig)));
        }
        Stage stage = new Stage(range[0], range[1], shards);
        stages.add(stage);
        for (int l = range[0]; l < range[1]; l++) {
          LayerWeights w = weights.layers().get(l);
          norms.put(l, new NDArray[] {copy(w.inputLayernorm(), null, stage.device()),
              copy(w.postAttentionLayernorm(), null, stage.device())});
        }
      }
      this.embedTokens = copy(weights.embedTokens(), null, stages.get(0).device());
      Stage last = stages.get(stages.size() - 1);
      this.norm = copy(weights.norm(), null, last.device());
      int vocab = config.vocabSize();
      for (int t = 0; t < tp; t++) {
        int[] rows = evenSplit(vocab, tp, t);
        lmHeads.add(copy(weights.lmHead(), new NDIndex("{}:{}", rows[0], rows[1]), last.shards().get(t).device()));
      }
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /** The config a shard of layers {@code range} computes with: its share of the heads and of the MLP width. */
  private ModelConfig shardConfig(int[] range, int tp) {
    int[] windows = java.util.Arrays.copyOfRange(config.slidingWindows(), range[0], range[1]);
    return new ModelConfig(config.modelType(), config.vocabSize(), config.hiddenSize(), config.intermediateSize() / tp,
        range[1] - range[0], config.numAttentionHeads() / tp, config.numKeyValueHeads() / tp, config.headDim(),
        config.rmsNormEps(), config.ropeTheta(), config.ropeScaling(), config.maxPositionEmbeddings(),
        config.tieWordEmbeddings(), config.qkvBias(), config.oProjBias(), config.mlpBias(), windows,
        config.torchDtype(), config.eosTokenIds());
  }

  /**
   * Shard {@code t} of a layer's weights on {@code d}: q, k, v, gate and up by output rows (heads, MLP width); o
   * and down by input columns, with their biases on shard 0 only (added once after the partial sums).
   */
  private LayerWeights slice(LayerWeights w, int t, int tp, Device d) {
    int dim = config.headDim();
    int[] q = evenSplit(config.numAttentionHeads() * dim, tp, t);
    int[] kv = evenSplit(config.numKeyValueHeads() * dim, tp, t);
    int[] inter = evenSplit(config.intermediateSize(), tp, t);
    Linear qProj = rows(w.qProj(), q, d);
    Linear kProj = rows(w.kProj(), kv, d);
    Linear vProj = rows(w.vProj(), kv, d);
    Linear oProj = columns(w.oProj(), q, t == 0, d);
    Linear gateProj = rows(w.gateProj(), inter, d);
    Linear upProj = rows(w.upProj(), inter, d);
    Linear downProj = columns(w.downProj(), inter, t == 0, d);
    // the eager step reads the separate projections: no stacked q/k/v or gate/up for a shard
    return new LayerWeights(null, qProj, kProj, vProj, oProj, null, gateProj, upProj, downProj, null, null);
  }

  private Linear rows(Linear l, int[] range, Device d) {
    NDIndex rows = new NDIndex("{}:{}", range[0], range[1]);
    return new Linear(copy(l.weight(), rows, d), l.bias() == null ? null : copy(l.bias(), rows, d));
  }

  private Linear columns(Linear l, int[] range, boolean withBias, Device d) {
    NDIndex columns = new NDIndex(":, {}:{}", range[0], range[1]);
    return new Linear(copy(l.weight(), columns, d), withBias && l.bias() != null ? copy(l.bias(), null, d) : null);
  }

  /** A contiguous copy of {@code a} (or of its {@code index} slice) on {@code d}, owned by this backend. */
  private NDArray copy(NDArray a, NDIndex index, Device d) {
    NDArray view = index == null ? a.get(manager, new NDIndex("...")) : a.get(manager, index);
    NDArray out = view.toDevice(d, true);
    if (out != view) {
      view.close();
    }
    return out;
  }

  /** Part {@code t} of {@code n} items in {@code parts}, the earlier parts one larger: {@code [from, to)}. */
  static int[] evenSplit(int n, int parts, int t) {
    int base = n / parts;
    int extra = n % parts;
    int from = t * base + Math.min(t, extra);
    return new int[] {from, from + base + (t < extra ? 1 : 0)};
  }

  @Override
  public String name() {
    return "eager";
  }

  @Override
  public String describe() {
    List<String> devices = new ArrayList<>();
    for (Stage s : stages) {
      for (Shard sh : s.shards()) {
        devices.add(sh.device().toString());
      }
    }
    return String.format(Locale.ROOT, "eager backend sharded tp=%d pp=%d over %s", layout.tp(), layout.pp(),
        devices);
  }

  @Override
  public BatchCache allocateCache(NDManager parent, int batchSize, int capacity) {
    List<KvCache> caches = new ArrayList<>();
    try {
      for (Stage s : stages) {
        for (Shard sh : s.shards()) {
          caches.add(KvCache.allocate(parent.newSubManager(sh.device()), sh.config(), batchSize, capacity,
              precision.dataType()));
        }
      }
    } catch (RuntimeException e) {
      caches.forEach(KvCache::close);
      throw e;
    }
    return new ShardedCache(caches, batchSize, capacity);
  }

  /**
   * The step: embedding on the first stage, each layer's attention and MLP as partial sums over the stage's
   * shards added into the residual stream, the final norm and the LM head's slices joined.
   *
   * @return (B, V) float32 logits on {@code scope}'s device
   */
  @Override
  public NDArray forward(NDManager scope, ForwardBatch batch, BatchCache batchCache) {
    batch.requireRowsInOrder(name());
    ShardedCache cache = ShardedCache.of(batchCache);
    NDArray ids = batch.inputIds().toDevice(stages.get(0).device(), false); // (B, S)
    NDArray hidden = ids.getNDArrayInternal().embedding(ids, embedTokens, SparseFormat.DENSE).singletonOrThrow(); // (B, S) -> (B, S, H)
    Map<Device, Inputs> inputs = new HashMap<>();
    int shardIndex = 0;
    for (Stage stage : stages) {
      hidden = hidden.toDevice(stage.device(), false);
      for (int l = stage.first(); l < stage.end(); l++) {
        int local = l - stage.first();
        NDArray[] ln = norms.get(l);
        NDArray input = hidden;
        try (NDManager layerScope = scope.newSubManager()) {
          input.tempAttach(layerScope);
          NDArray normed = RmsNorm.forward(input, ln[0], (float) config.rmsNormEps());
          List<NDArray> partials = new ArrayList<>();
          for (int t = 0; t < stage.shards().size(); t++) {
            Shard sh = stage.shards().get(t);
            Inputs in = inputs.computeIfAbsent(sh.device(), d -> Inputs.of(scope, batch, d, rope, precision));
            NDArray x = normed.toDevice(sh.device(), false);
            partials.add(sh.attention().forward(layerScope, x, sh.layers().get(local), local, rope, in.cos(), in.sin(),
                in.mask(sh.config().slidingWindows()[local], scope), in.batch(), cache.shard(shardIndex + t)));
          }
          NDArray h = input.add(sum(partials, stage.device()));
          NDArray normed2 = RmsNorm.forward(h, ln[1], (float) config.rmsNormEps());
          partials.clear();
          for (Shard sh : stage.shards()) {
            partials.add(Mlp.forward(normed2.toDevice(sh.device(), false), sh.layers().get(local)));
          }
          hidden = h.add(sum(partials, stage.device()));
          hidden.attach(scope);
        }
        input.close();
      }
      shardIndex += stage.shards().size();
    }
    Stage last = stages.get(stages.size() - 1);
    NDArray rows = scope.arange(0, (int) batch.inputIds().getShape().get(0), 1, DataType.INT64)
        .toDevice(last.device(), false);
    NDArray lastIndex = batch.lastIndex().toDevice(last.device(), false);
    NDArray lastHidden = hidden.get(new NDIndex("{}, {}", rows, lastIndex)); // (B, S, H) -> (B, H)
    NDArray normed = RmsNorm.forward(lastHidden, norm, (float) config.rmsNormEps());
    NDList logits = new NDList();
    for (int t = 0; t < last.shards().size(); t++) {
      NDArray x = normed.toDevice(last.shards().get(t).device(), false);
      logits.add(new Linear(lmHeads.get(t), null).forward(x).toDevice(last.device(), false)); // (B, V_t)
    }
    NDArray out = (logits.size() == 1 ? logits.get(0) : NDArrays.concat(logits, -1)) // (B, V_t)... -> (B, V)
        .toType(DataType.FLOAT32, false).toDevice(scope.getDevice(), false);
    out.attach(scope);
    return out;
  }

  /** The sum of partial results on {@code device}: DJL has no all-reduce, so a copy of each and an add. */
  private static NDArray sum(List<NDArray> partials, Device device) {
    NDArray total = partials.get(0).toDevice(device, false);
    for (int i = 1; i < partials.size(); i++) {
      total = total.add(partials.get(i).toDevice(device, false));
    }
    return total;
  }

  /**
   * A step's positions, rotary angles and masks on one device: made where the step's inputs are (the
   * generator's device), then copied.
   */
  private record Inputs(ForwardBatch step, ForwardBatch batch, NDArray cos, NDArray sin, Map<Integer, NDArray> masks) {
    static Inputs of(NDManager scope, ForwardBatch b, Device d, RotaryEmbedding rope, Precision precision) {
      ForwardBatch onDevice = new ForwardBatch(b.inputIds(), b.positions().toDevice(d, false),
          b.lastIndex().toDevice(d, false), b.keyLength());
      NDList cosSin = rope.cosSin(scope, b.positions(), precision.dataType()); // (B, 1, S, D) each
      return new Inputs(b, onDevice, cosSin.get(0).toDevice(d, false), cosSin.get(1).toDevice(d, false),
          new HashMap<>());
    }

    NDArray mask(int window, NDManager scope) {
      return masks.computeIfAbsent(window, w -> CausalLm.attentionMask(scope, step, w)
          .toDevice(batch.positions().getDevice(), false));
    }
  }

  @Override
  public void close() {
    manager.close();
  }
}
