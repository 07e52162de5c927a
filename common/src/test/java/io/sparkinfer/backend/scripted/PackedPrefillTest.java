package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The scripted step's packed layout (rows back to back in one line, no padding) against the padded layout it
 * replaces for prefill, on CPU libtorch in fp32: the same logits within 1e-5 and the same keys and values in every
 * written slot. Rows have different lengths, start fresh or after slots already written (a shared prefix), and
 * mistral-tiny's sliding window (8) is shorter than its prompts. The GPU's flash path: {@link PackedPrefillGpuTest}.
 */
class PackedPrefillTest {

  static Stream<Arguments> models() {
    return Stream.of(Arguments.of("qwen2-code-demo", Fixtures.demoModel()),
        Arguments.of("mistral-tiny (sliding window 8)", Fixtures.bundled("mistral-tiny")),
        Arguments.of("llama-bias-tiny", Fixtures.bundled("llama-bias-tiny")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void packedStepsGiveThePaddedStepsLogitsAndCache(String name, Path dir) {
    compare(dir, Precision.FP32, Device.cpu(), 1e-5f);
  }

  /** Generation with packed prefill on and off: transformers' greedy tokens both ways, prompts of many lengths. */
  @Test
  void packedPrefillOptionChoosesTheLayoutAndKeepsTheReferenceTokens() {
    Path dir = Fixtures.model("qwen2-code-demo");
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(GenerationRequest.greedy("p" + i, cases.get(i).prompt(), cases.get(i).greedyIds().length));
    }
    EngineOptions scripted = EngineOptions.of(dir, Precision.FP32, "cpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    for (boolean packed : new boolean[] {true, false}) {
      try (LlmEngine engine = LlmEngine.load(scripted.with(ScriptedOptions.PACKED_PREFILL, packed))) {
        assertThat(engine.newGenerator().backend().runsPacked()).isEqualTo(packed);
        List<Completion> out = engine.generate(requests, 4);
        for (int i = 0; i < cases.size(); i++) {
          assertThat(out.get(i).outputTokenIds()).as("packed %s: %s", packed, cases.get(i).prompt())
              .containsExactly(cases.get(i).greedyIds());
        }
      }
    }
  }

  /**
   * Runs the prompts' prefill both ways into two caches and compares; then, after the first {@code i + 2} tokens of
   * each row i (written the padded way into both), the rest of each prompt both ways.
   */
  static void compare(Path dir, Precision precision, Device device, float bound) {
    EngineOptions options = EngineOptions.of(dir, precision, device.isGpu() ? "gpu" : "cpu")
        .with(EngineOptions.BACKEND, BackendKind.SCRIPTED).with(ScriptedOptions.CUDA_GRAPHS, false);
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(device)) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.runsPacked()).isTrue();
      ModelConfig config = ModelConfig.load(dir);
      StepRows.Split split = StepRows.Split.of(engine.tokenizer());
      StepRows fresh = split.fresh();
      StepRows head = split.head();
      StepRows after = split.after();
      try (KvCache padded = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType());
          KvCache packed = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType())) {
        assertSame(name(dir, "fresh"), fresh, backend.forward(m, fresh.padded(m), padded),
            backend.forward(m, fresh.packed(m), packed), padded, packed, bound);
        backend.forward(m, head.padded(m), padded);
        backend.forward(m, head.padded(m), packed);
        assertSame(name(dir, "after written slots"), after, backend.forward(m, after.padded(m), padded),
            backend.forward(m, after.packed(m), packed), padded, packed, bound);
      }
    }
  }

  private static String name(Path dir, String what) {
    return dir.getFileName() + ", " + what;
  }

  private static void assertSame(String what, StepRows rows, NDArray fromPadded, NDArray fromPacked, KvCache padded,
      KvCache packed, float bound) {
    assertThat(fromPacked.getShape()).as(what).isEqualTo(fromPadded.getShape()); // (R, V)
    float[] a = fromPadded.toFloatArray();
    float[] b = fromPacked.toFloatArray();
    assertThat(ReferenceConformanceTest.maxAbsDiff(a, b)).as("%s: logits", what).isLessThan(bound);
    assertThat(fromPacked.argMax(-1).toLongArray()).as(what).containsExactly(fromPadded.argMax(-1).toLongArray());
    assertThat(rows.maxWrittenSlotDiff(padded, packed)).as("%s: keys and values", what).isLessThan(bound);
  }
}
