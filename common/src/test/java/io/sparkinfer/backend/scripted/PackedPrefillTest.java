package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.util.Arrays;
import java.util.function.BiFunction;
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
 * replaces for prefill, on CPU libtorch in fp32: the same logits within 1e-4 and the same keys and values in every
 * written slot (the two layouts' products add in different orders, which CPUs round differently: 2.4e-5 on an Intel
 * Xeon, less on an AMD EPYC; a wrong mask or position moves logits by whole units). Rows have different lengths, start fresh or after slots already written (a shared prefix), and
 * mistral-tiny's sliding window (8) is shorter than its prompts. The GPU's flash path: {@link PackedPrefillGpuTest}.
 */
class PackedPrefillTest {

  /** Largest logit and cache difference between the layouts in fp32 on a CPU (see the class comment). */
  static final float CPU_FP32_BOUND = 1e-4f;

  static Stream<Arguments> models() {
    return Stream.of(Arguments.of("qwen2-code-demo", Fixtures.demoModel()),
        Arguments.of("mistral-tiny (sliding window 8)", Fixtures.bundled("mistral-tiny")),
        Arguments.of("llama-bias-tiny", Fixtures.bundled("llama-bias-tiny")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void packedStepsGiveThePaddedStepsLogitsAndCache(String name, Path dir) {
    compare(dir, Precision.FP32, Device.cpu(), CPU_FP32_BOUND);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void packedStepsIntoChosenRowsGiveTheirOwnCachesResultsAndLeaveOtherRows(String name, Path dir) {
    EngineOptions options = EngineOptions.of(dir, Precision.FP32, "cpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(Device.cpu())) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      intoChosenRows(name, engine, m, Precision.FP32, (b, c) -> backend.forward(m, b, c), CPU_FP32_BOUND);
    }
  }

  /**
   * A packed step written into chosen rows of a wider cache (a prefill joining a running batch: rows 1, 3, 5, ...,
   * after other prompts were written to rows 0 .. R-1) against the same step on a cache of its own: the same
   * logits and next tokens, the same keys and values in every written slot, fresh and after written slots; and
   * every other row of the wider cache exactly as it was.
   *
   * @param step runs a step on a cache (the backend's forward, or its TorchScript call)
   */
  static void intoChosenRows(String what, LlmEngine engine, NDManager m, Precision precision,
      BiFunction<ForwardBatch, KvCache, NDArray> step, float bound) {
    ModelConfig config = engine.config();
    StepRows.Split split = StepRows.Split.of(engine.tokenizer());
    StepRows fresh = split.fresh();
    long[] targets = fresh.spreadRows();
    int wideRows = 2 * split.rows() + 1;
    try (KvCache own = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType());
        KvCache wide = KvCache.allocate(m, config, wideRows, split.capacity(), precision.dataType())) {
      step.apply(split.after().packed(m), wide); // rows 0 .. R-1 hold other tokens: stale slots in some targets
      NDArray[][] before = rowsAsFloat(wide);
      assertSame(what + ", fresh into rows " + Arrays.toString(targets), fresh, step.apply(fresh.packed(m), own),
          step.apply(fresh.packed(m, targets), wide), own, wide, targets, bound);
      StepRows head = split.head();
      StepRows after = split.after();
      step.apply(head.packed(m), own);
      step.apply(head.packed(m, targets), wide);
      assertSame(what + ", after written slots into rows " + Arrays.toString(targets), after,
          step.apply(after.packed(m), own), step.apply(after.packed(m, targets), wide), own, wide, targets, bound);
      NDArray[][] now = rowsAsFloat(wide);
      for (int kind = 0; kind < 2; kind++) {
        for (int l = 0; l < now[kind].length; l++) {
          for (int r = 0; r < wideRows; r++) {
            if (Arrays.binarySearch(targets, r) < 0) {
              assertThat(now[kind][l].get(r).toFloatArray()).as("%s: row %d untouched, layer %d", what, r, l)
                  .containsExactly(before[kind][l].get(r).toFloatArray());
            }
          }
        }
      }
    }
  }

  /** float32 copies of a cache's keys and values, per layer (B, C, K, D). */
  private static NDArray[][] rowsAsFloat(KvCache cache) {
    NDArray[][] out = {cache.keyArrays().clone(), cache.valueArrays().clone()};
    for (NDArray[] layers : out) {
      for (int l = 0; l < layers.length; l++) {
        layers[l] = ScriptedTensors.cast(layers[l], DataType.FLOAT32).duplicate();
      }
    }
    return out;
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
    assertSame(what, rows, fromPadded, fromPacked, padded, packed, null, bound);
  }

  /** @param packedRows the rows of {@code packed} that rows 0 .. R-1 of {@code padded} were written to (null: the same) */
  private static void assertSame(String what, StepRows rows, NDArray fromPadded, NDArray fromPacked, KvCache padded,
      KvCache packed, long[] packedRows, float bound) {
    assertThat(fromPacked.getShape()).as(what).isEqualTo(fromPadded.getShape()); // (R, V)
    float[] a = fromPadded.toFloatArray();
    float[] b = fromPacked.toFloatArray();
    assertThat(ReferenceConformanceTest.maxAbsDiff(a, b)).as("%s: logits", what).isLessThan(bound);
    assertThat(fromPacked.argMax(-1).toLongArray()).as(what).containsExactly(fromPadded.argMax(-1).toLongArray());
    assertThat(rows.maxWrittenSlotDiff(padded, packed, packedRows)).as("%s: keys and values", what).isLessThan(bound);
  }
}
