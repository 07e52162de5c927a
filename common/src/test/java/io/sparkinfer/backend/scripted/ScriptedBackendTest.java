package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The TorchScript step kernel against the eager Java model and transformers' references, on CPU libtorch. */
class ScriptedBackendTest {

  static Stream<Arguments> fixtures() {
    return Stream.of(Arguments.of("qwen2-tiny"), Arguments.of("qwen2-code-demo"));
  }

  /**
   * Same weights, same math, other kernels (libtorch's SDPA and fused projections against DJL op by op):
   * fp32 logits agree to float rounding; fp16 to its rounding (see ReferenceConformanceTest for the bound).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void scriptedLogitsEqualEagerLogits(String name) {
    Path dir = Fixtures.model(name);
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    for (Precision precision : Precision.values()) {
      EngineOptions eager = EngineOptions.of(dir, precision, "cpu");
      try (LlmEngine e = LlmEngine.load(eager); LlmEngine s = LlmEngine.load(eager.with(EngineOptions.BACKEND, BackendKind.SCRIPTED))) {
        float[][] a = Fixtures.lastLogits(e, cases);
        float[][] b = Fixtures.lastLogits(s, cases);
        float bound = precision == Precision.FP32 ? 1e-4f : 5e-2f;
        for (int i = 0; i < cases.size(); i++) {
          assertThat(ReferenceConformanceTest.maxAbsDiff(a[i], b[i])).as("%s %s", precision, cases.get(i).prompt())
              .isLessThan(bound);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void scriptedGreedyIdsEqualEagerAndReferenceInContinuousBatches(String name) {
    Path dir = Fixtures.model(name);
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(GenerationRequest.greedy("p" + i, cases.get(i).prompt(), cases.get(i).greedyIds().length));
    }
    EngineOptions eager = EngineOptions.of(dir, Precision.FP32, "cpu");
    try (LlmEngine e = LlmEngine.load(eager); LlmEngine s = LlmEngine.load(eager.with(EngineOptions.BACKEND, BackendKind.SCRIPTED))) {
      assertThat(s.describe()).contains("scripted backend");
      List<Completion> fromEager = e.generate(requests, 3);
      List<Completion> fromScripted = s.generate(requests, 3);
      for (int i = 0; i < cases.size(); i++) {
        assertThat(fromScripted.get(i).outputTokenIds()).as(cases.get(i).prompt())
            .containsExactly(cases.get(i).greedyIds())
            .containsExactly(fromEager.get(i).outputTokenIds());
      }
    }
  }

  /** Only the scripted backend runs packed and takes cache rows; the eager one says so instead of writing row r. */
  @Test
  void onlyThePackedBackendTakesCacheRows() {
    EngineOptions eager = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu");
    try (LlmEngine e = LlmEngine.load(eager); LlmEngine s = LlmEngine.load(eager.with(EngineOptions.BACKEND,
        BackendKind.SCRIPTED)); NDManager m = NDManager.newBaseManager(Device.cpu())) {
      StepRows rows = new StepRows(new long[][] {{5, 6, 7}, {8, 9}}, new int[2]);
      long[] into = {1, 3};
      CausalLmBackend scripted = s.newGenerator().backend();
      CausalLmBackend plain = e.newGenerator().backend();
      assertThat(scripted.runsPacked()).isTrue();
      assertThat(plain.runsPacked()).isFalse();
      try (BatchCache cache = scripted.allocateCache(m, 4, 8)) {
        assertThat(scripted.forward(m, rows.packed(m, into), cache).getShape().get(0)).isEqualTo(2);
      }
      try (BatchCache cache = plain.allocateCache(m, 4, 8)) {
        assertThatThrownBy(() -> plain.forward(m, rows.packed(m, into), cache))
            .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("eager backend");
      }
    }
  }
}
