package io.sparkinfer.generate;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A batch that runs out of device memory (simulated on the CPU where a GPU would fail: allocating the batch's KV
 * cache for more rows than fit) is retried at half its width with its unfinished rows: no row is lost, greedy
 * and seeded sampled rows give the tokens they give without the failure, and the retries are counted; at width 1,
 * or with {@code --oom-retry false}, the rows become {@code out_of_memory} errors.
 */
class GeneratorOomTest {

  static LlmEngine engine;
  static List<GenerationRequest> requests = new ArrayList<>();

  @BeforeAll
  static void load() {
    engine = LlmEngine.load(EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu"));
    for (Fixtures.Case c : Fixtures.reference(Fixtures.model("qwen2-tiny"))) {
      requests.add(GenerationRequest.greedy("g" + requests.size(), c.prompt(), 6));
      requests.add(new GenerationRequest("s" + requests.size(), c.prompt(), 6,
          new SamplingParams(0.8, 20, 0.95, 1234L + requests.size()), List.of(), false));
    }
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  @Test
  void anOutOfMemoryBatchIsRetriedAtHalfWidthWithTheSameTokens() {
    List<Completion> expected = engine.generate(requests, 2);
    try (Generator g = engine.newGenerator()) {
      List<Completion> actual = withDeviceOf(2, () -> g.generate(requests, 8));
      assertThat(actual).hasSameSizeAs(requests);
      for (int i = 0; i < requests.size(); i++) {
        assertThat(actual.get(i).isError()).as(requests.get(i).id()).isFalse();
        assertThat(actual.get(i).outputTokenIds()).as("%s after the retries", requests.get(i).id())
            .containsExactly(expected.get(i).outputTokenIds());
      }
      assertThat(g.stats().oomRetries()).as("8 rows -> 4 -> 2").isEqualTo(2);
    }
  }

  @Test
  void outOfMemoryAtWidthOneOrWithoutRetriesBecomesErrorRows() {
    try (Generator g = engine.newGenerator()) {
      List<Completion> out = withDeviceOf(0, () -> g.generate(requests.subList(0, 4), 4));
      assertThat(out).allSatisfy(c -> assertThat(c.errorCode()).isEqualTo(ErrorCode.OUT_OF_MEMORY));
      assertThat(out.get(0).errorMessage()).contains("out of memory at batch width 1");
      assertThat(g.stats().oomRetries()).as("4 -> 2 -> 1, then errors").isEqualTo(2);
    }
    OptionValues noRetry = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu").values()
        .with(GeneratorOptions.OOM_RETRY, false);
    try (Generator g = engine.newGenerator(noRetry)) {
      List<Completion> out = withDeviceOf(2, () -> g.generate(requests.subList(0, 4), 4));
      assertThat(out).allSatisfy(c -> assertThat(c.errorCode()).isEqualTo(ErrorCode.OUT_OF_MEMORY));
      assertThat(out.get(0).errorMessage()).contains("out of memory at batch width 4");
      assertThat(g.stats().oomRetries()).isZero();
    }
  }

  /** A request stream (the Spark job's path) out of memory: the same as a list, and later batches stay halved. */
  @Test
  void anOutOfMemoryStreamBatchStartsAgainAtHalfWidthWithTheSameTokens() {
    List<Completion> expected = engine.generate(requests, 2);
    try (Generator g = engine.newGenerator()) {
      java.util.Map<String, Completion> actual = withDeviceOf(2, () -> GeneratorStreamTest.stream(g, requests, 8));
      assertThat(actual).hasSameSizeAs(requests);
      for (int i = 0; i < requests.size(); i++) {
        Completion c = actual.get(requests.get(i).id());
        assertThat(c.isError()).as(requests.get(i).id()).isFalse();
        assertThat(c.outputTokenIds()).as("%s after the retries", requests.get(i).id())
            .containsExactly(expected.get(i).outputTokenIds());
      }
      assertThat(g.stats().oomRetries()).as("8 rows -> 4 -> 2, then every batch at 2").isEqualTo(2);
      assertThat(g.stats().batchWidths()).containsExactly(2, 4, 8);
    }
  }

  /** A stream whose batches cannot even allocate, without retries: every request an error, and the call returns. */
  @Test
  void aStreamWhoseBatchesCannotStartAnswersEveryRequestWithAnError() {
    OptionValues noRetry = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu").values()
        .with(GeneratorOptions.OOM_RETRY, false);
    java.util.Map<String, Completion> out;
    try (Generator g = engine.newGenerator(noRetry)) {
      out = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(60),
          () -> withDeviceOf(0, () -> GeneratorStreamTest.stream(g, requests, 4)));
    }
    assertThat(out).hasSameSizeAs(requests);
    assertThat(out.values()).allSatisfy(c -> assertThat(c.errorCode()).isEqualTo(ErrorCode.OUT_OF_MEMORY));
  }

  /** Runs {@code work} as if the device held KV caches of at most {@code rows} rows. */
  static <T> T withDeviceOf(int rows, Supplier<T> work) {
    System.setProperty(Generator.SIMULATED_OOM_PROPERTY, Integer.toString(rows));
    try {
      return work.get();
    } finally {
      System.clearProperty(Generator.SIMULATED_OOM_PROPERTY);
    }
  }
}
