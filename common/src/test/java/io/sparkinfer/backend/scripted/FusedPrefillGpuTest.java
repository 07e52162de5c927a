package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.fused.FusedOptions;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fused packed prefill step (our kernels between TorchScript ops) against the TorchScript step on the same
 * packed lines: same logits within fp16/bf16 rounding, same next tokens, same keys and values in every written slot,
 * for fresh rows and rows after written slots, through mistral-tiny's sliding window and llama-bias-tiny's biases;
 * and fp16 generation with fused prefill agrees with transformers. Skipped without a GPU.
 */
@Tag("gpu")
class FusedPrefillGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: fused prefill is checked on the GPU machine");
  }

  static Stream<Arguments> cases() {
    return Stream.of(Arguments.of("qwen2-code-demo fp16", Fixtures.demoModel(), Precision.FP16),
        Arguments.of("qwen2-code-demo bf16", Fixtures.demoModel(), Precision.BF16),
        Arguments.of("qwen2-code-demo fp8", Fixtures.demoModel(), Precision.FP8),
        Arguments.of("mistral-tiny (sliding window 8) fp16", Fixtures.bundled("mistral-tiny"), Precision.FP16),
        Arguments.of("llama-bias-tiny fp16", Fixtures.bundled("llama-bias-tiny"), Precision.FP16));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void fusedPrefillGivesTheScriptedStepsLogitsAndCache(String name, Path dir, Precision precision) {
    EngineOptions options = EngineOptions.of(dir, precision, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    // fp8 (a relative bound, below): both steps quantize each projection's input per row, from inputs that differ by bf16
    // rounding, so an element can land one e4m3 step (1/16 of its value) apart, in every layer
    float bound = precision == Precision.FP8 ? FP8_RELATIVE : precision == Precision.BF16 ? 0.25f : 5e-2f;
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(Device.gpu())) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.acceleration().fusedPrefillOffReason()).as(backend.describe()).isNull();
      ModelConfig config = ModelConfig.load(dir);
      StepRows.Split split = StepRows.Split.of(engine.tokenizer());
      StepRows fresh = split.fresh();
      StepRows head = split.head();
      StepRows after = split.after();
      try (KvCache fused = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType());
          KvCache scripted = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType())) {
        assertSame(name + ", fresh", fresh, backend.forward(m, fresh.packed(m), fused),
            backend.run(m, fresh.packed(m), scripted), fused, scripted, bound, precision == Precision.FP8);
        backend.run(m, head.packed(m), fused);
        backend.run(m, head.packed(m), scripted);
        assertSame(name + ", after written slots", after, backend.forward(m, after.packed(m), fused),
            backend.run(m, after.packed(m), scripted), fused, scripted, bound, precision == Precision.FP8);
      }
      assertThat(backend.acceleration().fusedPrefills()).as("both fused steps ran fused").isEqualTo(2);
    }
  }

  static Stream<Arguments> float8Cases() {
    return Stream.of(Arguments.of("qwen2-code-demo fp16, float8 cache", Fixtures.demoModel(), Precision.FP16),
        Arguments.of("qwen2-code-demo fp8, float8 cache", Fixtures.demoModel(), Precision.FP8),
        Arguments.of("mistral-tiny (sliding window 8) fp16, float8 cache", Fixtures.bundled("mistral-tiny"),
            Precision.FP16));
  }

  /**
   * Over float8 caches ({@code --kv-cache-dtype fp8}). Fresh rows: the fused step attends over the line's own keys
   * and values, so it gives what the TorchScript step gives over a model-dtype cache (logits within the bound of the
   * precision's own fused-against-TorchScript comparison), and writes those keys rounded to e4m3. After written
   * slots: the fused step widens its rows' slots, the TorchScript step (its own e4m3 writes) the whole cache; the
   * same next tokens, logits within a tenth of their largest magnitude (both round keys and values to e4m3 from inputs
   * that differ by fp16 rounding). Each layer's keys within two e4m3 steps of the largest (an eighth of a value each).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("float8Cases")
  void fusedPrefillOverAFloat8CacheGivesTheScriptedSteps(String name, Path dir, Precision precision) {
    EngineOptions options = EngineOptions.of(dir, precision, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    float freshBound = precision == Precision.FP8 ? FP8_RELATIVE : 5e-2f; // relative for fp8, as above
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(Device.gpu())) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.acceleration().fusedPrefillOffReason()).as(backend.describe()).isNull();
      ModelConfig config = ModelConfig.load(dir);
      StepRows.Split split = StepRows.Split.of(engine.tokenizer());
      try (KvCache fused = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType(), true);
          KvCache scripted = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType(), true);
          KvCache exact = KvCache.allocate(m, config, split.rows(), split.capacity(), precision.dataType())) {
        StepRows fresh = split.fresh();
        assertThat(fresh.packed(m).fresh()).as("rows from position 0").isTrue();
        float[] ours = backend.forward(m, fresh.packed(m), fused).toFloatArray();
        float[] unrounded = backend.run(m, fresh.packed(m), exact).toFloatArray();
        backend.run(m, fresh.packed(m), scripted);
        float bound = precision == Precision.FP8
            ? freshBound * ReferenceConformanceTest.maxAbsDiff(unrounded, new float[unrounded.length]) : freshBound;
        assertThat(ReferenceConformanceTest.maxAbsDiff(ours, unrounded)).as("%s, fresh: logits", name)
            .isLessThan(bound);
        assertKeys(name + ", fresh", config, fused, scripted);

        StepRows after = split.after();
        assertThat(after.packed(m).fresh()).as("rows after written slots").isFalse();
        backend.run(m, split.head().packed(m), fused);
        backend.run(m, split.head().packed(m), scripted);
        NDArray logits = backend.forward(m, after.packed(m), fused);
        NDArray expected = backend.run(m, after.packed(m), scripted);
        float[] want = expected.toFloatArray();
        assertThat(ReferenceConformanceTest.maxAbsDiff(logits.toFloatArray(), want)).as("%s, after: logits", name)
            .isLessThan(FP8_RELATIVE * ReferenceConformanceTest.maxAbsDiff(want, new float[want.length]));
        assertThat(logits.argMax(-1).toLongArray()).as("%s, after: next tokens", name)
            .containsExactly(expected.argMax(-1).toLongArray());
        assertKeys(name + ", after written slots", config, fused, scripted);
      }
      assertThat(backend.acceleration().fusedPrefills()).as("both fused steps ran fused").isEqualTo(2);
    }
  }

  /** Each layer's keys of two float8 caches, widened, within two e4m3 steps of the largest (an eighth of it each). */
  private static void assertKeys(String what, ModelConfig config, KvCache fused, KvCache scripted) {
    for (int l = 0; l < config.numHiddenLayers(); l++) {
      NDArray a = ScriptedTensors.widenFloat8(fused.keyArrays()[l], DataType.FLOAT32);
      NDArray b = ScriptedTensors.widenFloat8(scripted.keyArrays()[l], DataType.FLOAT32);
      assertThat(a.sub(b).abs().max().getFloat()).as("%s: layer %d's keys", what, l)
          .isLessThanOrEqualTo(b.abs().max().getFloat() / 4);
    }
  }

  /**
   * A packed line written straight into rows 1, 3, 5, ... of a wider cache (a prefill joining a running batch), by
   * the fused step and by the TorchScript step (flash attention reading the rows by their offsets), gives what the
   * same step gives on a cache of its own, and leaves the other rows as they were ({@link PackedPrefillTest}).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void packedLinesIntoChosenRowsGiveTheirOwnCachesResults(String name, Path dir, Precision precision) {
    EngineOptions options = EngineOptions.of(dir, precision, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(Device.gpu())) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      // the same kernels on the same inputs either way: equal up to the order flash sums in
      PackedPrefillTest.intoChosenRows(name + ", fused", engine, m, precision, (b, c) -> backend.forward(m, b, c), 1e-3f);
      assertThat(backend.acceleration().fusedPrefills()).as("the seven steps ran fused").isEqualTo(7);
      PackedPrefillTest.intoChosenRows(name + ", TorchScript", engine, m, precision, (b, c) -> backend.run(m, b, c),
          1e-3f);
    }
  }

  /**
   * fp16 generation with fused prefill: every prompt's first token is transformers' (the prefill's own choice), and
   * the generated ids agree with transformers' fp32 greedy ids at least as far as with the TorchScript prefill (the
   * common prefix of each prompt's ids, summed). The two prefills round differently, so where a later step is a
   * near tie in fp16 they can part; on an H200 (2026-12-02) fused prefill agreed on 213 of 229 ids, the TorchScript
   * prefill on 193.
   */
  @Test
  void generationWithFusedPrefillAgreesWithTransformersAsFarAsTheTorchScriptPrefill() {
    Path dir = Fixtures.demoModel();
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(new GenerationRequest("p" + i, cases.get(i).prompt(), cases.get(i).greedyIds().length,
          io.sparkinfer.generate.SamplingParams.GREEDY, List.of(), true)); // references run past eos
    }
    EngineOptions options = EngineOptions.of(dir, Precision.FP16, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    int[] agreed = new int[2];
    for (int run = 0; run < 2; run++) {
      boolean fused = run == 0;
      try (LlmEngine engine = LlmEngine.load(options.with(FusedOptions.FUSED_PREFILL, fused))) {
        ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
        List<Completion> out = engine.generate(requests, 4);
        assertThat(backend.acceleration().fusedPrefills() > 0).as("fused prefills ran: %s", fused).isEqualTo(fused);
        for (int i = 0; i < cases.size(); i++) {
          long[] ids = out.get(i).outputTokenIds();
          long[] reference = cases.get(i).greedyIds();
          if (fused) {
            assertThat(ids[0]).as("first token of %s", cases.get(i).prompt()).isEqualTo(reference[0]);
          }
          agreed[run] += Arrays.mismatch(ids, reference) < 0 ? reference.length : Arrays.mismatch(ids, reference);
        }
      }
    }
    assertThat(agreed[0]).as("ids agreeing with transformers: fused prefill %d, TorchScript prefill %d", agreed[0],
        agreed[1]).isGreaterThanOrEqualTo(agreed[1]);
  }

  /** fp8's bound: a tenth of the largest magnitude of what is compared (logits; keys and values). */
  static final float FP8_RELATIVE = 0.1f;

  /** @param relative whether {@code bound} is a fraction of the largest magnitude compared, else absolute */
  private static void assertSame(String what, StepRows rows, NDArray fused, NDArray scripted, KvCache fusedCache,
      KvCache scriptedCache, float bound, boolean relative) {
    assertThat(fused.getShape()).as(what).isEqualTo(scripted.getShape()); // (R, V)
    float[] expected = scripted.toFloatArray();
    float logitBound = relative ? bound * ReferenceConformanceTest.maxAbsDiff(expected, new float[expected.length])
        : bound;
    assertThat(ReferenceConformanceTest.maxAbsDiff(fused.toFloatArray(), expected)).as("%s: logits", what)
        .isLessThan(logitBound);
    assertThat(fused.argMax(-1).toLongArray()).as(what).containsExactly(scripted.argMax(-1).toLongArray());
    float cacheBound = relative ? bound * rows.maxWrittenSlotAbs(scriptedCache) : bound;
    assertThat(rows.maxWrittenSlotDiff(fusedCache, scriptedCache)).as("%s: keys and values", what)
        .isLessThan(cacheBound);
  }
}
