package io.sparkinfer.jobs.sweep;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.tune.Axis;
import io.sparkinfer.tune.Sampler;
import io.sparkinfer.tune.Space;
import java.io.PrintStream;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A study's driver loop (Optuna's vocabulary): asks the sampler for trials, runs them where the GPUs are
 * ({@link TrialExecutor}, a Spark job in the sweep), tells the sampler each one's objective (tokens/s; NaN when
 * it did not finish), and prints a line per trial. Apart from the sampler:
 *
 * <ul>
 *   <li>Out of memory backs off: a trial whose batch ran out of memory is followed by one with the next smaller
 *       batch of the batch-size axis (with its other values), and trials with the same other values and a batch
 *       at least as large are recorded as {@code oom} without running.
 *   <li>Pruning: each trial is given the finished trials' (tokens/s, latency); its runner stops it after the first
 *       repeat when one of them is better in both ({@link TrialRunner#PRUNE_MARGIN}).
 *   <li>The reference configuration runs first, once, when asked for; its greedy tokens are what each trial's are
 *       compared with.
 * </ul>
 */
final class Study {

  /** Runs trials, independent of each other, possibly in parallel; one result per spec, in order. */
  interface TrialExecutor {
    List<TrialResult> run(List<TrialSpec> specs);
  }

  static final String BATCH = "batch-size";

  private final SweepOptions options;
  private final Sampler sampler;
  private final TrialExecutor executor;
  private final PrintStream out;
  private final int parallel;
  private final Space space;
  private final Deque<Map<String, String>> backoffs = new ArrayDeque<>();
  /** Per setting of the other axes, the smallest batch that ran out of memory. */
  private final Map<Map<String, String>, Integer> oomFloor = new HashMap<>();
  private final Set<Map<String, String>> asked = new HashSet<>();
  private final Map<Map<String, String>, TrialResult> byParams = new HashMap<>();
  private final List<TrialResult> results = new ArrayList<>();
  private final long startNanos = System.nanoTime();
  private int nextTrial = 1;

  Study(SweepOptions options, Sampler sampler, TrialExecutor executor, int parallel, PrintStream out) {
    this.options = options;
    this.sampler = sampler;
    this.executor = executor;
    this.parallel = Math.max(1, parallel);
    this.out = out;
    this.space = options.space();
  }

  /** The reference run: the study's starting values at the reference precision, its axes' first values otherwise. */
  TrialResult reference() {
    Map<String, String> params = new LinkedHashMap<>();
    for (Axis a : space.axes()) {
      params.put(a.name(), a.grid().get(0));
    }
    params.put("precision", options.referencePrecision().label());
    params.put(BATCH, Integer.toString(options.get(SweepOptions.AGREEMENT_PROMPTS))); // its prompts in one batch
    params.put(SweepOptions.THREADS, "1");
    params.put(SweepOptions.OUTPUT_LEN, Integer.toString(maxOutputLen()));
    TrialSpec spec = spec(0, params, List.of(), 1);
    out.printf(Locale.ROOT, "sweep: reference run (%s) for the agreement check%n", params.get("precision"));
    TrialResult r = executor.run(List.of(spec)).get(0);
    if (!r.ok()) {
      out.printf(Locale.ROOT, "sweep: the reference run %s (%s); trials are not compared%n", r.status(), r.error());
    }
    return r;
  }

  /** Runs every trial the sampler asks for (and the back-offs); returns the results in trial order. */
  List<TrialResult> run() {
    long expected = expectedTrials();
    while (true) {
      List<Map<String, String>> round = new ArrayList<>();
      while (!backoffs.isEmpty() && round.size() < parallel) {
        round.add(backoffs.poll());
      }
      List<Map<String, String>> fromSampler = round.size() < parallel ? sampler.ask(parallel - round.size()) : List.of();
      for (Map<String, String> params : fromSampler) {
        TrialResult known = byParams.get(params);
        if (known != null) {
          sampler.tell(params, objective(known)); // it ran already, as a back-off: no second row
        } else {
          round.add(params);
        }
      }
      if (round.isEmpty()) {
        if (fromSampler.isEmpty()) {
          break;
        }
        continue;
      }
      List<TrialSpec> toRun = new ArrayList<>();
      List<TrialResult> skipped = new ArrayList<>();
      for (Map<String, String> params : round) {
        asked.add(params);
        Integer floor = oomFloor.get(others(params));
        Integer batch = batchOf(params);
        if (floor != null && batch != null && batch >= floor) {
          skipped.add(TrialResult.notRun(spec(nextTrial++, params, List.of(), 0), SweepTables.OOM,
              "skipped: batch " + floor + " ran out of memory with these settings", System.currentTimeMillis(), 0, null,
              null));
        } else {
          toRun.add(spec(nextTrial++, params, finishedPoints(), options.get(SweepOptions.REPEATS)));
        }
      }
      List<TrialResult> done = new ArrayList<>(skipped);
      if (!toRun.isEmpty()) {
        done.addAll(executor.run(toRun));
      }
      done.sort(java.util.Comparator.comparingInt(TrialResult::trial));
      for (TrialResult r : done) {
        results.add(r);
        byParams.put(r.params(), r);
        if (fromSampler.contains(r.params())) {
          sampler.tell(r.params(), objective(r));
        }
        if (SweepTables.OOM.equals(r.status())) {
          backOff(r.params());
        }
        progress(r, expected);
      }
    }
    return List.copyOf(results);
  }

  /** What the sampler maximizes: tokens/s of an ok trial, NaN otherwise. */
  private static double objective(TrialResult r) {
    return r.ok() ? r.meanTokensPerS() : Double.NaN;
  }

  /** Records the out-of-memory floor and queues the next smaller batch of the same settings, if untried. */
  private void backOff(Map<String, String> params) {
    Integer batch = batchOf(params);
    Axis axis = space.axis(BATCH);
    if (batch == null || axis == null) {
      return;
    }
    Map<String, String> key = others(params);
    oomFloor.merge(key, batch, Math::min);
    Integer smaller = null;
    for (String v : axis.grid()) {
      int b = Integer.parseInt(v);
      if (b < batch && (smaller == null || b > smaller)) {
        smaller = b;
      }
    }
    if (smaller == null && batch > 1) {
      smaller = Math.max(1, batch / 2);
    }
    if (smaller != null) {
      Map<String, String> next = new LinkedHashMap<>(params);
      next.put(BATCH, Integer.toString(smaller));
      if (!asked.contains(next) && !backoffs.contains(next)) {
        backoffs.add(next);
      }
    }
  }

  private static Map<String, String> others(Map<String, String> params) {
    Map<String, String> k = new HashMap<>(params);
    k.remove(BATCH);
    return k;
  }

  private static Integer batchOf(Map<String, String> params) {
    String b = params.get(BATCH);
    if (b == null) {
      return null;
    }
    return b.equalsIgnoreCase("auto") ? null : Integer.parseInt(b);
  }

  /** (tokens/s, latency) of the finished ok trials, when pruning is on. */
  private List<double[]> finishedPoints() {
    if (!options.get(SweepOptions.PRUNE)) {
      return List.of();
    }
    List<double[]> points = new ArrayList<>();
    for (TrialResult r : results) {
      if (r.ok() && !Double.isNaN(r.latencyObjective())) {
        points.add(new double[] {r.meanTokensPerS(), r.latencyObjective()});
      }
    }
    return points;
  }

  /** The spec of a trial: the study's engine values with the trial's engine axes applied. */
  TrialSpec spec(int trial, Map<String, String> params, List<double[]> pruneAgainst, int repeats) {
    OptionValues engine = options.values();
    for (Map.Entry<String, String> p : params.entrySet()) {
      Option<?> o = EngineOptions.GROUP.options().stream().filter(x -> x.name().equals(p.getKey())).findFirst()
          .orElse(null);
      if (o != null) {
        engine = engine.withText(o, p.getValue());
      }
    }
    // Out of memory is a trial's result: its batch is not retried smaller behind the trial's back.
    engine = engine.with(io.sparkinfer.generate.GeneratorOptions.OOM_RETRY, false);
    // Decode threads: the threads axis (which sets the layout's threads), else the layout's.
    Layout layout = engine.get(EngineOptions.LAYOUT);
    int threads = layout.auto() ? 1 : layout.threads();
    if (params.containsKey(SweepOptions.THREADS)) {
      threads = Integer.parseInt(params.get(SweepOptions.THREADS));
      if (!layout.auto()) {
        engine = engine.with(EngineOptions.LAYOUT, new Layout(layout.replicas(), layout.tp(), layout.pp(), threads,
            false));
      }
    }
    int generators = threads * (layout.auto() ? 1 : layout.replicas());
    int promptLen = Integer.parseInt(params.getOrDefault(SweepOptions.PROMPT_LEN, "128"));
    int maxNew = Integer.parseInt(params.getOrDefault(SweepOptions.OUTPUT_LEN,
        Integer.toString(options.get(SweepOptions.MAX_NEW_TOKENS))));
    return new TrialSpec(trial, params, engine, threads, prompts(engine, generators), promptLen, maxNew, repeats,
        options.get(SweepOptions.AGREEMENT_PROMPTS), pruneAgainst);
  }

  /** Prompts per repeat: --sample, or two full batches on every generator ({@link SweepOptions#SAMPLE}). */
  private int prompts(OptionValues engine, int generators) {
    int sample = options.get(SweepOptions.SAMPLE);
    if (sample > 0) {
      return sample;
    }
    int batch = engine.get(io.sparkinfer.generate.GeneratorOptions.BATCH_SIZE);
    return 2 * (batch > 0 ? batch : 32) * generators;
  }

  private int maxOutputLen() {
    Axis a = space.axis(SweepOptions.OUTPUT_LEN);
    if (a == null) {
      return options.get(SweepOptions.MAX_NEW_TOKENS);
    }
    return a.grid().stream().mapToInt(Integer::parseInt).max().orElse(options.get(SweepOptions.MAX_NEW_TOKENS));
  }

  /** Trials the study will run, when the sampler says (a grid, or the budget); 0 when unknown. */
  private long expectedTrials() {
    long budget = options.get(SweepOptions.TRIALS);
    if (!sampler.name().equals("grid")) {
      return budget;
    }
    long grid = space.gridSize();
    return budget > 0 ? Math.min(budget, grid) : grid;
  }

  private void progress(TrialResult r, long expected) {
    double elapsed = (System.nanoTime() - startNanos) / 1e9;
    int done = results.size();
    String eta = expected > done ? duration(elapsed / done * (expected - done)) : "-";
    TrialResult best = null;
    for (TrialResult x : results) {
      if (x.ok() && (best == null || x.meanTokensPerS() > best.meanTokensPerS())) {
        best = x;
      }
    }
    String outcome = r.ok() ? String.format(Locale.ROOT, "%.1f tokens/s, p99 %.2f ms/token", r.meanTokensPerS(),
        r.latencyObjective()) : r.status() + (r.error() == null ? "" : " (" + firstLine(r.error()) + ")");
    out.printf(Locale.ROOT, "sweep: trial %d%s %s: %s | best so far: %s | elapsed %s, ETA %s%n", r.trial(),
        expected > 0 ? "/" + expected : "", r.params(), outcome,
        best == null ? "-" : String.format(Locale.ROOT, "trial %d (%.1f tokens/s)", best.trial(), best.meanTokensPerS()),
        duration(elapsed), eta);
  }

  static String firstLine(String s) {
    int nl = s.indexOf('\n');
    String line = nl < 0 ? s : s.substring(0, nl);
    return line.length() > 160 ? line.substring(0, 160) + "..." : line;
  }

  static String duration(double seconds) {
    long s = Math.round(seconds);
    return s >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60)
        : s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
  }
}
