package io.sparkinfer.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.sparkinfer.safetensors.Checkpoint;
import io.sparkinfer.safetensors.TensorInfo;
import io.sparkinfer.safetensors.TensorLoader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * All weights of a Llama-family model on one device, loaded once and shared by every backend.
 *
 * <p>Each tensor's shape is checked against {@code config.json} before it is read. The arrays live in a
 * manager of their own that is capped after loading, so an op that would attach a temporary to the
 * weights (a leak per step) fails at once instead.
 *
 * <p>Dimensions: V vocab, H hidden, N query heads, K key/value heads, D head dim, I MLP width.
 */
public final class ModelWeights implements AutoCloseable {

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

  /** Loads every weight of {@code config}'s model from {@code checkpoint} onto {@code device}. */
  public static ModelWeights load(Checkpoint checkpoint, ModelConfig config, Precision precision, Device device) {
    NDManager manager = NDManager.newBaseManager(device);
    try {
      Loader l = new Loader(checkpoint, manager, precision.dataType());
      long h = config.hiddenSize();
      long q = (long) config.numAttentionHeads() * config.headDim();
      long kv = (long) config.numKeyValueHeads() * config.headDim();
      long inter = config.intermediateSize();
      NDArray embed = l.tensor("model.embed_tokens.weight", config.vocabSize(), h);
      List<LayerWeights> layers = new ArrayList<>();
      for (int i = 0; i < config.numHiddenLayers(); i++) {
        String p = "model.layers." + i + ".";
        layers.add(new LayerWeights(
            l.tensor(p + "input_layernorm.weight", h),
            l.linear(p + "self_attn.q_proj", q, h, config.qkvBias()),
            l.linear(p + "self_attn.k_proj", kv, h, config.qkvBias()),
            l.linear(p + "self_attn.v_proj", kv, h, config.qkvBias()),
            l.linear(p + "self_attn.o_proj", h, q, config.oProjBias()),
            l.tensor(p + "post_attention_layernorm.weight", h),
            l.linear(p + "mlp.gate_proj", inter, h, config.mlpBias()),
            l.linear(p + "mlp.up_proj", inter, h, config.mlpBias()),
            l.linear(p + "mlp.down_proj", h, inter, config.mlpBias())));
      }
      NDArray norm = l.tensor("model.norm.weight", h);
      NDArray lmHead;
      if (checkpoint.has("lm_head.weight") && !config.tieWordEmbeddings()) {
        lmHead = l.tensor("lm_head.weight", config.vocabSize(), h);
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

  /** Reads tensors by name, checking each one's shape first. */
  private record Loader(Checkpoint checkpoint, NDManager manager, DataType dataType) {
    NDArray tensor(String name, long... expectedShape) {
      TensorInfo info = checkpoint.tensor(name);
      if (!Arrays.equals(info.shape(), expectedShape)) {
        throw new ModelLoadException("tensor '" + name + "' has shape " + Arrays.toString(info.shape())
            + " but config.json implies " + Arrays.toString(expectedShape));
      }
      return TensorLoader.load(info, manager, dataType);
    }

    Linear linear(String prefix, long out, long in, boolean bias) {
      NDArray w = tensor(prefix + ".weight", out, in);
      NDArray b = bias ? tensor(prefix + ".bias", out) : null;
      return new Linear(w, b);
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

  /** The manager that owns the weights (capped: nothing new may attach to it). */
  public NDManager manager() {
    return manager;
  }

  @Override
  public void close() {
    manager.close();
  }
}
