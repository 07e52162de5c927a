package io.sparkinfer.model;

import ai.djl.ndarray.NDArray;
import java.util.function.Function;

/**
 * The tensors of one decoder layer as the step kernels take them: the one description of a layer's
 * parameters. The TorchScript step ({@code llama_step.py}) and the fused decode step read them by these keys
 * from {@link ModelWeights#stepParameters()}, never by position; adding a bias or a norm is a new constant
 * here and a use in each step.
 *
 * <p>Keys are Hugging Face's names under {@code model.layers.<i>.}, with the projections that read the same
 * input stacked as the engine holds them: {@code self_attn.qkv_proj} (q, k and v rows) and
 * {@code mlp.gate_up_proj} (gate and up rows), as vLLM names them. Optional parameters are absent from the
 * map when the config has none (Qwen2's q/k/v biases; Llama's {@code attention_bias}, {@code mlp_bias}).
 *
 * <p>Dimensions: H hidden, N query heads, K key/value heads, D head dim, I MLP width.
 */
public enum LayerParameter {
  INPUT_LAYERNORM("input_layernorm.weight", "(H)", false, LayerWeights::inputLayernorm),
  QKV_PROJ_WEIGHT("self_attn.qkv_proj.weight", "(N*D + 2*K*D, H)", false, w -> w.qkvProj().weight()),
  QKV_PROJ_BIAS("self_attn.qkv_proj.bias", "(N*D + 2*K*D)", true, w -> w.qkvProj().bias()),
  O_PROJ_WEIGHT("self_attn.o_proj.weight", "(H, N*D)", false, w -> w.oProj().weight()),
  O_PROJ_BIAS("self_attn.o_proj.bias", "(H)", true, w -> w.oProj().bias()),
  POST_ATTENTION_LAYERNORM("post_attention_layernorm.weight", "(H)", false, LayerWeights::postAttentionLayernorm),
  GATE_UP_PROJ_WEIGHT("mlp.gate_up_proj.weight", "(2*I, H)", false, w -> w.gateUpProj().weight()),
  GATE_UP_PROJ_BIAS("mlp.gate_up_proj.bias", "(2*I)", true, w -> w.gateUpProj().bias()),
  DOWN_PROJ_WEIGHT("mlp.down_proj.weight", "(H, I)", false, w -> w.downProj().weight()),
  DOWN_PROJ_BIAS("mlp.down_proj.bias", "(H)", true, w -> w.downProj().bias());

  /** The prefix of layer {@code i}'s keys, as in checkpoints: {@code model.layers.<i>.}. */
  public static String layerPrefix(int layer) {
    return "model.layers." + layer + ".";
  }

  private final String key;
  private final String shape;
  private final boolean optional;
  private final Function<LayerWeights, NDArray> read;

  LayerParameter(String key, String shape, boolean optional, Function<LayerWeights, NDArray> read) {
    this.key = key;
    this.shape = shape;
    this.optional = optional;
    this.read = read;
  }

  /** The key within a layer, e.g. {@code self_attn.qkv_proj.weight}. */
  public String key() {
    return key;
  }

  /** The full key of layer {@code layer}'s tensor, e.g. {@code model.layers.3.self_attn.qkv_proj.weight}. */
  public String key(int layer) {
    return layerPrefix(layer) + key;
  }

  /**
   * The key of this weight's float8 scales in fp8 step parameters, {@code key(layer) + "_scale"} (e.g.
   * {@code model.layers.0.self_attn.qkv_proj.weight_scale}); see {@code io.sparkinfer.backend.scripted.Fp8Projections}.
   */
  public String scaleKey(int layer) {
    return key(layer) + "_scale";
  }

  /** The shape, in the dimension letters of the class comment. */
  public String shape() {
    return shape;
  }

  /** Whether a model may lack it (a bias): then {@link #of} is null. */
  public boolean optional() {
    return optional;
  }

  /** Whether a model of {@code config} has this parameter (biases follow its bias flags). */
  public boolean present(ModelConfig config) {
    return switch (this) {
      case QKV_PROJ_BIAS -> config.qkvBias();
      case O_PROJ_BIAS -> config.oProjBias();
      case GATE_UP_PROJ_BIAS, DOWN_PROJ_BIAS -> config.mlpBias();
      default -> true;
    };
  }

  /** The shape for {@code config}, as {@link #shape()} says it. */
  public long[] shape(ModelConfig config) {
    long h = config.hiddenSize();
    long qkv = (long) (config.numAttentionHeads() + 2 * config.numKeyValueHeads()) * config.headDim();
    long i = config.intermediateSize();
    return switch (this) {
      case INPUT_LAYERNORM, POST_ATTENTION_LAYERNORM, O_PROJ_BIAS, DOWN_PROJ_BIAS -> new long[] {h};
      case QKV_PROJ_WEIGHT -> new long[] {qkv, h};
      case QKV_PROJ_BIAS -> new long[] {qkv};
      case O_PROJ_WEIGHT -> new long[] {h, (long) config.numAttentionHeads() * config.headDim()};
      case GATE_UP_PROJ_WEIGHT -> new long[] {2 * i, h};
      case GATE_UP_PROJ_BIAS -> new long[] {2 * i};
      case DOWN_PROJ_WEIGHT -> new long[] {h, i};
    };
  }

  /** The layer's tensor, or null when an optional parameter is absent. */
  public NDArray of(LayerWeights weights) {
    return read.apply(weights);
  }
}
