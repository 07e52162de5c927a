package io.sparkinfer.tune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;
import org.junit.jupiter.api.Test;

/**
 * The CMA-ES sampler: one trial per ask, told before the next; the budget; failed trials; seeding; and that it
 * finds a known function's peak better than random search does within the same budget.
 */
class CmaEsSamplerTest {

  static final Space SPACE = new Space(List.of(Axis.parse("batch-size", "1..1024:log"), Axis.parse("threads", "1..16"),
      Axis.parse("decode-chunk", "1..16")));

  /** Peak tokens per second of {@link #throughput}. */
  static final double PEAK = 100;

  /**
   * Tokens per second of a made-up engine: one smooth peak of {@link #PEAK} at batch 256, 4 threads and decode
   * chunk 13, far from the centre of the space (batch 32, 8 or 9 threads, chunk 8 or 9); a Gaussian of the
   * distance in the unit cube (log2 of the batch over 10, threads and chunk over 15) with width 0.15.
   */
  static double throughput(Map<String, String> trial) {
    double batch = Math.log(Double.parseDouble(trial.get("batch-size"))) / Math.log(2);
    double threads = Double.parseDouble(trial.get("threads"));
    double chunk = Double.parseDouble(trial.get("decode-chunk"));
    double z = Math.pow((batch - 8) / 10, 2) + Math.pow((threads - 4) / 15, 2) + Math.pow((chunk - 13) / 15, 2);
    return PEAK * Math.exp(-z / (2 * 0.15 * 0.15));
  }

  /** Runs a study one trial at a time, telling each trial's objective; returns the trials in order. */
  static List<Map<String, String>> study(Sampler s, ToDoubleFunction<Map<String, String>> objective) {
    List<Map<String, String>> trials = new ArrayList<>();
    for (List<Map<String, String>> asked = s.ask(1); !asked.isEmpty(); asked = s.ask(1)) {
      assertThat(asked).as("one trial at a time").hasSize(1);
      Map<String, String> t = asked.get(0);
      trials.add(t);
      s.tell(t, objective.applyAsDouble(t));
    }
    return trials;
  }

  static double best(List<Map<String, String>> trials) {
    return trials.stream().mapToDouble(CmaEsSamplerTest::throughput).max().orElse(Double.NaN);
  }

  @Test
  void askGivesOneTrialStartingAtTheCentreOfTheSpace() {
    try (Sampler s = Samplers.create("cmaes", SPACE, 10, 1)) {
      assertThat(s.name()).isEqualTo("cmaes");
      List<Map<String, String>> asked = s.ask(8);
      assertThat(asked).as("a model-based sampler gives one trial per ask, however many are asked for").hasSize(1);
      assertThat(asked.get(0)).as("CMA-ES starts from the centre of the unit cube")
          .containsExactly(Map.entry("batch-size", "32"), Map.entry("threads", "9"), Map.entry("decode-chunk", "9"));
    }
  }

  @Test
  void askingAgainBeforeTellingThrows() {
    try (Sampler s = Samplers.create("cmaes", SPACE, 10, 1)) {
      Map<String, String> t = s.ask(1).get(0);
      assertThatThrownBy(() -> s.ask(1)).isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("tell the result of " + t);
      s.tell(t, 1.0);
      assertThat(s.ask(1)).as("after the tell, the next trial").hasSize(1).doesNotContain(t);
    }
  }

  @Test
  void tellingAnotherTrialThrows() {
    try (Sampler s = Samplers.create("cmaes", SPACE, 10, 1)) {
      assertThatThrownBy(() -> s.tell(Map.of("batch-size", "1", "threads", "1", "decode-chunk", "1"), 1.0))
          .as("nothing asked yet").isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("waits for the result of");
      Map<String, String> t = s.ask(1).get(0);
      Map<String, String> other = Map.of("batch-size", "2", "threads", "1", "decode-chunk", "1");
      assertThatThrownBy(() -> s.tell(other, 1.0)).isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("waits for the result of " + t).hasMessageContaining("got " + other);
      s.tell(t, 1.0);
      assertThat(s.ask(1)).as("the right tell still goes through").hasSize(1);
    }
  }

  @Test
  void askingForNoTrialsGivesNone() {
    try (Sampler s = Samplers.create("cmaes", SPACE, 10, 1)) {
      assertThat(s.ask(0)).isEmpty();
      List<Map<String, String>> asked = s.ask(1);
      assertThat(asked).as("asking for none left no trial pending").hasSize(1);
      s.tell(asked.get(0), 2.0);
      assertThat(s.ask(0)).isEmpty();
      assertThat(s.ask(1)).hasSize(1);
    }
  }

