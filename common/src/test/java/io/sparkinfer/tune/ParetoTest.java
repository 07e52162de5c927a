package io.sparkinfer.tune;

import static io.sparkinfer.tune.Pareto.Direction.MAXIMIZE;
import static io.sparkinfer.tune.Pareto.Direction.MINIMIZE;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The Pareto front of (tokens/s to maximize, latency to minimize): ties, dominated points, failed trials. */
class ParetoTest {

  static double[] p(double tokensPerSecond, double latency) {
    return new double[] {tokensPerSecond, latency};
  }

  @Test
  void theFrontHoldsThePointsNoOtherDominates() {
    List<double[]> points = List.of(
        p(100, 10), // 0: front
        p(100, 10), // 1: equal to 0; equals do not dominate each other, so both are on the front
        p(90, 12), // 2: worse than 0 in both
        p(120, 20), // 3: front, the fastest
        p(80, 5), // 4: front, the lowest latency
        p(100, 11), // 5: as fast as 0, slower to answer
        p(80, 6), // 6: as fast as 4, slower to answer
        p(50, 50)); // 7: worse than all
    assertThat(Pareto.front(points, MAXIMIZE, MINIMIZE)).containsExactly(true, true, false, true, true, false, false,
        false);
  }

  @Test
  void failedTrialsAreNeverOnTheFrontAndNeverDominate() {
    List<double[]> points = List.of(
        p(Double.NaN, 1), // 0: failed; would beat 1 on latency
        p(80, 5), // 1: front, as nothing real dominates it
        p(130, Double.NaN), // 2: failed; would beat 3 on tokens/s
        p(120, 20), // 3: front
        p(Double.NaN, Double.NaN)); // 4
    assertThat(Pareto.front(points, MAXIMIZE, MINIMIZE)).containsExactly(false, true, false, true, false);
    assertThat(Pareto.front(List.of(p(Double.NaN, 1)), MAXIMIZE, MINIMIZE)).as("even alone").containsExactly(false);
    assertThat(Pareto.dominates(p(Double.NaN, 1), p(80, 5), MAXIMIZE, MINIMIZE)).as("a failed result dominates nothing")
        .isFalse();
    assertThat(Pareto.dominates(p(130, Double.NaN), p(120, 20), MAXIMIZE, MINIMIZE)).isFalse();
  }

  @Test
  void dominatesMeansAtLeastAsGoodInEveryObjectiveAndBetterInOne() {
    assertThat(Pareto.dominates(p(100, 10), p(90, 12), MAXIMIZE, MINIMIZE)).isTrue();
    assertThat(Pareto.dominates(p(90, 12), p(100, 10), MAXIMIZE, MINIMIZE)).isFalse();
    assertThat(Pareto.dominates(p(100, 10), p(100, 11), MAXIMIZE, MINIMIZE)).as("better in latency only").isTrue();
    assertThat(Pareto.dominates(p(101, 10), p(100, 10), MAXIMIZE, MINIMIZE)).as("better in tokens/s only").isTrue();
    assertThat(Pareto.dominates(p(100, 10), p(100, 10), MAXIMIZE, MINIMIZE)).as("equal points").isFalse();
    assertThat(Pareto.dominates(p(120, 20), p(80, 5), MAXIMIZE, MINIMIZE)).as("a trade-off").isFalse();
    assertThat(Pareto.dominates(p(80, 5), p(120, 20), MAXIMIZE, MINIMIZE)).as("a trade-off").isFalse();
    assertThat(Pareto.dominates(p(80, 5), p(120, 20), MINIMIZE, MINIMIZE)).as("the directions decide").isTrue();
    assertThat(Pareto.dominates(p(120, 20), p(80, 5), MAXIMIZE, MAXIMIZE)).isTrue();
    assertThat(Pareto.dominates(new double[] {3}, new double[] {2}, MAXIMIZE)).isTrue();
    assertThat(Pareto.dominates(new double[] {3}, new double[] {2}, MINIMIZE)).isFalse();
  }

  @Test
  void withOneObjectiveTheFrontIsTheBestValueAndItsTies() {
    List<double[]> points = List.of(new double[] {5}, new double[] {9}, new double[] {9}, new double[] {1});
    assertThat(Pareto.front(points, MAXIMIZE)).containsExactly(false, true, true, false);
    assertThat(Pareto.front(points, MINIMIZE)).containsExactly(false, false, false, true);
    assertThat(Pareto.front(List.of(), MAXIMIZE, MINIMIZE)).isEmpty();
  }
}
