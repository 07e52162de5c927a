package io.sparkinfer.tune;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Trials at points of the unit cube drawn from a sequence ({@link Space#at(double[])}), skipping trials
 * already asked for (small discrete spaces map many points to one trial), at most {@code budget} of them.
 * The random sampler draws uniform points from a seeded generator; the Sobol sampler takes Commons Math's
 * low-discrepancy sequence, which covers the cube more evenly than random points.
 */
public final class PointSampler implements Sampler {

  /** Draws tried for a new trial before the space counts as exhausted. */
  static final int MAX_DRAWS_PER_TRIAL = 1000;

  private final String name;
  private final Space space;
  private final Supplier<double[]> points;
  private final long budget;
  private final Set<Map<String, String>> seen = new HashSet<>();
  private boolean exhausted;

  PointSampler(String name, Space space, Supplier<double[]> points, long budget) {
    if (budget <= 0) {
      throw new IllegalArgumentException("the " + name + " sampler needs a trial budget (--trials N)");
    }
    this.name = name;
    this.space = space;
    this.points = points;
    this.budget = budget;
  }

  @Override
  public List<Map<String, String>> ask(int max) {
    List<Map<String, String>> out = new ArrayList<>();
    while (out.size() < max && !exhausted && seen.size() < budget) {
      Map<String, String> trial = null;
      for (int draw = 0; draw < MAX_DRAWS_PER_TRIAL && trial == null; draw++) {
        Map<String, String> t = space.at(points.get());
        if (seen.add(t)) {
          trial = t;
        }
      }
      if (trial == null) {
        exhausted = true;
      } else {
        out.add(trial);
      }
    }
    return out;
  }

  @Override
  public void tell(Map<String, String> trial, double objective) {}

  @Override
  public String name() {
    return name;
  }
}