  @Test
  void stopsAfterTheBudgetWithEveryTrialNew() {
    try (Sampler s = Samplers.create("cmaes", SPACE, 25, 3)) {
      List<Map<String, String>> trials = study(s, CmaEsSamplerTest::throughput);
      assertThat(trials).as("points that map to a trial already run reuse its result").hasSize(25)
          .doesNotHaveDuplicates();
      assertThat(s.ask(1)).isEmpty();
      assertThat(s.ask(1)).isEmpty();
    }
  }

  @Test
  void failedTrialsAreAccepted() {
    try (Sampler s = Samplers.create("cmaes", SPACE, 30, 4)) {
      List<Map<String, String>> trials = study(s, t -> Integer.parseInt(t.get("threads")) > 8 ? Double.NaN
          : throughput(t));
      assertThat(trials).hasSize(30).doesNotHaveDuplicates();
      assertThat(trials).as("some trials failed").anyMatch(t -> Integer.parseInt(t.get("threads")) > 8);
    }
    try (Sampler s = Samplers.create("cmaes", SPACE, 20, 5)) {
      assertThat(study(s, t -> Double.NaN)).as("every trial failed").hasSize(20).doesNotHaveDuplicates();
    }
  }

  @Test
  void theSameSeedGivesTheSameTrials() {
    List<List<Map<String, String>>> runs = new ArrayList<>();
    for (long seed : new long[] {7, 7, 8}) {
      try (Sampler s = Samplers.create("cmaes", SPACE, 30, seed)) {
        runs.add(study(s, CmaEsSamplerTest::throughput));
      }
    }
    assertThat(runs.get(1)).isEqualTo(runs.get(0));
    assertThat(runs.get(2)).as("another seed").isNotEqualTo(runs.get(0));
  }

  @Test
  void aTinySpaceEndsWhenItsTrialsRunOut() {
    Space tiny = new Space(List.of(Axis.parse("threads", "1,2"), Axis.parse("precision", "fp16,bf16")));
    try (Sampler s = Samplers.create("cmaes", tiny, 10, 1)) {
      List<Map<String, String>> trials = study(s, t -> t.get("threads").equals("2") ? 2 : 1);
      assertThat(trials).as("restarts from random points reach all 4 trials, each once").hasSize(4)
          .doesNotHaveDuplicates();
      assertThat(s.ask(1)).isEmpty();
    }
  }

  @Test
  void closingEndsTheStudy() {
    Sampler s = Samplers.create("cmaes", SPACE, 10, 1);
    Map<String, String> t = s.ask(1).get(0);
    s.tell(t, 1.0);
    s.close();
    assertThat(s.ask(1)).isEmpty();
    s.close();
  }

  @Test
  void theModelBasedSamplerBeatsRandomSearchOnAKnownFunctionWithinTheSameBudget() {
    int budget = 60;
    int seeds = 20;
    double nearPeak = 0.85 * PEAK;
    double cmaesMean = 0;
    double randomMean = 0;
    int cmaesNearPeak = 0;
    int randomNearPeak = 0;
    int cmaesWins = 0;
    for (long seed = 1; seed <= seeds; seed++) {
      List<Map<String, String>> cmaes;
      List<Map<String, String>> random;
      try (Sampler s = Samplers.create("cmaes", SPACE, budget, seed)) {
        cmaes = study(s, CmaEsSamplerTest::throughput);
      }
      try (Sampler s = Samplers.create("random", SPACE, budget, seed)) {
        random = study(s, CmaEsSamplerTest::throughput);
      }
      assertThat(cmaes).as("the same budget, spent in full").hasSize(budget);
      assertThat(random).as("the same budget, spent in full").hasSize(budget);
      double c = best(cmaes);
      double r = best(random);
      cmaesMean += c / seeds;
      randomMean += r / seeds;
      cmaesNearPeak += c >= nearPeak ? 1 : 0;
      randomNearPeak += r >= nearPeak ? 1 : 0;
      cmaesWins += c > r ? 1 : 0;
    }
    System.out.printf("cmaes vs random, %d trials, %d seeds: mean best %.2f vs %.2f; within 85%% of the peak %d vs %d;"
        + " cmaes better on %d seeds%n", budget, seeds, cmaesMean, randomMean, cmaesNearPeak, randomNearPeak,
        cmaesWins);
    assertThat(cmaesMean).as("CMA-ES's mean best is clearly above random search's")
        .isGreaterThan(randomMean + 5);
    assertThat(cmaesNearPeak).as("CMA-ES reaches the peak's region more often").isGreaterThan(randomNearPeak);
    assertThat(cmaesWins).as("CMA-ES finds the better best on most seeds").isGreaterThan(seeds / 2);
  }
}
