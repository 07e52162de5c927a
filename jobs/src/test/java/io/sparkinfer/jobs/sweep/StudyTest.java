package io.sparkinfer.jobs.sweep;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.tune.Sampler;
import io.sparkinfer.tune.Samplers;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * The study's driver loop with a fake executor (no Spark, no model): out-of-memory back-off, what trials are
 * given for pruning, the reference run's settings, progress lines.
 */
class StudyTest {

  /** Records the specs it is given and answers each with {@code outcome}. */
  static final class FakeExecutor implements Study.TrialExecutor {
    final List<TrialSpec> seen = new ArrayList<>();
    final Function<TrialSpec, TrialResult> outcome;

    FakeExecutor(Function<TrialSpec, TrialResult> outcome) {
      this.outcome = outcome;
    }

    @Override
    public List<TrialResult> run(List<TrialSpec> specs) {
      seen.addAll(specs);
      return specs.stream().map(outcome).toList();
    }
  }

  static SweepOptions options(String... args) {
    String[] all = new String[args.length + 4];
    all[0] = "--model";
    all[1] = "/m";
    all[2] = "--output";
    all[3] = "/out";
    System.arraycopy(args, 0, all, 4, args.length);
    return SweepOptions.parse(all, k -> null, k -> null);
  }

  /** An ok result whose tokens/s is the batch size times {@code perRow}, latency 10 ms per token. */
  static TrialResult ok(TrialSpec spec, double perRow) {
    int batch = spec.engine().get(GeneratorOptions.BATCH_SIZE);
    double tps = batch * perRow;
    return new TrialResult(spec.trial(), spec.params(), SweepTables.OK, null, 0, 1, "driver", "cpu", "fp16", "eager",
        "eager backend", Map.of(), spec.threads(), batch, 128, spec.maxNewTokens(), new double[] {tps, tps, tps}, 100.0,
        new double[] {1, 2}, new double[] {10, 10}, new double[] {100, 200}, null, null, null, null, "hash", "0.33.0",
        "2.5.1", List.of(new long[] {1, 2, 3}));
  }

  static TrialResult oom(TrialSpec spec) {
    return TrialResult.notRun(spec, SweepTables.OOM, "CUDA out of memory", 0, 1, "driver", "gpu:0");
  }

  @Test
  void outOfMemoryBacksOffToTheNextSmallerBatchAndSkipsLargerOnes() {
    // the grid asks 256 first: it runs out of memory, so 64 runs next (a back-off), then 16, which fits
    SweepOptions o = options("--batch-sizes", "256,64,16,4", "--precisions", "fp16");
    FakeExecutor executor = new FakeExecutor(spec -> spec.engine().get(GeneratorOptions.BATCH_SIZE) > 16 ? oom(spec)
        : ok(spec, 10));
    List<Double> told = new ArrayList<>();
    try (Sampler grid = Samplers.create("grid", o.space(), 0, 0)) {
      Sampler recording = new Sampler() {
        @Override
        public List<Map<String, String>> ask(int max) {
          return grid.ask(max);
        }

        @Override
        public void tell(Map<String, String> trial, double objective) {
          told.add(objective);
        }

        @Override
        public String name() {
          return "grid";
        }
      };
      List<TrialResult> results = new Study(o, recording, executor, 1, new PrintStream(new ByteArrayOutputStream()))
          .run();
      assertThat(executor.seen).extracting(s -> s.engine().get(GeneratorOptions.BATCH_SIZE))
          .as("256 runs out of memory, then each smaller batch runs once until one fits; 4 comes from the grid")
          .containsExactly(256, 64, 16, 4);
      assertThat(results).extracting(TrialResult::status)
          .containsExactly(SweepTables.OOM, SweepTables.OOM, SweepTables.OK, SweepTables.OK);
      assertThat(told).as("the sampler hears of each of its 4 trials once; 64 and 16 ran as back-offs")
          .containsExactly(Double.NaN, Double.NaN, 160.0, 40.0);
    }
  }

