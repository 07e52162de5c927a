package io.sparkinfer.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

/**
 * Rotary position embedding (RoPE): frequencies from the config's theta and rope scaling, angles computed
 * per position in float32 as Hugging Face's {@code LlamaRotaryEmbedding} does.
 *
 * <p>Dimensions: B batch, S tokens, N heads, D head dim.
 */
public final class RotaryEmbedding {

  private final float[] invFreq; // (D/2)
  private final int headDim;

  /** Frequencies in float32, as transformers computes them when it loads a checkpoint. */
  public RotaryEmbedding(ModelConfig config) {
    this(config, false);
  }

  /**
   * @param roundToCheckpointDtype round the frequencies to the checkpoint's {@code torch_dtype} (bf16 or
   *     fp16), reproducing a transformers model that was cast with {@code model.to(dtype)} after it was built:
   *     the cast rounds its {@code inv_freq} buffer, and a later {@code .float()} does not restore it. The
   *     fixtures' {@code reference.json} files were made that way.
   */
  public RotaryEmbedding(ModelConfig config, boolean roundToCheckpointDtype) {
    this.headDim = config.headDim();
    float[] freqs = config.ropeScaling().inverseFrequencies(config.ropeTheta(), headDim);
    if (roundToCheckpointDtype) {
      int mantissaBits = mantissaBits(config.torchDtype());
      for (int i = 0; i < freqs.length; i++) {
        freqs[i] = roundToMantissa(freqs[i], mantissaBits, mantissaBits == 10 ? -14 : -126);
      }
    }
    this.invFreq = freqs;
  }

  private static int mantissaBits(String torchDtype) {
    if (torchDtype == null) {
      return 23;
    }
    return switch (torchDtype) {
      case "bfloat16" -> 7;
      case "float16" -> 10;
      default -> 23;
    };
  }

  /** Rounds to the nearest value with {@code bits} explicit mantissa bits (ties to even), as a dtype cast does. */
  static float roundToMantissa(float x, int bits, int minExponent) {
    if (bits >= 23 || x == 0 || !Float.isFinite(x)) {
      return x;
    }
    double ulp = Math.scalb(1.0, Math.max(Math.getExponent(x), minExponent) - bits);
    return (float) (Math.rint(x / ulp) * ulp);
  }

  /** The inverse frequencies, (D/2). */
  public float[] inverseFrequencies() {
    return invFreq.clone();
  }

  /**
   * Cosines and sines of each position's angles.
   *
   * @param positions (B, S) int64
   * @return cos and sin, each (B, 1, S, D) in {@code dtype}, attached to {@code scope}
   */
  public NDList cosSin(NDManager scope, NDArray positions, DataType dtype) {
    NDArray inv = scope.create(invFreq); // (D/2)
    NDArray freqs = positions.toType(DataType.FLOAT32, false).expandDims(-1).mul(inv); // (B, S, 1) * (D/2) -> (B, S, D/2)
    NDArray emb = NDArrays.concat(new NDList(freqs, freqs), -1); // (B, S, D)
    NDArray cos = emb.cos().expandDims(1).toType(dtype, false); // (B, S, D) -> (B, 1, S, D)
    NDArray sin = emb.sin().expandDims(1).toType(dtype, false);
    return new NDList(cos, sin);
  }

  /** Rotates queries or keys: (B, N, S, D) -> (B, N, S, D). */
  public NDArray apply(NDArray x, NDArray cos, NDArray sin) {
    int half = headDim / 2;
    NDArray x1 = x.get(new NDIndex("..., :{}", half)); // (B, N, S, D/2)
    NDArray x2 = x.get(new NDIndex("..., {}:", half));
    NDArray rotated = NDArrays.concat(new NDList(x2.neg(), x1), -1); // rotate_half: (-x2, x1)
    return x.mul(cos).add(rotated.mul(sin));
  }
}
