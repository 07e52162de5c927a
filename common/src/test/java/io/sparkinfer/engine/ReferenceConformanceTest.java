package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.FinishReason;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine against transformers' own outputs ({@code reference.json}: fp32 compute on the bf16
 * weights, one prompt at a time, greedy).
 */
public class ReferenceConformanceTest {

  static Stream<Arguments> fixtures() {
    return Stream.of(Arguments.of("qwen2-tiny"), Arguments.of("qwen2-code-demo"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void tokenizerGivesTheReferenceInputIds(String name) {
    Path dir = Fixtures.model(name);
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(dir, Precision.FP32, "cpu"))) {
      for (Fixtures.Case c : Fixtures.reference(dir)) {
        assertThat(engine.tokenizer().encode(c.prompt())).as(c.prompt()).containsExactly(c.inputIds());
      }
    }
  }

  @ParameterizedTest(name = "{0}, rope in checkpoint dtype: {1}")
  @MethodSource("fixturesAndRopeModes")
  void fp32GreedyIdsMatchReferenceAloneAndInOnePaddedBatch(String name, boolean ropeInCheckpointDtype) {
    Path dir = Fixtures.model(name);
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(GenerationRequest.greedy("p" + i, cases.get(i).prompt(), cases.get(i).greedyIds().length));
    }
    EngineOptions options = EngineOptions.of(dir, Precision.FP32, "cpu").with(EngineOptions.ROPE_IN_CHECKPOINT_DTYPE, ropeInCheckpointDtype);
    try (LlmEngine engine = LlmEngine.load(options)) {
      List<Completion> alone = new ArrayList<>();
      for (GenerationRequest r : requests) {
        alone.addAll(engine.generate(List.of(r), 1));
      }
      List<Completion> batched = engine.generate(requests, requests.size());
      for (int i = 0; i < cases.size(); i++) {
        long[] expected = cases.get(i).greedyIds();
        assertThat(alone.get(i).outputTokenIds()).as("alone: %s", cases.get(i).prompt()).containsExactly(expected);
        assertThat(batched.get(i).outputTokenIds()).as("batched: %s", cases.get(i).prompt()).containsExactly(expected);
        boolean endsWithEos = expected[expected.length - 1] == 0; // both fixtures' eos id
        assertThat(batched.get(i).finishReason()).isEqualTo(endsWithEos ? FinishReason.STOP : FinishReason.LENGTH);
        assertThat(batched.get(i).text()).isEqualTo(cases.get(i).greedyText());
      }
    }
  }

  static Stream<Arguments> fixturesAndRopeModes() {
    return fixtures().flatMap(a -> Stream.of(Arguments.of(a.get()[0], false), Arguments.of(a.get()[0], true)));
  }

  /**
   * The references were computed by a transformers model cast to bf16 and back ({@code model.to(bf16)},
   * then {@code .float()}), which rounds its rotary {@code inv_freq} buffer to bf16. With that buffer
   * reproduced, the engine's fp32 logits agree to the reference's own rounding (5 decimals).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void fp32LastLogitsWithin1e3OfReference(String name) {
    Path dir = Fixtures.model(name);
    EngineOptions options = EngineOptions.of(dir, Precision.FP32, "cpu").with(EngineOptions.ROPE_IN_CHECKPOINT_DTYPE, true);
    try (LlmEngine engine = LlmEngine.load(options)) {
      List<Fixtures.Case> cases = Fixtures.reference(dir);
      float[][] logits = Fixtures.lastLogits(engine, cases);
      for (int i = 0; i < cases.size(); i++) {
        assertThat(maxAbsDiff(logits[i], cases.get(i).lastLogits())).as(cases.get(i).prompt()).isLessThan(1e-3f);
      }
    }
  }

  /**
   * With float32 rotary frequencies (what transformers uses when it loads the checkpoint directory), the
   * logits differ from the reference only by the reference's bf16-rounded frequencies: a relative error of
   * at most 2^-9 in each angle, growing with the position; over these prompts' 1-21 positions that moves
   * logits by under 1e-2. A one-token prompt (position 0, no rotation) still agrees to 1e-4.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void fp32LastLogitsWithFloat32RopeDifferOnlyByTheReferencesRounding(String name) {
    Path dir = Fixtures.model(name);
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(dir, Precision.FP32, "cpu"))) {
      List<Fixtures.Case> cases = Fixtures.reference(dir);
      float[][] logits = Fixtures.lastLogits(engine, cases);
      for (int i = 0; i < cases.size(); i++) {
        float bound = cases.get(i).inputIds().length == 1 ? 1e-4f : 2e-2f;
        assertThat(maxAbsDiff(logits[i], cases.get(i).lastLogits())).as(cases.get(i).prompt()).isLessThan(bound);
        assertThat(argMax(logits[i])).isEqualTo(argMax(cases.get(i).lastLogits()));
      }
    }
  }

  /**
   * fp16 holds about 3 significant decimal digits (10-bit mantissa, relative rounding 2^-11 ~ 5e-4): with
   * logits up to ~10 in magnitude and a few rounding steps per layer accumulating through the residual
   * stream, 5e-2 absolute bounds the drift over these models' 2-6 layers while any real mistake (a wrong
   * mask, rotation or norm) moves logits by whole units. Greedy ids must agree wherever transformers'
   * top-2 margin exceeds 0.1.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void fp16LogitsWithinToleranceAndGreedyAgreesWhereMarginIsWide(String name) {
    Path dir = Fixtures.model(name);
    EngineOptions options = EngineOptions.of(dir, Precision.FP16, "cpu").with(EngineOptions.ROPE_IN_CHECKPOINT_DTYPE, true);
    try (LlmEngine engine = LlmEngine.load(options)) {
      List<Fixtures.Case> cases = Fixtures.reference(dir);
      float[][] logits = Fixtures.lastLogits(engine, cases);
      for (int i = 0; i < cases.size(); i++) {
        float[] ref = cases.get(i).lastLogits();
        assertThat(maxAbsDiff(logits[i], ref)).as(cases.get(i).prompt()).isLessThan(5e-2f);
        if (topTwoMargin(ref) > 0.1f) {
          assertThat(argMax(logits[i])).as(cases.get(i).prompt()).isEqualTo(argMax(ref));
        }
      }
    }
  }

  public static float maxAbsDiff(float[] a, float[] b) {
    assertThat(a).hasSameSizeAs(b);
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  public static int argMax(float[] a) {
    int best = 0;
    for (int i = 1; i < a.length; i++) {
      if (a[i] > a[best]) {
        best = i;
      }
    }
    return best;
  }

  static float topTwoMargin(float[] a) {
    float[] sorted = a.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length - 1] - sorted[sorted.length - 2];
  }
}
