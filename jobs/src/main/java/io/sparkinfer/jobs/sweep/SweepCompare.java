package io.sparkinfer.jobs.sweep;

import static org.apache.spark.sql.functions.col;

import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.tune.Significance;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import scala.collection.JavaConverters;

/**
 * {@code submit/sweep.sh compare}: an A/B comparison of two studies in one sweep_trials table. Trials are
 * matched by their parameters; for each configuration that ran in both, the change in mean tokens/s is tested
 * over the repeats with Welch's t-test (Mann-Whitney U beside it, {@link Significance}). The baseline defaults to
 * the study before the candidate with the same model (by weights hash) and GPU. Exit status
 * {@link #EXIT_REGRESSION} when a configuration got significantly slower by more than {@code --threshold}, so a
 * nightly job can alert.
 */
public final class SweepCompare {

  public static final int EXIT_REGRESSION = 3;

  static final Option<String> OUTPUT = SweepCommandLine.OUTPUT;
  static final Option<String> BASELINE = Option.text("baseline", "RUN_ID|previous", "previous",
      "the study to compare against; previous: the last study before the candidate with the same model and GPU");
  static final Option<String> CANDIDATE = Option.text("candidate", "RUN_ID|latest", "latest",
      "the study under test; latest: the newest in the table");
  static final Option<Double> ALPHA = Option.number("alpha", "A", 0.05,
      "significance level of Welch's t-test: the false alarm rate on unchanged configurations").between(1e-6, 0.5);
  static final Option<Double> THRESHOLD = Option.number("threshold", "F", 0.05,
      "a regression is a significant drop of more than this fraction of tokens/s").between(0, 1);
  static final Option<Boolean> HELP = SweepCommandLine.HELP;

  static final OptionTable TABLE = new OptionTable(new OptionTable.Group("compare options",
      List.of(OUTPUT, BASELINE, CANDIDATE, ALPHA, THRESHOLD, HELP)));

  private SweepCompare() {}

  /** One configuration's comparison. */
  record Line(Map<String, String> params, Significance.Comparison comparison) {}

  /** The two studies compared and each shared configuration's result. */
  record Result(String baseline, String candidate, List<Line> lines, int onlyInBaseline, int onlyInCandidate) {

    List<Line> regressions(double threshold) {
      return lines.stream().filter(l -> l.comparison().regression(threshold)).toList();
    }

    String table(double threshold) {
      StringBuilder sb = new StringBuilder();
      sb.append(String.format(Locale.ROOT, "sweep compare: %s (baseline) -> %s (candidate)%n", baseline, candidate));
      sb.append(String.format(Locale.ROOT, "  %-48s %12s %12s %8s %8s %8s  %s%n", "params", "tokens/s A", "tokens/s B",
          "change", "Welch p", "MW p", "verdict"));
      for (Line l : lines) {
        Significance.Comparison c = l.comparison();
        String verdict = c.regression(threshold) ? "REGRESSION" : c.significant() ? (c.change() > 0 ? "faster"
            : "slower (within threshold)") : "no significant change";
        sb.append(String.format(Locale.ROOT, "  %-48s %12.1f %12.1f %+7.1f%% %8.4f %8.4f  %s%n", l.params(),
            c.meanBefore(), c.meanAfter(), 100 * c.change(), c.welchP(), c.mannWhitneyP(), verdict));
      }
      if (onlyInBaseline + onlyInCandidate > 0) {
        sb.append(String.format(Locale.ROOT, "  not compared: %d configuration(s) only in the baseline, %d only in the "
            + "candidate (or not ok in one)%n", onlyInBaseline, onlyInCandidate));
      }
      return sb.toString();
    }
  }

