package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
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
    Path dir = Fixtures.demoModel();
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    int total = 0;
    for (int i = 0; i < cases.size(); i++) {
      requests.add(new GenerationRequest("p" + i, cases.get(i).prompt(), cases.get(i).greedyIds().length,
          SamplingParams.GREEDY, List.of(), true)); // references run past eos
      total += cases.get(i).greedyIds().length;
    }
    Map<Precision, Integer> agreed = new LinkedHashMap<>();
    for (Precision precision : new Precision[] {Precision.FP8, Precision.BF16}) {
      try (LlmEngine engine = LlmEngine.load(EngineOptions.of(dir, precision, "gpu"))) {
        ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
        assertThat(backend.acceleration().fusedOffReason()).as(backend.describe()).isNull();
        List<Completion> out = engine.generate(requests, 4);
        assertThat(backend.acceleration().fusedPrefills()).as("fused prefill ran").isPositive();
        assertThat(backend.acceleration().fusedCaptures()).as("fused decode graphs ran").isPositive();
        int n = 0;
        for (int i = 0; i < cases.size(); i++) {
          long[] ids = out.get(i).outputTokenIds();
          long[] reference = cases.get(i).greedyIds();
          if (precision == Precision.FP8) {
            assertThat(ids[0]).as("first token of %s", cases.get(i).prompt()).isEqualTo(reference[0]);
          }
          int mismatch = Arrays.mismatch(ids, reference);
          n += mismatch < 0 ? reference.length : mismatch;
        }
        agreed.put(precision, n);
      }
    }
    System.out.printf("Fp8GpuTest: greedy ids agreeing with transformers fp32 (leading ids of %d prompts, demo model, "
        + "GPU): fp8 %d of %d, bf16 %d of %d%n", cases.size(), agreed.get(Precision.FP8), total,
        agreed.get(Precision.BF16), total);
  }
}
