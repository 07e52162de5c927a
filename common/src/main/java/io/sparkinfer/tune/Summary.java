package io.sparkinfer.tune;

import org.apache.commons.math3.distribution.TDistribution;
import org.apache.commons.math3.stat.StatUtils;
import org.apache.commons.math3.stat.descriptive.DescriptiveStatistics;
import org.apache.commons.math3.stat.descriptive.rank.Percentile;
import org.apache.commons.math3.stat.descriptive.rank.Percentile.EstimationType;

/**
 * A trial's repeats summarized: mean, sample standard deviation and the half-width of the mean's 95%
 * confidence interval from Student's t distribution (Commons Math), so {@code mean +- ci95} covers the true
 * mean 95% of the time when repeats vary normally.
 *
 * @param n repeats
 * @param ci95 half-width of the 95% confidence interval of the mean; NaN with one repeat
 */
public record Summary(int n, double mean, double stddev, double ci95) {

  /** Summarizes {@code samples} (at least one). */
  public static Summary of(double[] samples) {
    if (samples.length == 0) {
      throw new IllegalArgumentException("no samples to summarize");
    }
    DescriptiveStatistics s = new DescriptiveStatistics(samples);
    int n = samples.length;
    double sd = n > 1 ? s.getStandardDeviation() : 0;
    double ci = n > 1 ? new TDistribution(n - 1).inverseCumulativeProbability(0.975) * sd / Math.sqrt(n) : Double.NaN;
    return new Summary(n, s.getMean(), sd, ci);
  }

  /**
   * The {@code p}-th percentile (0-100) of {@code values}, interpolated linearly between order statistics as
   * numpy's default does (Commons Math's R-7 estimate); NaN for no values.
   *
   * @throws IllegalArgumentException when {@code p} is not in [0, 100]
   */
  public static double percentile(double[] values, double p) {
    if (!(p >= 0 && p <= 100)) {
      throw new IllegalArgumentException("a percentile is in [0, 100], got " + p);
    }
    if (values.length == 0) {
      return Double.NaN;
    }
    if (p == 0) {
      return StatUtils.min(values); // Commons Math takes p in (0, 100]; R-7's 0th percentile is the least value
    }
    return new Percentile().withEstimationType(EstimationType.R_7).evaluate(values, p);
  }
}