  /** The command line; returns 0, {@link #EXIT_REGRESSION}, 1 (failed) or 2 (bad options). */
  static int run(String[] args, PrintStream out, PrintStream err) {
    SweepCommandLine.Parsed parsed = SweepCommandLine.parse(TABLE, args,
        "submit/sweep.sh compare --output DIR [--baseline RUN_ID] [--candidate RUN_ID]",
        "Compares tokens/s of the configurations two studies share, with a significance test over repeats.", out, err);
    if (parsed.done()) {
      return parsed.exitStatus();
    }
    OptionValues o = parsed.options();
    SparkSession spark = SparkSession.builder().appName("sparkinfer sweep compare").getOrCreate();
    try {
      Result r = compare(spark, o.get(OUTPUT), o.get(BASELINE), o.get(CANDIDATE), o.get(ALPHA));
      out.print(r.table(o.get(THRESHOLD)));
      List<Line> regressions = r.regressions(o.get(THRESHOLD));
      if (!regressions.isEmpty()) {
        err.printf(Locale.ROOT, "sweep compare: %d configuration(s) got significantly slower by more than %.0f%%%n",
            regressions.size(), 100 * o.get(THRESHOLD));
        return EXIT_REGRESSION;
      }
      return 0;
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      return SweepJob.EXIT_USAGE;
    } catch (RuntimeException e) {
      err.println("error: the comparison failed: " + e);
      return SweepJob.EXIT_FAILED;
    } finally {
      spark.stop();
    }
  }

  /** Compares two studies of the table at {@code output}. */
  static Result compare(SparkSession spark, String output, String baseline, String candidate, double alpha) {
    Dataset<Row> runs = spark.read().parquet(output + "/" + SweepTables.RUNS_DIR)
        .select("run_id", "started_at", "model_sha256", "gpu_name").orderBy(col("started_at"));
    List<Row> all = runs.collectAsList();
    if (all.size() < 2 && (baseline.equals("previous") || candidate.equals("latest"))) {
      throw new IllegalArgumentException(output + " holds " + all.size() + " studies; a comparison needs two");
    }
    Row cand = candidate.equals("latest") ? all.get(all.size() - 1) : find(all, candidate, output);
    Row base;
    if (baseline.equals("previous")) {
      base = null;
      for (Row r : all) {
        if (r.getTimestamp(1).before(cand.getTimestamp(1)) && same(r, cand, 2) && same(r, cand, 3)) {
          base = r; // the last one before the candidate
        }
      }
      if (base == null) {
        throw new IllegalArgumentException("no study before " + cand.getString(0) + " with the same model and GPU in "
            + output);
      }
    } else {
      base = find(all, baseline, output);
    }
    Dataset<Row> trials = spark.read().parquet(output).where(col("status").equalTo(SweepTables.OK));
    Map<String, Row> a = byParams(trials.where(col("run_id").equalTo(base.getString(0))).collectAsList());
    Map<String, Row> b = byParams(trials.where(col("run_id").equalTo(cand.getString(0))).collectAsList());
    List<Line> lines = new ArrayList<>();
    for (Map.Entry<String, Row> e : a.entrySet()) {
      Row rb = b.get(e.getKey());
      if (rb != null) {
        lines.add(new Line(new TreeMap<>(e.getValue().<String, String>getJavaMap(e.getValue().fieldIndex("params"))),
            Significance.compare(samples(e.getValue()), samples(rb), alpha)));
      }
    }
    int onlyA = (int) a.keySet().stream().filter(k -> !b.containsKey(k)).count();
    int onlyB = (int) b.keySet().stream().filter(k -> !a.containsKey(k)).count();
    return new Result(base.getString(0), cand.getString(0), lines, onlyA, onlyB);
  }

  private static Row find(List<Row> runs, String id, String output) {
    return runs.stream().filter(r -> r.getString(0).equals(id)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no study " + id + " in " + output + "/" + SweepTables.RUNS_DIR));
  }

  private static boolean same(Row a, Row b, int i) {
    return a.isNullAt(i) ? b.isNullAt(i) : !b.isNullAt(i) && a.get(i).equals(b.get(i));
  }

  private static Map<String, Row> byParams(List<Row> rows) {
    Map<String, Row> out = new LinkedHashMap<>();
    for (Row r : rows) {
      out.put(new TreeMap<>(r.<String, String>getJavaMap(r.fieldIndex("params"))).toString(), r);
    }
    return out;
  }

  private static double[] samples(Row r) {
    List<Object> list = JavaConverters.seqAsJavaList(r.getSeq(r.fieldIndex("tokens_per_s_samples")));
    return list.stream().mapToDouble(x -> ((Number) x).doubleValue()).toArray();
  }
}
