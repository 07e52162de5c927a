package io.sparkinfer.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.cuda.Bf16Bits;
import io.sparkinfer.cuda.CubinCache;
import io.sparkinfer.safetensors.Checkpoint;
import io.sparkinfer.safetensors.SafetensorsDtype;
import io.sparkinfer.safetensors.SafetensorsException;
import io.sparkinfer.safetensors.TensorInfo;
import io.sparkinfer.safetensors.TensorLoader;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * All weights of a Llama-family model on one device, loaded once and shared by every backend.
 *
 * <p>Each tensor's shape is checked against {@code config.json} before it is read. Projections that read
 * the same input are stored stacked (q/k/v, gate/up) and exposed both fused and as per-projection views. The arrays live in a
 * manager of their own that is capped after loading, so an op that would attach a temporary to the
 * weights (a leak per step) fails at once instead.
 *
 * <p>Dimensions: V vocab, H hidden, N query heads, K key/value heads, D head dim, I MLP width.
 */
public final class ModelWeights implements AutoCloseable {

  /** Keys of the model-wide tensors in {@link #stepParameters()}, as in checkpoints. */
  public static final String EMBED_TOKENS = "model.embed_tokens.weight";
  public static final String NORM = "model.norm.weight";
  public static final String LM_HEAD = "lm_head.weight";

  private final ModelConfig config;
  private final Precision precision;
  private final NDManager manager;
  private final NDArray embedTokens; // (V, H)
  private final List<LayerWeights> layers;
  private final NDArray norm; // (H)
  private final NDArray lmHead; // (V, H), embedTokens itself when tied

  private ModelWeights(ModelConfig config, Precision precision, NDManager manager, NDArray embedTokens,
      List<LayerWeights> layers, NDArray norm, NDArray lmHead) {
    this.config = config;
    this.precision = precision;
    this.manager = manager;
    this.embedTokens = embedTokens;
    this.layers = List.copyOf(layers);
    this.norm = norm;
    this.lmHead = lmHead;
  }

  /**
   * Checks from the checkpoint's headers alone that it holds every tensor {@code config} implies, in that
   * shape and in a dtype the engine loads (F32, F16, BF16): a checkpoint that disagrees with its config.json
   * fails here, naming the tensor and its file, before any weight is read or any device memory is taken.
   *
   * @throws ModelLoadException for a missing tensor, a wrong shape or a dtype that is not a float the engine loads
   */
  public static void check(Checkpoint checkpoint, ModelConfig config) {
    for (Map.Entry<String, long[]> e : requiredShapes(checkpoint, config).entrySet()) {
      TensorInfo info = checkpoint.tensor(e.getKey());
      if (!Arrays.equals(info.shape(), e.getValue())) {
        throw new ModelLoadException("tensor '" + e.getKey() + "' has shape " + Arrays.toString(info.shape())
            + " but config.json implies " + Arrays.toString(e.getValue()) + " (in " + info.file() + ")");
      }
      if (!info.dtype().isLoadableFloat()) {
        throw new SafetensorsException("tensor '" + e.getKey() + "' has dtype " + info.dtype()
            + "; weights must be F32, F16 or BF16 (in " + info.file() + ")");
      }
    }
  }

  /**
   * The tensors {@link #load} reads, by checkpoint name, with the shape config.json implies for each: the
   * embedding, each layer's projections (their biases when the config has them) and norms, the final norm, and
   * the LM head unless the embeddings are tied.
   */
  static Map<String, long[]> requiredShapes(Checkpoint checkpoint, ModelConfig config) {
    long h = config.hiddenSize();
    long q = (long) config.numAttentionHeads() * config.headDim();
    long kv = (long) config.numKeyValueHeads() * config.headDim();
    long inter = config.intermediateSize();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    shapes.put(EMBED_TOKENS, new long[] {config.vocabSize(), h});
    for (int i = 0; i < config.numHiddenLayers(); i++) {
      String p = LayerParameter.layerPrefix(i);
      shapes.put(p + "input_layernorm.weight", new long[] {h});
      linear(shapes, p + "self_attn.q_proj", q, h, config.qkvBias());
      linear(shapes, p + "self_attn.k_proj", kv, h, config.qkvBias());
      linear(shapes, p + "self_attn.v_proj", kv, h, config.qkvBias());
      linear(shapes, p + "self_attn.o_proj", h, q, config.oProjBias());
      shapes.put(p + "post_attention_layernorm.weight", new long[] {h});
      linear(shapes, p + "mlp.gate_proj", inter, h, config.mlpBias());
      linear(shapes, p + "mlp.up_proj", inter, h, config.mlpBias());
      linear(shapes, p + "mlp.down_proj", h, inter, config.mlpBias());
    }
    shapes.put(NORM, new long[] {h});
    if (!config.tieWordEmbeddings()) {
      if (!checkpoint.has(LM_HEAD)) {
        throw new ModelLoadException("checkpoint " + checkpoint.dir() + " has no lm_head.weight and config.json "
            + "does not set tie_word_embeddings");
      }
      shapes.put(LM_HEAD, new long[] {config.vocabSize(), h});
    }
    return shapes;
  }