  @Test
  void trialsWithABatchAtLeastAsLargeAsOneThatRanOutOfMemoryAreNotRun() {
    SweepOptions o = options("--batch-sizes", "4,64,256", "--precisions", "fp16,bf16");
    FakeExecutor executor = new FakeExecutor(spec -> spec.engine().get(GeneratorOptions.BATCH_SIZE) >= 64
        && spec.params().get("precision").equals("fp16") ? oom(spec) : ok(spec, 10));
    try (Sampler grid = Samplers.create("grid", o.space(), 0, 0)) {
      List<TrialResult> results = new Study(o, grid, executor, 1, new PrintStream(new ByteArrayOutputStream())).run();
      TrialResult skipped = results.stream()
          .filter(r -> r.params().equals(Map.of("batch-size", "256", "precision", "fp16"))).findFirst().orElseThrow();
      assertThat(skipped.status()).isEqualTo(SweepTables.OOM);
      assertThat(skipped.error()).isEqualTo("skipped: batch 64 ran out of memory with these settings");
      assertThat(executor.seen).as("fp16 at 256 never ran; bf16 at 256 did")
          .noneMatch(s -> s.params().equals(skipped.params()))
          .anyMatch(s -> s.params().equals(Map.of("batch-size", "256", "precision", "bf16")));
      assertThat(results).hasSize(6);
    }
  }

  @Test
  void trialsAreGivenTheFinishedOnesToPruneAgainstOnlyWhenPruningIsOn() {
    for (boolean prune : new boolean[] {false, true}) {
      SweepOptions o = prune ? options("--batch-sizes", "1,4,16", "--prune") : options("--batch-sizes", "1,4,16");
      FakeExecutor executor = new FakeExecutor(spec -> ok(spec, 10));
      try (Sampler grid = Samplers.create("grid", o.space(), 0, 0)) {
        new Study(o, grid, executor, 1, new PrintStream(new ByteArrayOutputStream())).run();
      }
      assertThat(executor.seen).hasSize(3);
      assertThat(executor.seen.get(0).pruneAgainst()).as("nothing finished before the first").isEmpty();
      if (prune) {
        assertThat(executor.seen.get(2).pruneAgainst()).as("the two finished trials: (tokens/s, p99 latency)")
            .containsExactly(new double[] {10, 10}, new double[] {40, 10});
      } else {
        assertThat(executor.seen.get(2).pruneAgainst()).isEmpty();
      }
    }
  }

  @Test
  void trialsRunInRoundsOfTheParallelismAndEachSetsItsAxesOnTheEngineOptions() {
    SweepOptions o = options("--batch-sizes", "2,8", "--precisions", "fp32,fp16", "--threads", "1,2",
        "--axis", "decode-chunk=1,16", "--sample", "12", "--max-new-tokens", "5");
    List<Integer> roundSizes = new ArrayList<>();
    Study.TrialExecutor executor = specs -> {
      roundSizes.add(specs.size());
      return specs.stream().map(s -> ok(s, 1)).toList();
    };
    try (Sampler grid = Samplers.create("grid", o.space(), 0, 0)) {
      List<TrialResult> results = new Study(o, grid, executor, 3, new PrintStream(new ByteArrayOutputStream())).run();
      assertThat(results).hasSize(16);
      assertThat(results).extracting(TrialResult::trial).as("numbered in order").containsExactlyElementsOf(
          java.util.stream.IntStream.rangeClosed(1, 16).boxed().toList());
    }
    assertThat(roundSizes).containsExactly(3, 3, 3, 3, 3, 1);
    Study study = new Study(o, null, executor, 1, new PrintStream(new ByteArrayOutputStream()));
    TrialSpec spec = study.spec(7, Map.of("batch-size", "8", "precision", "fp16", "threads", "2",
        "decode-chunk", "1"), List.of(), 3);
    assertThat(spec.engine().get(GeneratorOptions.BATCH_SIZE)).isEqualTo(8);
    assertThat(spec.engine().get(GeneratorOptions.DECODE_CHUNK)).isEqualTo(1);
    assertThat(spec.engine().get(EngineOptions.PRECISION).label()).isEqualTo("fp16");
    assertThat(spec.threads()).isEqualTo(2);
    assertThat(spec.prompts()).as("--sample").isEqualTo(12);
    assertThat(spec.maxNewTokens()).isEqualTo(5);
  }

