package io.sparkinfer.backend.eager;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/** Root-mean-square layer norm, computed in float32 as Hugging Face's {@code LlamaRMSNorm} does. */
public final class RmsNorm {

  private RmsNorm() {}

  /**
   * (..., H) -> (..., H): {@code weight * (x / sqrt(mean(x^2) + eps))}, the normalisation in float32 and the
   * result cast back to {@code x}'s dtype before the weight is applied.
   */
  public static NDArray forward(NDArray x, NDArray weight, float eps) {
    DataType dtype = x.getDataType();
    NDArray xf = x.toType(DataType.FLOAT32, false);
    NDArray variance = xf.square().mean(new int[] {-1}, true); // (..., 1)
    NDArray normed = xf.div(variance.add(eps).sqrt()).toType(dtype, false);
    return normed.mul(weight);
  }
}