  private static void linear(Map<String, long[]> shapes, String prefix, long out, long in, boolean bias) {
    shapes.put(prefix + ".weight", new long[] {out, in});
    if (bias) {
      shapes.put(prefix + ".bias", new long[] {out});
    }
  }

  /**
   * Loads every weight of {@code config}'s model from {@code checkpoint} onto {@code device}, after
   * {@link #check} has passed.
   */
  public static ModelWeights load(Checkpoint checkpoint, ModelConfig config, Precision precision, Device device) {
    return load(checkpoint, config, precision, device, CubinCache.of("auto"));
  }

  /**
   * {@link #load(Checkpoint, ModelConfig, Precision, Device)}, with {@code kernels} keeping the CUDA kernel that widens
   * bf16 weights on a GPU ({@code --kernel-cache}; the first load in the process compiles it).
   */
  public static ModelWeights load(Checkpoint checkpoint, ModelConfig config, Precision precision, Device device,
      CubinCache kernels) {
    check(checkpoint, config);
    NDManager manager = NDManager.newBaseManager(device);
    try {
      Loader l = new Loader(checkpoint, manager, precision.dataType(), kernels);
      long h = config.hiddenSize();
      long q = (long) config.numAttentionHeads() * config.headDim();
      long kv = (long) config.numKeyValueHeads() * config.headDim();
      long inter = config.intermediateSize();
      NDArray embed = l.tensor(EMBED_TOKENS, config.vocabSize(), h);
      List<LayerWeights> layers = new ArrayList<>();
      for (int i = 0; i < config.numHiddenLayers(); i++) {
        String p = LayerParameter.layerPrefix(i);
        List<Linear> qkv = l.fused(config.qkvBias(), h, new String[] {p + "self_attn.q_proj", p + "self_attn.k_proj",
            p + "self_attn.v_proj"}, q, kv, kv);
        List<Linear> gateUp = l.fused(config.mlpBias(), h, new String[] {p + "mlp.gate_proj", p + "mlp.up_proj"},
            inter, inter);
        layers.add(new LayerWeights(
            l.tensor(p + "input_layernorm.weight", h),
            qkv.get(1), qkv.get(2), qkv.get(3),
            l.linear(p + "self_attn.o_proj", h, q, config.oProjBias()),
            l.tensor(p + "post_attention_layernorm.weight", h),
            gateUp.get(1), gateUp.get(2),
            l.linear(p + "mlp.down_proj", h, inter, config.mlpBias()),
            qkv.get(0), gateUp.get(0)));
      }
      NDArray norm = l.tensor(NORM, h);
      NDArray lmHead;
      if (checkpoint.has(LM_HEAD) && !config.tieWordEmbeddings()) {
        lmHead = l.tensor(LM_HEAD, config.vocabSize(), h);
      } else if (config.tieWordEmbeddings()) {
        lmHead = embed;
      } else {
        throw new ModelLoadException("checkpoint " + checkpoint.dir() + " has no lm_head.weight and config.json "
            + "does not set tie_word_embeddings");
      }
      manager.cap();
      return new ModelWeights(config, precision, manager, embed, layers, norm, lmHead);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /**
   * Reads tensors by name, checking each one's shape first. bf16 weights are read as fp32 (DJL cannot make
   * bf16 tensors) and cast on the device by {@link ScriptedTensors}.
   */
  private record Loader(Checkpoint checkpoint, NDManager manager, DataType dataType, CubinCache kernels) {
    NDArray tensor(String name, long... expectedShape) {
      return inDtype(read(name, expectedShape));
    }

    /** The tensor in the dtype DJL can load it in: the target's, or fp32 for a bf16 target. */
    private NDArray read(String name, long... expectedShape) {
      TensorInfo info = checkpoint.tensor(name);
      if (!Arrays.equals(info.shape(), expectedShape)) {
        throw new ModelLoadException("tensor '" + name + "' has shape " + Arrays.toString(info.shape())
            + " but config.json implies " + Arrays.toString(expectedShape));
      }
      DataType loadable = dataType == DataType.BFLOAT16 ? DataType.FLOAT32 : dataType;
      if (info.dtype() == SafetensorsDtype.BF16 && Bf16Bits.available(manager.getDevice(), kernels)) { // widened on the GPU
        try (NDArray bits = TensorLoader.loadBf16Bits(info, manager)) {
          NDArray wide = Bf16Bits.toFloat32(bits);
          if (loadable == DataType.FLOAT32) {
            return wide;
          }
          try (wide) {
            return wide.toType(loadable, false);
          }
        }
      }
      return TensorLoader.load(info, manager, loadable);
    }

    private NDArray inDtype(NDArray loaded) {
      if (dataType != DataType.BFLOAT16) {
        return loaded;
      }
      NDArray cast = ScriptedTensors.cast(loaded, dataType);
      loaded.close();
      return cast;
    }

    Linear linear(String prefix, long out, long in, boolean bias) {
      NDArray w = tensor(prefix + ".weight", out, in);
      NDArray b = bias ? tensor(prefix + ".bias", out) : null;
      return new Linear(w, b);
    }

    /**
     * Projections that read the same input, stacked into one (sum of outs, in) matrix so a backend can run
     * them as one matrix multiplication; each part is a view of its rows, so the weights are held once.
     *
     * @return the fused projection, then one view per part
     */
    List<Linear> fused(boolean bias, long in, String[] prefixes, long... outs) {
      NDList weights = new NDList();
      NDList biases = new NDList();
      try {
        for (int i = 0; i < prefixes.length; i++) {
          weights.add(read(prefixes[i] + ".weight", outs[i], in));
          if (bias) {
            biases.add(read(prefixes[i] + ".bias", outs[i]));
          }
        }
        NDArray w = inDtype(NDArrays.concat(weights, 0)); // (sum outs, in)
        NDArray b = bias ? inDtype(NDArrays.concat(biases, 0)) : null; // (sum outs)
        List<Linear> out = new ArrayList<>();
        out.add(new Linear(w, b));
        long at = 0;
        for (long n : outs) {
          NDIndex rows = new NDIndex("{}:{}", at, at + n);
          out.add(new Linear(w.get(rows), b == null ? null : b.get(rows)));
          at += n;
        }
        return out;
      } finally {
        weights.close();
        biases.close();
      }
    }
  }

  public ModelConfig config() {
    return config;
  }

  public Precision precision() {
    return precision;
  }

  public Device device() {
    return manager.getDevice();
  }

  public NDArray embedTokens() {
    return embedTokens;
  }

  public List<LayerWeights> layers() {
    return layers;
  }

  public NDArray norm() {
    return norm;
  }

  public NDArray lmHead() {
    return lmHead;
  }

  /**
   * Every tensor the step kernels read, by key: {@link #EMBED_TOKENS}, {@link #NORM}, {@link #LM_HEAD} (the
   * embedding itself when tied) and each layer's {@link LayerParameter}s (optional ones only when present),
   * in that order.
   */
  public Map<String, NDArray> stepParameters() {
    Map<String, NDArray> out = new LinkedHashMap<>();
    out.put(EMBED_TOKENS, embedTokens);
    out.put(NORM, norm);
    out.put(LM_HEAD, lmHead);
    for (int i = 0; i < layers.size(); i++) {
      for (LayerParameter p : LayerParameter.values()) {
        NDArray t = p.of(layers.get(i));
        if (t != null) {
          out.put(p.key(i), t);
        } else if (!p.optional()) {
          throw new IllegalStateException("layer " + i + " has no " + p.key());
        }
      }
    }
    return out;
  }

  /** The manager that owns the weights (capped: nothing new may attach to it). */
  public NDManager manager() {
    return manager;
  }

  @Override
  public void close() {
    manager.close();
  }
}