  @Test
  void autoSampleTimesTwoFullBatchesOnEveryThread() {
    SweepOptions o = options("--batch-sizes", "4,64", "--threads", "1,2");
    Study study = new Study(o, null, specs -> List.of(), 1, new PrintStream(new ByteArrayOutputStream()));
    assertThat(study.spec(1, Map.of("batch-size", "64", "threads", "2"), List.of(), 3).prompts()).isEqualTo(256);
    assertThat(study.spec(2, Map.of("batch-size", "4", "threads", "1"), List.of(), 3).prompts()).isEqualTo(8);
  }

  @Test
  void theReferenceRunsAtTheReferencePrecisionOnTheAgreementPromptsInOneBatch() {
    SweepOptions o = options("--batch-sizes", "64,256", "--precisions", "fp16,bf16", "--output-lens", "16,32",
        "--agreement-prompts", "6");
    FakeExecutor executor = new FakeExecutor(spec -> ok(spec, 1));
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    TrialResult reference = new Study(o, null, executor, 1, new PrintStream(log, true, StandardCharsets.UTF_8))
        .reference();
    TrialSpec spec = executor.seen.get(0);
    assertThat(spec.isReference()).isTrue();
    assertThat(spec.engine().get(EngineOptions.PRECISION).label()).isEqualTo("fp32");
    assertThat(spec.engine().get(GeneratorOptions.BATCH_SIZE)).isEqualTo(6);
    assertThat(spec.maxNewTokens()).as("the longest output of the space").isEqualTo(32);
    assertThat(spec.repeats()).isEqualTo(1);
    assertThat(reference.ok()).isTrue();
    assertThat(log.toString(StandardCharsets.UTF_8)).contains("reference run (fp32)");
  }

  @Test
  void aTrialIsPrunedOnlyWhenAFinishedOneIsTenPercentBetterInBoth() {
    List<double[]> finished = List.of(new double[] {100, 10});
    assertThat(TrialRunner.dominated(80, 12, finished)).as("20% slower and 20% later").isTrue();
    assertThat(TrialRunner.dominated(95, 12, finished)).as("only 5% slower: noise").isFalse();
    assertThat(TrialRunner.dominated(80, 10.5, finished)).as("about as fast per token").isFalse();
    assertThat(TrialRunner.dominated(120, 20, finished)).as("faster overall, later per token: a trade-off").isFalse();
    assertThat(TrialRunner.dominated(1, 100, List.of())).as("nothing finished").isFalse();
  }

  @Test
  void progressLinesNameTheTrialItsOutcomeAndTheBestSoFar() {
    SweepOptions o = options("--batch-sizes", "1,2");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    try (Sampler grid = Samplers.create("grid", o.space(), 0, 0)) {
      new Study(o, grid, new FakeExecutor(spec -> spec.trial() == 2 ? oom(spec) : ok(spec, 10)), 1,
          new PrintStream(log, true, StandardCharsets.UTF_8)).run();
    }
    String text = log.toString(StandardCharsets.UTF_8);
    assertThat(text).contains("sweep: trial 1/2 {batch-size=1}: 10.0 tokens/s, p99 10.00 ms/token | best so far: trial 1 "
        + "(10.0 tokens/s)");
    assertThat(text).contains("sweep: trial 2/2 {batch-size=2}: oom (CUDA out of memory)").contains("ETA -");
  }
}
