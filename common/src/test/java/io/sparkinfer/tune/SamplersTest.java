package io.sparkinfer.tune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.commons.math3.random.SobolSequenceGenerator;
import org.junit.jupiter.api.Test;

/** The samplers that ignore results (grid, random, Sobol) and the factory that makes every sampler by name. */
class SamplersTest {

  static final Space GRID = new Space(List.of(Axis.parse("threads", "1,2"), Axis.parse("precision", "fp16,bf16,fp32"),
      Axis.parse("batch-size", "1..4:log")));

  /** Two wide axes: distinct points of the cube map to distinct trials, so a point sampler skips none. */
  static final Space WIDE = new Space(List.of(Axis.parse("prompt-len", "0..1000000"),
      Axis.parse("max-new-tokens", "0..1000000")));

  static final Space TINY = new Space(List.of(Axis.parse("threads", "1,2"), Axis.parse("precision", "fp16,bf16")));

  static Map<String, String> trial(String... keysAndValues) {
    Map<String, String> t = new LinkedHashMap<>();
    for (int i = 0; i < keysAndValues.length; i += 2) {
      t.put(keysAndValues[i], keysAndValues[i + 1]);
    }
    return t;
  }

  /** Every trial the sampler gives, asked for {@code chunk} at a time until it has none. */
  static List<Map<String, String>> drain(Sampler s, int chunk) {
    List<Map<String, String>> out = new ArrayList<>();
    for (List<Map<String, String>> batch = s.ask(chunk); !batch.isEmpty(); batch = s.ask(chunk)) {
      assertThat(batch.size()).as("no more than asked for").isLessThanOrEqualTo(chunk);
      out.addAll(batch);
    }
    return out;
  }

  static List<Map<String, String>> run(String name, Space space, long budget, long seed, int chunk) {
    try (Sampler s = Samplers.create(name, space, budget, seed)) {
      return drain(s, chunk);
    }
  }

  @Test
  void gridCoversTheProductOfTheAxesEachOnceWithTheLastAxisFastest() {
    List<Map<String, String>> expected = new ArrayList<>();
    for (String threads : List.of("1", "2")) {
      for (String precision : List.of("fp16", "bf16", "fp32")) {
        for (String batch : List.of("1", "2", "4")) {
          expected.add(trial("threads", threads, "precision", precision, "batch-size", batch));
        }
      }
    }
    List<Map<String, String>> trials = run("grid", GRID, 0, 1, 100);
    assertThat(trials).containsExactlyElementsOf(expected);
    assertThat(trials).hasSize((int) GRID.gridSize()).doesNotHaveDuplicates();
    assertThat(trials.get(0).keySet()).as("values in the axes' order").containsExactly("threads", "precision",
        "batch-size");
  }

  @Test
  void gridAskedInChunksGivesTheSameSequence() {
    List<Map<String, String>> whole = run("grid", GRID, 0, 1, 1000);
    assertThat(run("grid", GRID, 0, 1, 3)).isEqualTo(whole);
    assertThat(run("grid", GRID, 0, 1, 1)).isEqualTo(whole);
    assertThat(run("grid", GRID, 0, 1, 5)).as("chunks that do not divide the grid").isEqualTo(whole);
  }

  @Test
  void gridBudgetCapsTheTrialsAtTheStartOfTheSequence() {
    List<Map<String, String>> whole = run("grid", GRID, 0, 1, 1000);
    assertThat(run("grid", GRID, 5, 1, 3)).isEqualTo(whole.subList(0, 5));
    assertThat(run("grid", GRID, 18, 1, 4)).isEqualTo(whole);
    assertThat(run("grid", GRID, 1000, 1, 4)).as("a budget past the grid is the grid").isEqualTo(whole);
  }

  @Test
  void gridIsEmptyOnceExhaustedAndAskingForNoneTakesNone() {
    try (Sampler s = Samplers.create("grid", GRID, 0, 1)) {
      assertThat(s.name()).isEqualTo("grid");
      assertThat(s.ask(0)).isEmpty();
      assertThat(s.ask(1)).as("asking for none did not advance").containsExactly(
          trial("threads", "1", "precision", "fp16", "batch-size", "1"));
      s.tell(trial("threads", "1", "precision", "fp16", "batch-size", "1"), 5.0);
      assertThat(s.ask(100)).hasSize(17);
      assertThat(s.ask(100)).isEmpty();
      assertThat(s.ask(1)).isEmpty();
    }
  }

  @Test
  void sobolAsksCommonsMathsSequenceInOrder() {
    int budget = 200;
    SobolSequenceGenerator sobol = new SobolSequenceGenerator(2);
    List<Map<String, String>> expected = new ArrayList<>();
    for (int i = 0; i < budget; i++) {
      expected.add(WIDE.at(sobol.nextVector()));
    }
    assertThat(expected).as("the space is wide enough that no Sobol point is skipped").doesNotHaveDuplicates();
    assertThat(expected.get(0)).as("Sobol starts at the origin")
        .isEqualTo(trial("prompt-len", "0", "max-new-tokens", "0"));
    assertThat(expected.get(1)).isEqualTo(trial("prompt-len", "500000", "max-new-tokens", "500000"));
    assertThat(run("sobol", WIDE, budget, 1, 7)).isEqualTo(expected);
    assertThat(run("sobol", WIDE, budget, 99, 200)).as("Sobol ignores the seed").isEqualTo(expected);
    assertThat(run("sobol", WIDE, 13, 1, 5)).as("the budget caps the trials").isEqualTo(expected.subList(0, 13));
  }

