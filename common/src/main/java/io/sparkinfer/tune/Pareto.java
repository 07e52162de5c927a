package io.sparkinfer.tune;

import java.util.List;

/**
 * The Pareto front of results with several objectives, each to maximize or minimize (Optuna's
 * "directions"): a result is on the front when no other is at least as good in every objective and better in
 * one. Results with a NaN objective (failed trials) are never on it and never dominate.
 */
public final class Pareto {

  /** Whether an objective is to be made larger or smaller. */
  public enum Direction {
    MAXIMIZE, MINIMIZE
  }

  private Pareto() {}

  /** For each point (one value per direction), whether it is on the front. */
  public static boolean[] front(List<double[]> points, Direction... directions) {
    boolean[] out = new boolean[points.size()];
    for (int i = 0; i < points.size(); i++) {
      double[] p = points.get(i);
      if (hasNaN(p)) {
        continue;
      }
      boolean dominated = false;
      for (int j = 0; j < points.size() && !dominated; j++) {
        double[] q = points.get(j);
        dominated = j != i && !hasNaN(q) && dominates(q, p, directions);
      }
      out[i] = !dominated;
    }
    return out;
  }

  /**
   * Whether {@code a} is at least as good as {@code b} in every objective and better in one; never when {@code a}
   * has a NaN objective (a failed trial).
   */
  public static boolean dominates(double[] a, double[] b, Direction... directions) {
    if (hasNaN(a)) {
      return false;
    }
    boolean better = false;
    for (int k = 0; k < directions.length; k++) {
      double d = directions[k] == Direction.MAXIMIZE ? a[k] - b[k] : b[k] - a[k];
      if (d < 0) {
        return false;
      }
      better |= d > 0;
    }
    return better;
  }

  private static boolean hasNaN(double[] p) {
    for (double v : p) {
      if (Double.isNaN(v)) {
        return true;
      }
    }
    return false;
  }
}
