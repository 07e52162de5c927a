package io.sparkinfer.tune;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.TimeUnit;
import org.apache.commons.math3.exception.TooManyEvaluationsException;
import org.apache.commons.math3.optim.InitialGuess;
import org.apache.commons.math3.optim.MaxEval;
import org.apache.commons.math3.optim.MaxIter;
import org.apache.commons.math3.optim.SimpleBounds;
import org.apache.commons.math3.optim.nonlinear.scalar.GoalType;
import org.apache.commons.math3.optim.nonlinear.scalar.ObjectiveFunction;
import org.apache.commons.math3.optim.nonlinear.scalar.noderiv.CMAESOptimizer;
import org.apache.commons.math3.random.RandomGenerator;
import org.apache.commons.math3.random.Well19937c;

/**
 * The model-based sampler: Commons Math's CMA-ES ({@link CMAESOptimizer}) maximizing the objective over the
 * unit cube, each point mapped to a trial by the axes ({@link Space#at(double[])}: ranges on their own scale,
 * lists by index). CMA-ES adapts a Gaussian search distribution to the results so far, so it spends its budget
 * near the best region rather than uniformly.
 *
 * <p>Commons Math's optimizer calls the objective itself; here it runs on a thread of its own whose objective
 * hands each new trial to {@link #ask} and waits for {@link #tell}, so trials run wherever the study runs them,
 * one at a time. Points that map to a trial already run reuse its result without a new trial. When the
 * optimizer converges before the budget is spent, it restarts from a new random point.
 */
public final class CmaEsSampler implements Sampler {

  /** Objective given to CMA-ES for a trial that failed: worse than any real result, finite (it ranks values). */
  static final double FAILED = -1e30;
  static final int MAX_RESTARTS = 50;

  private final Space space;
  private final long budget;
  private final RandomGenerator random;
  private final Map<Map<String, String>, Double> results = new HashMap<>();
  private final SynchronousQueue<Map<String, String>> asks = new SynchronousQueue<>();
  private final SynchronousQueue<Double> tells = new SynchronousQueue<>();
  private final Thread optimizer;
  private volatile boolean done;
  private Map<String, String> pending;
  private long asked;

  CmaEsSampler(Space space, long budget, long seed) {
    if (budget <= 0) {
      throw new IllegalArgumentException("the cmaes sampler needs a trial budget (--trials N)");
    }
    this.space = space;
    this.budget = budget;
    this.random = new Well19937c(seed);
    this.optimizer = new Thread(this::optimize, "sparkinfer-cmaes");
    optimizer.setDaemon(true);
    optimizer.start();
  }

  /** Thrown inside the objective to end the optimizer once the budget is spent or the sampler closes. */
  private static final class Stop extends RuntimeException {
    Stop() {
      super(null, null, false, false);
    }
  }

  private void optimize() {
    int d = space.dimensions();
    double[] lower = new double[d];
    double[] upper = new double[d];
    double[] sigma = new double[d];
    java.util.Arrays.fill(upper, 1);
    java.util.Arrays.fill(sigma, 0.3);
    try {
      for (int restart = 0; restart < MAX_RESTARTS && asked < budget; restart++) {
        double[] start = new double[d];
        for (int i = 0; i < d; i++) {
          start[i] = restart == 0 ? 0.5 : random.nextDouble();
        }
        CMAESOptimizer cmaes = new CMAESOptimizer(Integer.MAX_VALUE, Double.POSITIVE_INFINITY, true, 0, 0, random,
            false, null);
        try {
          cmaes.optimize(new MaxEval((int) Math.min(Integer.MAX_VALUE, 50 * budget)), new MaxIter(Integer.MAX_VALUE),
              new ObjectiveFunction(this::objective), GoalType.MAXIMIZE, new InitialGuess(start),
              new SimpleBounds(lower, upper), new CMAESOptimizer.Sigma(sigma),
              new CMAESOptimizer.PopulationSize(4 + (int) (3 * Math.log(d))));
        } catch (TooManyEvaluationsException e) {
          // this restart spent its evaluations on points of trials already run; start elsewhere
        }
      }
    } catch (Stop e) {
      // the budget is spent, or the sampler closed
    } finally {
      done = true;
    }
  }

  /** The objective at a point: a known trial's result, else a new trial's, run by whoever asks. */
  private double objective(double[] point) {
    Map<String, String> trial = space.at(point);
    Double known = results.get(trial);
    if (known != null) {
      return known;
    }
    if (asked >= budget || done) {
      throw new Stop();
    }
    try {
      asks.put(trial);
      asked++;
      double value = tells.take();
      double objective = Double.isNaN(value) ? FAILED : value;
      results.put(trial, objective);
      return objective;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Stop();
    }
  }

  @Override
  public List<Map<String, String>> ask(int max) {
    if (max <= 0) {
      return List.of();
    }
    if (pending != null) {
      throw new IllegalStateException("tell the result of " + pending + " before asking for another trial");
    }
    try {
      while (!done) {
        Map<String, String> trial = asks.poll(100, TimeUnit.MILLISECONDS);
        if (trial != null) {
          pending = trial;
          return List.of(trial);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return List.of();
  }

  @Override
  public void tell(Map<String, String> trial, double objective) {
    if (!trial.equals(pending)) {
      throw new IllegalArgumentException("the cmaes sampler waits for the result of " + pending + ", got " + trial);
    }
    pending = null;
    try {
      tells.put(objective);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String name() {
    return "cmaes";
  }

  @Override
  public void close() {
    done = true;
    optimizer.interrupt();
  }
}
