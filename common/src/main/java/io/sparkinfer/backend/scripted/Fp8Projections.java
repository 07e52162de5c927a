package io.sparkinfer.backend.scripted;

import static io.sparkinfer.model.LayerParameter.DOWN_PROJ_WEIGHT;
import static io.sparkinfer.model.LayerParameter.GATE_UP_PROJ_WEIGHT;
import static io.sparkinfer.model.LayerParameter.O_PROJ_WEIGHT;
import static io.sparkinfer.model.LayerParameter.QKV_PROJ_WEIGHT;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.sparkinfer.model.LayerParameter;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The step parameters of {@link io.sparkinfer.model.Precision#FP8}: each decoder layer's four projection weights
 * quantized once to float8 e4m3 with a float32 scale per output channel, under the weight's key and its
 * {@link LayerParameter#scaleKey} ({@code (1, out)}); every other parameter as loaded (bf16). {@code llama_step.py}'s
 * {@code fp8_mm} and the fused steps' projections ({@code fused_decode.py}) multiply with them.
 *
 * <p>The bf16 projection weights stay loaded beside their float8 copies (the model's weights are one block of
 * memory, freed together): fp8 saves matmul time, not device memory, for now.
 */
public final class Fp8Projections {

  /** The parameters quantized: the projections' weights (their biases, norms, embeddings, LM head stay bf16). */
  public static final List<LayerParameter> WEIGHTS = List.of(QKV_PROJ_WEIGHT, O_PROJ_WEIGHT, GATE_UP_PROJ_WEIGHT,
      DOWN_PROJ_WEIGHT);

  /** {@code torch._scaled_mm} takes inner and output sizes that are multiples of this. */
  static final int ALIGNMENT = 16;

  private Fp8Projections() {}

  /**
   * {@code params} ({@link io.sparkinfer.model.ModelWeights#stepParameters()}) with the projections of layers
   * {@code 0 .. layers - 1} quantized, the new tensors attached to {@code manager}.
   *
   * @throws IllegalArgumentException for a projection whose sizes are not multiples of 16, before any is quantized
   */
  public static Map<String, NDArray> of(Map<String, NDArray> params, int layers, NDManager manager) {
    for (int i = 0; i < layers; i++) {
      for (LayerParameter p : WEIGHTS) {
        long[] shape = params.get(p.key(i)).getShape().getShape(); // (out, in)
        if (shape[0] % ALIGNMENT != 0 || shape[1] % ALIGNMENT != 0) {
          throw new IllegalArgumentException("--precision fp8 needs projections whose sizes are multiples of "
              + ALIGNMENT + " (float8 matmuls); " + p.key(i) + " is " + shape[0] + " x " + shape[1]
              + ": use bf16 or fp16 for this model");
        }
      }
    }
    Map<String, NDArray> out = new LinkedHashMap<>(params);
    for (int i = 0; i < layers; i++) {
      for (LayerParameter p : WEIGHTS) {
        NDArray[] quantized = ScriptedTensors.quantizeFp8Rows(params.get(p.key(i)), manager); // (out, in), (1, out)
        out.put(p.key(i), quantized[0]);
        out.put(p.scaleKey(i), quantized[1]);
      }
    }
    return out;
  }
}
