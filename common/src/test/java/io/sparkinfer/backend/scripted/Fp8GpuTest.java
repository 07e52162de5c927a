package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import io.sparkinfer.model.Precision;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code --precision fp8} on a GPU: torch._scaled_mm inside the fused prefill step and the fused decode graphs gives
 * transformers' first token for every prompt of the demo model; how far the greedy ids agree with transformers', in
 * fp8 and bf16 on the same GPU, is printed. Skipped without a GPU.
 */
@Tag("gpu")
class Fp8GpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: fp8 matmuls are checked on the GPU machine");
  }

  @Test
  void fp8GenerationOnTheGpuGivesTransformersFirstTokens() {
    Map<Precision, Integer> agreed = Fp8Test.agreementWithTransformers("gpu", engine -> {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.acceleration().fusedOffReason()).as(backend.describe()).isNull();
      assertThat(backend.acceleration().fusedPrefills()).as("fused prefill ran").isPositive();
      assertThat(backend.acceleration().fusedCaptures()).as("fused decode graphs ran").isPositive();
    });
    assertThat(agreed.get(Precision.FP8)).isPositive();
  }
}
