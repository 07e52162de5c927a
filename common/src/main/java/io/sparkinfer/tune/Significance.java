package io.sparkinfer.tune;

import org.apache.commons.math3.stat.inference.MannWhitneyUTest;
import org.apache.commons.math3.stat.inference.TTest;

/**
 * Whether a configuration got faster or slower between two runs, judged over their repeats: Welch's t-test
 * (unequal variances; Commons Math) decides, and the Mann-Whitney U test, which assumes no normal
 * distribution, is reported beside it. A change is significant when Welch's two-sided p-value is below
 * {@code alpha}: on equal distributions that raises a false alarm in a fraction {@code alpha} of comparisons.
 */
public final class Significance {

  private Significance() {}

  /**
   * @param meanBefore the mean of the earlier run's repeats
   * @param change the relative change of the mean, (after - before) / before
   * @param welchP Welch's two-sided p-value (NaN with fewer than two repeats on a side)
   * @param mannWhitneyP the Mann-Whitney U test's two-sided p-value
   * @param significant whether {@code welchP < alpha}
   */
  public record Comparison(double meanBefore, double meanAfter, double change, double welchP, double mannWhitneyP,
      boolean significant) {

    /** A significant drop of more than {@code threshold} (e.g. 0.05 for 5%). */
    public boolean regression(double threshold) {
      return significant && change < -threshold;
    }
  }

  /** Compares the repeats of {@code before} and {@code after} at significance level {@code alpha}. */
  public static Comparison compare(double[] before, double[] after, double alpha) {
    double mb = mean(before);
    double ma = mean(after);
    double welch = Double.NaN;
    if (before.length >= 2 && after.length >= 2) {
      if (variance(before) == 0 && variance(after) == 0) {
        welch = mb == ma ? 1.0 : 0.0; // no spread at all: any difference is certain
      } else {
        welch = new TTest().tTest(before, after);
      }
    }
    double mw = before.length > 0 && after.length > 0 ? new MannWhitneyUTest().mannWhitneyUTest(before, after)
        : Double.NaN;
    return new Comparison(mb, ma, (ma - mb) / mb, welch, mw, welch < alpha);
  }

  private static double mean(double[] v) {
    double s = 0;
    for (double x : v) {
      s += x;
    }
    return s / v.length;
  }

  private static double variance(double[] v) {
    double m = mean(v);
    double s = 0;
    for (double x : v) {
      s += (x - m) * (x - m);
    }
    return s;
  }
}
