package io.sparkinfer.model;

import ai.djl.ndarray.NDArray;

/**
 * A projection {@code y = x W^T + b}, as {@code torch.nn.Linear} stores it.
 *
 * @param weight (out, in)
 * @param bias (out), or null
 */
public record Linear(NDArray weight, NDArray bias) {

  /** (..., in) -> (..., out); the result belongs to {@code x}'s manager. */
  public NDArray forward(NDArray x) {
    return x.getNDArrayInternal().linear(x, weight, bias).singletonOrThrow();
  }
}
