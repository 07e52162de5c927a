package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * bf16 compute on the scripted backend (CPU libtorch here; the GPU benchmark compares with transformers in
 * bf16). DJL cannot create bf16 tensors, so weights, caches and casts go through {@link ScriptedTensors};
 * a JVM abort anywhere on these paths fails the whole run.
 */
class Bf16Test {

  @Test
  void scriptedTensorsMakeAndCastBf16() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray zeros = ScriptedTensors.zeros(m, new Shape(2, 3), DataType.BFLOAT16);
      assertThat(zeros.getShape().getShape()).containsExactly(2, 3);
      assertThat(ScriptedTensors.cast(zeros, DataType.FLOAT32).toFloatArray()).containsOnly(0f);
      // bf16 keeps 8 significant bits: 1 + 2^-10 rounds to 1, 3 and -0.5 are exact
      NDArray values = m.create(new float[] {1f + 1f / 1024, 3f, -0.5f});
      NDArray bf16 = ScriptedTensors.cast(values, DataType.BFLOAT16);
      assertThat(ScriptedTensors.cast(bf16, DataType.FLOAT32).toFloatArray()).containsExactly(1f, 3f, -0.5f);
      assertThat(ScriptedTensors.cast(values, DataType.FLOAT16).getDataType()).isEqualTo(DataType.FLOAT16);
    }
  }

  /**
   * The bf16 checkpoints in bf16 compute: transformers' references were computed in fp32 from the same
   * bf16 weights, so the only difference is bf16 rounding of activations (8 significant bits, ~0.4% per
   * op, compounding over the layers): the last-position logits stay within 0.25 of the references (they
   * span about 10 in these models) and pick the same token; greedy ids follow the references on at least
   * 3 of 4 prompts (a random model's near-ties flip under bf16 rounding); continuous batches give each
   * prompt's tokens alone.
   */
  @Test
  void bf16ComputeFollowsTheReferences() {
    for (Path dir : List.of(Fixtures.model("qwen2-tiny"), Fixtures.model("qwen2-code-demo"))) {
      List<Fixtures.Case> cases = Fixtures.reference(dir);
      EngineOptions options = EngineOptions.of(dir, Precision.BF16, "cpu");
      try (LlmEngine engine = LlmEngine.load(options)) {
        assertThat(engine.backendName()).as("bf16 picks the scripted backend").isEqualTo("scripted");
        assertThat(engine.describe()).contains("bf16");
        float[][] logits = Fixtures.lastLogits(engine, cases);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < cases.size(); i++) {
          Fixtures.Case c = cases.get(i);
          assertThat(ReferenceConformanceTest.maxAbsDiff(logits[i], c.lastLogits())).as("%s: %s", dir.getFileName(), c.prompt())
              .isLessThan(0.25f);
          assertThat(ReferenceConformanceTest.argMax(logits[i])).isEqualTo(ReferenceConformanceTest.argMax(c.lastLogits()));
          requests.add(new GenerationRequest("p" + i, c.prompt(), 8, SamplingParams.GREEDY, List.of(), true));
        }
        List<Completion> batched = engine.generate(requests, 3); // rows refill: cache rows copied, cache grown
        int matching = 0;
        for (int i = 0; i < cases.size(); i++) {
          Completion alone = engine.generate(List.of(requests.get(i)), 1).get(0);
          assertThat(batched.get(i).isError()).as(String.valueOf(batched.get(i).errorMessage())).isFalse();
          assertThat(batched.get(i).outputTokenIds()).as("batched as alone: %s", cases.get(i).prompt())
              .containsExactly(alone.outputTokenIds());
          long[] reference = cases.get(i).greedyIds();
          int n = Math.min(8, reference.length);
          matching += Arrays.equals(Arrays.copyOf(alone.outputTokenIds(), n), Arrays.copyOf(reference, n)) ? 1 : 0;
        }
        // 7 of 8 on both models when written: one qwen2-tiny prompt meets a near-tie at its third token
        assertThat(matching).as("%s: prompts whose first 8 greedy ids equal the reference", dir.getFileName())
            .isGreaterThanOrEqualTo(cases.size() * 3 / 4);
      }
    }
  }

  @Test
  void theEagerBackendRefusesBf16() {
    EngineOptions options = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.BF16, "cpu").with(EngineOptions.BACKEND, BackendKind.EAGER);
    assertThatThrownBy(() -> LlmEngine.load(options)).hasMessageContaining("bf16 runs on the scripted backend only");
  }
}
