package io.sparkinfer.tune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.apache.commons.math3.stat.inference.MannWhitneyUTest;
import org.apache.commons.math3.stat.inference.TTest;
import org.junit.jupiter.api.Test;

/** Before/after comparisons: Welch's p-value, the relative change, regressions, power and false alarm rate. */
class SignificanceTest {

  static double[] normal(Random random, int n, double mean, double sd) {
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      out[i] = mean + sd * random.nextGaussian();
    }
    return out;
  }

  @Test
  void welchsPValueIsCommonsMathsTTest() {
    double[] before = {100, 102, 98, 101, 99};
    double[] after = {95, 97, 94, 96, 98, 90};
    Significance.Comparison c = Significance.compare(before, after, 0.05);
    assertThat(c.welchP()).isEqualTo(new TTest().tTest(before, after));
    assertThat(c.mannWhitneyP()).isEqualTo(new MannWhitneyUTest().mannWhitneyUTest(before, after));
    assertThat(c.meanBefore()).isEqualTo(100.0);
    assertThat(c.meanAfter()).isEqualTo(95.0);
    assertThat(c.welchP()).as("a clear drop").isLessThan(0.01);
    assertThat(c.significant()).isTrue();
    Random random = new Random(9);
    for (int i = 0; i < 50; i++) {
      double[] b = normal(random, 3 + random.nextInt(5), 50, 1 + random.nextInt(5));
      double[] a = normal(random, 3 + random.nextInt(5), 50 + random.nextGaussian() * 3, 1 + random.nextInt(5));
      assertThat(Significance.compare(b, a, 0.05).welchP()).isEqualTo(new TTest().tTest(b, a));
    }
  }

  @Test
  void theChangeIsRelativeToTheMeanBefore() {
    assertThat(Significance.compare(new double[] {190, 210}, new double[] {215, 225}, 0.05).change())
        .as("(220 - 200) / 200").isCloseTo(0.1, within(1e-12));
    assertThat(Significance.compare(new double[] {10, 10, 10}, new double[] {9, 9, 9}, 0.05).change())
        .isCloseTo(-0.1, within(1e-12));
  }

  @Test
  void significantMeansWelchsPBelowAlpha() {
    double[] before = {100, 102, 98, 101, 99};
    double[] after = {99, 101, 97, 100, 97};
    double p = Significance.compare(before, after, 0.05).welchP();
    assertThat(p).isBetween(0.1, 0.9);
    assertThat(Significance.compare(before, after, p * 1.01).significant()).isTrue();
    assertThat(Significance.compare(before, after, p).significant()).as("strictly below alpha").isFalse();
    assertThat(Significance.compare(before, after, 0.05).significant()).isFalse();
  }

  @Test
  void aRegressionIsASignificantDropOfMoreThanTheThreshold() {
    assertThat(new Significance.Comparison(100, 90, -0.10, 0.001, 0.01, true).regression(0.05)).isTrue();
    assertThat(new Significance.Comparison(100, 90, -0.10, 0.2, 0.3, false).regression(0.05))
        .as("not significant").isFalse();
    assertThat(new Significance.Comparison(100, 97, -0.03, 0.001, 0.01, true).regression(0.05))
        .as("significant but smaller than the threshold").isFalse();
    assertThat(new Significance.Comparison(100, 95, -0.05, 0.001, 0.01, true).regression(0.05))
        .as("a drop of exactly the threshold is not more than it").isFalse();
    assertThat(new Significance.Comparison(100, 110, 0.10, 0.001, 0.01, true).regression(0.05))
        .as("a speed-up").isFalse();
    assertThat(new Significance.Comparison(100, 97, -0.03, 0.001, 0.01, true).regression(0)).isTrue();
    assertThat(Significance.compare(new double[] {100, 101, 99}, new double[] {80, 81, 79}, 0.05).regression(0.05))
        .isTrue();
  }

  @Test
  void aTenPercentDropWithTwoPercentNoiseIsFoundIn95PercentOfComparisons() {
    Random random = new Random(1);
    int runs = 500;
    int found = 0;
    int regressions = 0;
    for (int run = 0; run < runs; run++) {
      double[] before = normal(random, 5, 1000, 20);
      double[] after = normal(random, 5, 900, 20);
      Significance.Comparison c = Significance.compare(before, after, 0.05);
      found += c.significant() ? 1 : 0;
      regressions += c.regression(0.05) ? 1 : 0;
    }
    System.out.printf("10%% drop, 5 repeats, sd 2%%: significant in %d of %d, regression(5%%) in %d%n", found, runs,
        regressions);
    assertThat(found / (double) runs).as("detection power").isGreaterThanOrEqualTo(0.95);
    assertThat(regressions / (double) runs).as("flagged as regressions beyond 5%").isGreaterThanOrEqualTo(0.95);
  }

  @Test
  void equalDistributionsRaiseAFalseAlarmInAlphaOfComparisons() {
    Random random = new Random(2);
    int runs = 2000;
    int alarms = 0;
    for (int run = 0; run < runs; run++) {
      Significance.Comparison c = Significance.compare(normal(random, 5, 1000, 20), normal(random, 5, 1000, 20), 0.05);
      alarms += c.significant() ? 1 : 0;
    }
    double rate = alarms / (double) runs;
    System.out.printf("equal distributions, 5 repeats: false alarm rate %.4f at alpha 0.05%n", rate);
    assertThat(rate).as("close to alpha = 0.05").isBetween(0.03, 0.07);
  }

  @Test
  void samplesWithoutSpreadAreCompared() {
    Significance.Comparison same = Significance.compare(new double[] {5, 5, 5}, new double[] {5, 5, 5, 5}, 0.05);
    assertThat(same.welchP()).isEqualTo(1.0);
    assertThat(same.significant()).isFalse();
    assertThat(same.change()).isZero();
    Significance.Comparison different = Significance.compare(new double[] {5, 5, 5}, new double[] {6, 6, 6}, 0.05);
    assertThat(different.welchP()).as("no spread: any difference is certain").isZero();
    assertThat(different.significant()).isTrue();
    assertThat(different.change()).isCloseTo(0.2, within(1e-12));
    Significance.Comparison oneSpread = Significance.compare(new double[] {5, 5, 5}, new double[] {4, 5, 6}, 0.05);
    assertThat(oneSpread.welchP()).as("spread on one side only: Welch's test").isEqualTo(1.0);
  }

  @Test
  void fewerThanTwoRepeatsGiveNoWelchTest() {
    Significance.Comparison c = Significance.compare(new double[] {100}, new double[] {50, 51, 49}, 0.05);
    assertThat(c.welchP()).isNaN();
    assertThat(c.significant()).as("nothing is significant without a test").isFalse();
    assertThat(c.regression(0.05)).isFalse();
    assertThat(c.mannWhitneyP()).as("Mann-Whitney still reported").isBetween(0.0, 1.0);
    assertThat(c.change()).isCloseTo(-0.5, within(1e-12));
  }
}
