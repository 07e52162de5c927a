package io.sparkinfer.tune;

import java.util.List;
import java.util.Map;

/**
 * Chooses a study's trials (Optuna's word): asked for the next trials, told each one's objective. Samplers
 * that ignore results (grid, random, Sobol) return several trials per ask, which run in parallel; a
 * model-based sampler returns one at a time and must be told its result before the next ask.
 */
public interface Sampler extends AutoCloseable {

  /** Up to {@code max} trials to run next, each one value per axis; empty when the study is done. */
  List<Map<String, String>> ask(int max);

  /**
   * The objective of a trial this sampler asked for: greater is better; NaN when the trial failed, ran out of
   * memory or was pruned.
   */
  void tell(Map<String, String> trial, double objective);

  /** {@code grid}, {@code random}, {@code sobol} or {@code cmaes}. */
  String name();

  @Override
  default void close() {}
}
