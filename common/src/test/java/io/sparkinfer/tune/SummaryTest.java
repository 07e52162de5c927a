package io.sparkinfer.tune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** A trial's repeats summarized (mean, sample stddev, Student-t CI95) and numpy-compatible percentiles. */
class SummaryTest {

  /** t(0.975, 2), the 97.5% quantile of Student's t with 2 degrees of freedom (exact: 4.302652729911275). */
  static final double T_975_2 = 4.302652729911275;

  @Test
  void meanSampleStddevAndCi95OfAKnownSample() {
    Summary s = Summary.of(new double[] {10, 12, 14});
    assertThat(s.n()).isEqualTo(3);
    assertThat(s.mean()).isEqualTo(12.0);
    assertThat(s.stddev()).as("the sample stddev divides by n - 1: sqrt((4 + 0 + 4) / 2)").isEqualTo(2.0);
    assertThat(s.ci95()).as("t(0.975, 2) * sd / sqrt(n), by hand").isCloseTo(T_975_2 * 2 / Math.sqrt(3),
        within(1e-8));
    assertThat(s.ci95()).isCloseTo(4.968275, within(1e-6));
  }

  @Test
  void ci95NarrowsWithMoreRepeatsAsTheTDistributionSays() {
    Summary s = Summary.of(new double[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    assertThat(s.mean()).isEqualTo(5.5);
    assertThat(s.stddev()).isCloseTo(Math.sqrt(82.5 / 9), within(1e-12));
    assertThat(s.ci95()).as("t(0.975, 9) = 2.2621571627982").isCloseTo(2.2621571627982 * s.stddev() / Math.sqrt(10),
        within(1e-8));
    assertThat(Summary.of(new double[] {3, 3, 3, 3}).ci95()).as("no spread, no uncertainty").isZero();
  }

  @Test
  void oneSampleHasNoSpreadAndNoInterval() {
    Summary s = Summary.of(new double[] {42});
    assertThat(s.n()).isEqualTo(1);
    assertThat(s.mean()).isEqualTo(42.0);
    assertThat(s.stddev()).isZero();
    assertThat(s.ci95()).isNaN();
  }

  @Test
  void noSamplesThrow() {
    assertThatThrownBy(() -> Summary.of(new double[0])).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("no samples to summarize");
  }

  @Test
  void theIntervalCoversTheTrueMeanNinetyFivePercentOfTheTime() {
    Random random = new Random(2026);
    double trueMean = 1000;
    double sd = 30;
    int runs = 2000;
    int covered = 0;
    for (int run = 0; run < runs; run++) {
      double[] samples = new double[5];
      for (int i = 0; i < samples.length; i++) {
        samples[i] = trueMean + sd * random.nextGaussian();
      }
      Summary s = Summary.of(samples);
      covered += Math.abs(s.mean() - trueMean) <= s.ci95() ? 1 : 0;
    }
    double coverage = covered / (double) runs;
    System.out.printf("ci95 coverage over %d samples of 5: %.4f%n", runs, coverage);
    assertThat(coverage).as("a 95%% interval from 5 normal repeats").isBetween(0.93, 0.97);
  }

  @Test
  void percentileInterpolatesLinearlyAsNumpyDoes() {
    double[] v = {1, 2, 3, 4};
    assertThat(Summary.percentile(v, 50)).isEqualTo(2.5);
    assertThat(Summary.percentile(v, 99)).as("numpy.percentile([1,2,3,4], 99)").isCloseTo(3.97, within(1e-12));
    assertThat(Summary.percentile(v, 25)).as("numpy.percentile([1,2,3,4], 25)").isEqualTo(1.75);
    assertThat(Summary.percentile(v, 100)).isEqualTo(4.0);
    assertThat(Summary.percentile(v, 0)).as("the 0th percentile is the least value, as in numpy").isEqualTo(1.0);
    assertThat(Summary.percentile(new double[] {4, 1, 3, 2}, 50)).as("order does not matter").isEqualTo(2.5);
    assertThat(Summary.percentile(new double[] {10, 20, 30, 40, 50}, 90)).isCloseTo(46.0, within(1e-12));
    assertThat(Summary.percentile(new double[] {7}, 99)).isEqualTo(7.0);
    assertThat(Summary.percentile(new double[] {7}, 0)).isEqualTo(7.0);
  }

  @Test
  void percentileOfNothingIsNaNAndOfABadRankThrows() {
    assertThat(Summary.percentile(new double[0], 50)).isNaN();
    assertThatThrownBy(() -> Summary.percentile(new double[] {1, 2}, 101)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("101");
    assertThatThrownBy(() -> Summary.percentile(new double[] {1, 2}, -1)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("-1");
  }
}
