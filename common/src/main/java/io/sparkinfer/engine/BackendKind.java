package io.sparkinfer.engine;

import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.eager.CausalLm;
import io.sparkinfer.backend.scripted.ScriptedCausalLm;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.RotaryEmbedding;
import io.sparkinfer.options.OptionValues;
import java.util.Locale;

/** The backends an engine can run, by their names on command lines ({@code --backend}). */
public enum BackendKind {
  /** The model in Java with DJL ops, op by op: the readable reference; host-bound on a GPU. */
  EAGER {
    @Override
    CausalLmBackend create(ModelWeights weights, RotaryEmbedding rope, OptionValues options) {
      return new CausalLm(weights, rope);
    }
  },
  /** One TorchScript call per step; on GPUs, CUDA graphs of fused kernels. */
  SCRIPTED {
    @Override
    CausalLmBackend create(ModelWeights weights, RotaryEmbedding rope, OptionValues options) {
      return new ScriptedCausalLm(weights, rope, options);
    }
  };

  /** A backend over {@code weights}, reading its settings from the engine's {@code options}. */
  abstract CausalLmBackend create(ModelWeights weights, RotaryEmbedding rope, OptionValues options);

  /** {@code eager} or {@code scripted}. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