  @Test
  void sobolOnATinySpaceYieldsEachTrialOnceThenStops() {
    try (Sampler s = Samplers.create("sobol", TINY, 10, 1)) {
      assertThat(s.name()).isEqualTo("sobol");
      List<Map<String, String>> trials = drain(s, 3);
      assertThat(trials).as("only 4 distinct trials exist").hasSize(4).doesNotHaveDuplicates()
          .containsExactlyInAnyOrderElementsOf(run("grid", TINY, 0, 1, 10));
      assertThat(s.ask(3)).isEmpty();
    }
  }

  @Test
  void randomWithTheSameSeedGivesTheSameTrialsAndAnotherSeedOthers() {
    List<Map<String, String>> a = run("random", WIDE, 100, 42, 10);
    assertThat(a).hasSize(100);
    assertThat(run("random", WIDE, 100, 42, 3)).as("same seed, any chunking").isEqualTo(a);
    List<Map<String, String>> b = run("random", WIDE, 100, 43, 10);
    assertThat(b).hasSize(100).isNotEqualTo(a);
    assertThat(new HashSet<>(b)).as("another seed draws other points").doesNotContainAnyElementsOf(a);
  }

  @Test
  void randomNeverRepeatsATrialAndRespectsTheBudget() {
    Space small = new Space(List.of(Axis.parse("threads", "1..10"), Axis.parse("decode-chunk", "1..10")));
    List<Map<String, String>> trials = run("random", small, 60, 5, 7);
    assertThat(trials).as("60 of the 100 trials, none twice").hasSize(60).doesNotHaveDuplicates();
    assertThat(run("random", small, 500, 5, 7)).as("the budget beyond the space: each of the 100 once").hasSize(100)
        .doesNotHaveDuplicates();
    try (Sampler s = Samplers.create("random", TINY, 10, 3)) {
      assertThat(s.name()).isEqualTo("random");
      assertThat(drain(s, 10)).hasSize(4).doesNotHaveDuplicates();
      assertThat(s.ask(10)).isEmpty();
    }
  }

  @Test
  void randomDrawsEveryValueOfAnAxis() {
    Space space = new Space(List.of(Axis.parse("precision", "fp16,bf16,fp32,int8"), Axis.parse("seed", "0..1000000")));
    List<Map<String, String>> trials = run("random", space, 400, 11, 50);
    long fp16 = trials.stream().filter(t -> t.get("precision").equals("fp16")).count();
    assertThat(trials.stream().map(t -> t.get("precision")).distinct()).containsExactlyInAnyOrder("fp16", "bf16",
        "fp32", "int8");
    assertThat(fp16).as("about a quarter of 400 draws").isBetween(70L, 130L);
  }

  @Test
  void samplersThatNeedABudgetAskForTrials() {
    for (String name : List.of("random", "sobol", "cmaes")) {
      assertThatThrownBy(() -> Samplers.create(name, WIDE, 0, 1)).as(name).isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining(name).hasMessageContaining("--trials");
      assertThatThrownBy(() -> Samplers.create(name, WIDE, -5, 1)).as(name).hasMessageContaining("--trials");
    }
    assertThat(run("grid", TINY, 0, 1, 10)).as("the grid needs none").hasSize(4);
  }

  @Test
  void anUnknownSamplerNameListsTheNames() {
    assertThatThrownBy(() -> Samplers.create("bayes", WIDE, 10, 1)).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("sampler 'bayes' is not one of [grid, random, sobol, cmaes]");
    assertThatThrownBy(() -> Samplers.create("Grid", WIDE, 10, 1)).as("names are lower case")
        .hasMessageContaining("[grid, random, sobol, cmaes]");
    for (String name : Samplers.NAMES) {
      try (Sampler s = Samplers.create(name, TINY, 4, 1)) {
        assertThat(s.name()).isEqualTo(name);
      }
    }
  }

  @Test
  void pointSamplersIgnoreResults() {
    for (String name : List.of("random", "sobol")) {
      List<Map<String, String>> plain = run(name, WIDE, 30, 8, 30);
      List<Map<String, String>> told = new ArrayList<>();
      try (Sampler s = Samplers.create(name, WIDE, 30, 8)) {
        for (List<Map<String, String>> batch = s.ask(4); !batch.isEmpty(); batch = s.ask(4)) {
          for (Map<String, String> t : batch) {
            s.tell(t, t.get("prompt-len").length());
            told.add(t);
          }
          s.tell(trial("prompt-len", "1"), Double.NaN);
        }
      }
      assertThat(told).as(name).isEqualTo(plain);
    }
  }
}
