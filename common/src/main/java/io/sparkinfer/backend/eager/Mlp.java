package io.sparkinfer.backend.eager;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import io.sparkinfer.model.LayerWeights;

/** The SwiGLU feed-forward block: {@code down(silu(gate(x)) * up(x))}. */
public final class Mlp {

  private Mlp() {}

  /** (B, S, H) -> (B, S, I) -> (B, S, H). */
  public static NDArray forward(NDArray x, LayerWeights w) {
    NDArray gate = w.gateProj().forward(x); // (B, S, I)
    NDArray up = w.upProj().forward(x); // (B, S, I)
    NDArray act = gate.mul(Activation.sigmoid(gate)); // silu
    return w.downProj().forward(act.mul(up)); // (B, S, H)
  }
}
