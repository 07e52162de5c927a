package io.sparkinfer.tune;

import java.util.List;
import org.apache.commons.math3.random.RandomGenerator;
import org.apache.commons.math3.random.SobolSequenceGenerator;
import org.apache.commons.math3.random.Well19937c;

/** The samplers by name: {@code grid}, {@code random}, {@code sobol}, {@code cmaes}. */
public final class Samplers {

  public static final List<String> NAMES = List.of("grid", "random", "sobol", "cmaes");

  private Samplers() {}

  /**
   * @param budget the most trials; 0 for the whole grid (grid only)
   * @param seed the random and CMA-ES samplers' seed (Sobol and grid are deterministic)
   */
  public static Sampler create(String name, Space space, long budget, long seed) {
    return switch (name) {
      case "grid" -> new GridSampler(space, budget);
      case "random" -> {
        RandomGenerator random = new Well19937c(seed);
        int d = space.dimensions();
        yield new PointSampler("random", space, () -> {
          double[] p = new double[d];
          for (int i = 0; i < d; i++) {
            p[i] = random.nextDouble();
          }
          return p;
        }, budget);
      }
      case "sobol" -> {
        SobolSequenceGenerator sobol = new SobolSequenceGenerator(space.dimensions());
        yield new PointSampler("sobol", space, sobol::nextVector, budget);
      }
      case "cmaes" -> new CmaEsSampler(space, budget, seed);
      default -> throw new IllegalArgumentException("sampler '" + name + "' is not one of " + NAMES);
    };
  }
}
