package io.sparkinfer.jobs.sweep;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.length;
import static org.apache.spark.sql.functions.rand;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.jobs.InputTable;
import io.sparkinfer.jobs.JobOptions.InputFormat;
import io.sparkinfer.jobs.ModelLocation;
import io.sparkinfer.jobs.ProjectVersion;
import io.sparkinfer.jobs.Tables;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.tune.Axis;
import io.sparkinfer.tune.Pareto;
import io.sparkinfer.tune.Sampler;
import io.sparkinfer.tune.Samplers;
import io.sparkinfer.tune.Summary;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tuning job ({@code submit/sweep.sh}): a study of trials over a search space of engine settings and
 * workload shapes, each timed where the GPUs are, with the results appended to the {@code sweep_trials} table
 * ({@link SweepTables#TRIALS}), the study's row to {@code _sweep_runs}, a report (charts, {@code index.html})
 * and {@code best.properties} (the best configuration under the constraints, as {@code spark.sparkinfer.*}
 * keys that {@code submit/infer.sh --properties-file} takes). {@code sweep.sh compare} compares two studies
 * ({@link SweepCompare}).
 */
public final class SweepJob {

  private static final Logger LOG = LoggerFactory.getLogger(SweepJob.class);

  public static final int EXIT_USAGE = 2;
  public static final int EXIT_FAILED = 1;

  private SweepJob() {}

  public static void main(String[] args) {
    int status = run(args, System.out, System.err);
    if (status != 0) {
      System.exit(status);
    }
  }

  /** The command line: a study, or {@code compare ...}; returns the exit status. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length > 0 && args[0].equals("compare")) {
      return SweepCompare.run(Arrays.copyOfRange(args, 1, args.length), out, err);
    }
    if (args.length > 0 && args[0].equals("report")) {
      return SweepReportCommand.run(Arrays.copyOfRange(args, 1, args.length), out, err);
    }
    SweepOptions options;
    try {
      if (SweepOptions.wantsHelp(args)) {
        out.print(SweepOptions.usage());
        return 0;
      }
      SparkConf conf = new SparkConf();
      options = SweepOptions.parse(args, key -> conf.contains(key) ? conf.get(key) : null, System::getenv);
      if (ModelLocation.isLocal(options.model())) {
        ModelLocation.check(options.model(), new Configuration(false), null);
      }
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      err.println("(run with --help for the options)");
      return EXIT_USAGE;
    }
    SparkSession spark = SparkSession.builder().appName("sparkinfer sweep").getOrCreate();
    try {
      StudyResult result = run(spark, options, out);
      out.print(result.summary());
      return 0;
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      return EXIT_USAGE;
    } catch (RuntimeException e) {
      err.println("error: the sweep failed: " + e);
      LOG.error("the sweep failed", e);
      return EXIT_FAILED;
    } finally {
      spark.stop();
    }
  }

  /** What a study did: its trial rows, best trial, and where it wrote them. */
  record StudyResult(String runId, List<Row> trials, Row best, Report report) {

    /** The summary table printed at the end: trials by tokens/s, then the best under the constraints. */
    String summary() {
      StringBuilder sb = new StringBuilder();
      sb.append(String.format(Locale.ROOT, "sparkinfer sweep: study %s, %d trials%n", runId, trials.size()));
      sb.append(String.format(Locale.ROOT, "  %-5s %-8s %-44s %22s %12s %8s %6s %6s%n", "trial", "status", "params",
          "tokens/s (95% CI)", "p99 ms/tok", "agree", "pareto", "fits"));
      List<Row> sorted = new ArrayList<>(trials);
      sorted.sort(Comparator.comparing((Row r) -> r.isNullAt(r.fieldIndex("tokens_per_s")) ? -1
          : r.getDouble(r.fieldIndex("tokens_per_s"))).reversed());
      for (Row r : sorted) {
        sb.append(String.format(Locale.ROOT, "  %-5d %-8s %-44s %22s %12s %8s %6s %6s%n", r.getInt(r.fieldIndex("trial")),
            r.getString(r.fieldIndex("status")), r.getJavaMap(r.fieldIndex("params")),
            r.isNullAt(r.fieldIndex("tokens_per_s")) ? "-" : String.format(Locale.ROOT, "%.1f +- %.1f",
                r.getDouble(r.fieldIndex("tokens_per_s")), nan(r, "tokens_per_s_ci95")),
            r.isNullAt(r.fieldIndex("token_latency_p99_ms")) ? "-"
                : String.format(Locale.ROOT, "%.2f", r.getDouble(r.fieldIndex("token_latency_p99_ms"))),
            r.isNullAt(r.fieldIndex("agreement_identical")) ? "-"
                : String.format(Locale.ROOT, "%.2f", r.getDouble(r.fieldIndex("agreement_identical"))),
            r.getBoolean(r.fieldIndex("pareto")) ? "yes" : "", r.getBoolean(r.fieldIndex("satisfies_constraints"))
                ? "yes" : "no"));
      }
      if (best != null) {
        sb.append(String.format(Locale.ROOT, "  best under the constraints: trial %d %s, %.1f tokens/s%n",
            best.getInt(best.fieldIndex("trial")), best.getJavaMap(best.fieldIndex("params")),
            best.getDouble(best.fieldIndex("tokens_per_s"))));
        sb.append("  best.properties: ").append(report.bestProperties()).append(" (submit/infer.sh --properties-file it)\n");
      } else {
        sb.append("  no trial ran to the end within the constraints\n");
      }
      sb.append("  report: ").append(report.describe()).append('\n');
      return sb.toString();
    }

    private static double nan(Row r, String column) {
      return r.isNullAt(r.fieldIndex(column)) ? Double.NaN : r.getDouble(r.fieldIndex(column));
    }
  }

  /** Runs a study on {@code spark} and writes its tables, report and best configuration. */
  public static StudyResult run(SparkSession spark, SweepOptions o, PrintStream out) {
    Instant started = Instant.now();
    String runId = o.get(SweepOptions.RUN_ID) != null ? o.get(SweepOptions.RUN_ID) : newRunId(started);
    String date = DateTimeFormatter.ISO_LOCAL_DATE.withZone(ZoneOffset.UTC).format(started);
    Configuration hadoopConf = spark.sparkContext().hadoopConfiguration();
    ModelLocation model = ModelLocation.check(o.model(), hadoopConf, null);
    Workload workload = workload(spark, o, hadoopConf);
    int parallel = parallelism(spark, o);
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    TrialRunner runner = new TrialRunner(model, workload);
    Study.TrialExecutor executor = specs -> {
      spark.sparkContext().setJobDescription("sparkinfer sweep " + runId + ": trials "
          + specs.stream().map(s -> Integer.toString(s.trial())).toList());
      return jsc.parallelize(specs, specs.size()).map(runner).collect();
    };
    out.printf(Locale.ROOT, "sweep: study %s: %s sampler over %s, %s, %d trial(s) at a time%n", runId,
        o.get(SweepOptions.SAMPLER), spaceText(o), workload.describe(promptLens(o)), parallel);
    List<TrialResult> results;
    TrialResult reference = null;
    try (Sampler sampler = Samplers.create(o.get(SweepOptions.SAMPLER), o.space(), o.get(SweepOptions.TRIALS),
        o.get(SweepOptions.SEED))) {
      Study study = new Study(o, sampler, executor, parallel, out);
      if (o.referencePrecision() != null) {
        reference = study.reference();
      }
      results = study.run();
    } finally {
      spark.sparkContext().setJobDescription(null);
    }
    List<Row> rows = rows(o, runId, date, results, reference, model.uri());
    Row best = best(rows);
    spark.createDataFrame(rows, SweepTables.TRIALS).coalesce(1).write().mode(SaveMode.Append).partitionBy("date")
        .parquet(o.output());
    Instant finished = Instant.now();
    spark.createDataFrame(List.of(runRow(o, runId, date, started, finished, results, best, workload, model.uri(),
        spark.sparkContext().master())), SweepTables.RUNS).coalesce(1).write().mode(SaveMode.Append)
        .partitionBy("date").parquet(o.output() + "/" + SweepTables.RUNS_DIR);
    Report report = writeReport(rows, best, runId, o.output() + "/" + SweepTables.REPORT_DIR + "/" + runId, hadoopConf);
    if (!report.charts()) {
      out.println("sweep: warning: " + report.describe());
    }
    return new StudyResult(runId, rows, best, report);
  }

  /** A seeded sample of --input, or synthetic prompts. */
  private static Workload workload(SparkSession spark, SweepOptions o, Configuration hadoopConf) {
    String input = o.get(SweepOptions.INPUT);
    if (input == null) {
      return Workload.synthetic(0, o.get(SweepOptions.SEED));
    }
    int n = o.get(SweepOptions.SAMPLE) > 0 ? o.get(SweepOptions.SAMPLE) : maxPrompts(o);
    if (o.space().axis(SweepOptions.PROMPT_LEN) != null) {
      throw new IllegalArgumentException("--prompt-lens makes synthetic prompts; it does not go with --input");
    }
    List<String> texts = new ArrayList<>();
    for (Row r : InputTable.read(spark, input, InputFormat.AUTO, Tables.ID, Tables.PROMPT, hadoopConf)
        .where(col(Tables.ERROR_CODE).isNull().and(col(Tables.PROMPT).isNotNull())
            .and(length(col(Tables.PROMPT)).gt(0)))
        .orderBy(rand(o.get(SweepOptions.SEED))).limit(n).collectAsList()) {
      texts.add(r.getString(1));
    }
    return Workload.sample(texts);
  }

  /** The most prompts a trial of the space takes with --sample auto: two batches of the largest on every thread. */
  static int maxPrompts(SweepOptions o) {
    int batch = largest(o.space().axis(Study.BATCH), o.values().get(io.sparkinfer.generate.GeneratorOptions.BATCH_SIZE));
    int threads = largest(o.space().axis(SweepOptions.THREADS), 1);
    return 2 * (batch > 0 ? batch : 32) * threads;
  }

  private static int largest(Axis axis, int fallback) {
    if (axis == null) {
      return fallback;
    }
    return axis.isRange() ? (int) axis.hi()
        : axis.values().stream().filter(v -> v.matches("\\d+")).mapToInt(Integer::parseInt).max().orElse(fallback);
  }

  /** Trials at once: as asked, else one per GPU slot when Spark schedules GPUs, else one. */
  static int parallelism(SparkSession spark, SweepOptions o) {
    int asked = o.get(SweepOptions.PARALLEL);
    if (asked > 0) {
      return asked;
    }
    SparkConf conf = spark.sparkContext().getConf();
    return conf.contains("spark.task.resource.gpu.amount") ? Math.max(1, spark.sparkContext().defaultParallelism()) : 1;
  }

  /** The trials' rows: metrics, agreement with the reference, Pareto front and constraints. */
  static List<Row> rows(SweepOptions o, String runId, String date, List<TrialResult> results, TrialResult reference,
      String model) {
    List<double[]> points = new ArrayList<>();
    for (TrialResult r : results) {
      points.add(r.ok() ? new double[] {r.meanTokensPerS(), r.latencyObjective()} : new double[] {Double.NaN, Double.NaN});
    }
    boolean[] front = Pareto.front(points, Pareto.Direction.MAXIMIZE, Pareto.Direction.MINIMIZE);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < results.size(); i++) {
      TrialResult r = results.get(i);
      double[] agreement = reference != null && reference.ok() && r.ok()
          ? agreement(reference.agreementIds(), r.agreementIds()) : null;
      Summary s = r.tokensPerS().length > 0 ? Summary.of(r.tokensPerS()) : null;
      Object samples = scala.collection.immutable.ArraySeq$.MODULE$.unsafeWrapArray(r.tokensPerS());
      rows.add(new org.apache.spark.sql.catalyst.expressions.GenericRowWithSchema(new Object[] {
          runId, r.trial(), new Timestamp(r.startedAtMillis()), r.wallSeconds(), model, r.modelSha256(),
          r.gpu() == null ? null : r.gpu().name(), r.gpu() == null ? 0 : r.gpu().count(), r.device(), r.executorId(),
          r.precision() != null ? r.precision() : r.params().get("precision"), r.backend(), layoutOf(r.engineOptions(), r.threads()).label(),
          r.threads(), r.batchSize() != null ? r.batchSize() : intOrNull(r.params().get(Study.BATCH)), r.promptLen(),
          r.maxNewTokens(), scalaMap(r.params()), scalaMap(r.engineOptions()), r.tokensPerS().length,
          s == null ? null : s.mean(), s == null ? null : s.stddev(), s == null || Double.isNaN(s.ci95()) ? null : s.ci95(),
          samples, r.promptTokensPerS(),
          at(r.ttftMs(), 0), at(r.ttftMs(), 1), at(r.tokenLatencyMs(), 0), at(r.tokenLatencyMs(), 1),
          at(r.latencyMs(), 0), at(r.latencyMs(), 1), r.peakGpuMemMb(), r.gpuUtilMean(), r.gpuMemMeanMb(),
          agreement == null ? null : agreement[0], agreement == null ? null : agreement[1],
          agreement == null ? null : agreement[2], front[i], r.ok() && satisfies(o, r), r.status(), r.error(),
          ProjectVersion.get(), date}, SweepTables.TRIALS));
    }
    return rows;
  }

  /** Identical rate, first-token rate and mean common prefix of a trial's greedy tokens against the reference's. */
  static double[] agreement(List<long[]> reference, List<long[]> trial) {
    int n = Math.min(reference.size(), trial.size());
    if (n == 0) {
      return null;
    }
    double identical = 0;
    double first = 0;
    double prefix = 0;
    for (int i = 0; i < n; i++) {
      long[] a = reference.get(i);
      long[] b = trial.get(i);
      int len = Math.min(a.length, b.length);
      int common = 0;
      while (common < len && a[common] == b[common]) {
        common++;
      }
      identical += common == len ? 1 : 0;
      first += len > 0 && a[0] == b[0] ? 1 : 0;
      prefix += common;
    }
    return new double[] {identical / n, first / n, prefix / n};
  }

  static boolean satisfies(SweepOptions o, TrialResult r) {
    double tokenBudget = o.get(SweepOptions.LATENCY_BUDGET_MS);
    double requestBudget = o.get(SweepOptions.REQUEST_BUDGET_MS);
    double memoryCap = o.get(SweepOptions.MEMORY_CAP_GB);
    if (tokenBudget > 0 && !(r.latencyObjective() <= tokenBudget)) {
      return false;
    }
    if (requestBudget > 0 && !(at(r.latencyMs(), 1) != null && at(r.latencyMs(), 1) <= requestBudget)) {
      return false;
    }
    return !(memoryCap > 0 && r.peakGpuMemMb() != null && r.peakGpuMemMb() > memoryCap * 1024);
  }

  /** The ok trial with the most tokens/s among those within the constraints, or null. */
  static Row best(List<Row> rows) {
    Row best = null;
    for (Row r : rows) {
      if (r.getBoolean(r.fieldIndex("satisfies_constraints")) && SweepTables.OK.equals(r.getString(r.fieldIndex("status")))
          && (best == null || r.getDouble(r.fieldIndex("tokens_per_s")) > best.getDouble(best.fieldIndex("tokens_per_s")))) {
        best = r;
      }
    }
    return best;
  }

  private static Row runRow(SweepOptions o, String runId, String date, Instant started, Instant finished,
      List<TrialResult> results, Row best, Workload workload, String model, String master) {
    TrialResult any = results.stream().filter(r -> r.modelSha256() != null).findFirst().orElse(null);
    TrialResult.Gpu gpu = results.stream().map(TrialResult::gpu).filter(g -> g != null).findFirst().orElse(null);
    long ok = results.stream().filter(TrialResult::ok).count();
    return RowFactory.create(runId, "succeeded", null, Timestamp.from(started), Timestamp.from(finished),
        (finished.toEpochMilli() - started.toEpochMilli()) / 1000.0, model, any == null ? null : any.modelSha256(),
        gpu == null ? null : gpu.name(), gpu == null ? 0 : gpu.count(), gpu == null ? null : gpu.driver(),
        any == null ? null : any.djlVersion(), any == null ? null : any.libtorchVersion(), ProjectVersion.get(),
        spaceText(o), workload.describe(promptLens(o)), o.get(SweepOptions.SAMPLER), o.get(SweepOptions.SEED),
        o.get(SweepOptions.REPEATS), "maximize tokens_per_s, minimize token_latency_p99_ms", o.constraintsText(),
        o.referencePrecision() == null ? null : o.referencePrecision().label(), results.size(), (int) ok,
        best == null ? null : best.getInt(best.fieldIndex("trial")),
        best == null ? null : best.getDouble(best.fieldIndex("tokens_per_s")), master, date);
  }

  /**
   * Where a study's report went: {@code index} ({@code null} when the charts could not be drawn, for
   * {@code chartError}) and {@code bestProperties} ({@code null} when no trial ran within the constraints).
   */
  record Report(String dir, String index, String bestProperties, String chartError, String outputTable,
      String runId) {

    boolean charts() {
      return chartError == null;
    }

    /** One line for the summary: the report's page, or why it is missing and how to draw it later. */
    String describe() {
      if (charts()) {
        return index;
      }
      return "the charts could not be drawn here (" + chartError + "); the tables" + (bestProperties != null
          ? " and best.properties are" : " are") + " written: draw the report on a machine with a full JRE with "
          + "submit/sweep.sh report --output " + outputTable + " --run-id " + runId;
    }
  }

  /**
   * Writes best.properties and the report (charts, index.html) locally, then copies them to {@code reportDir} on
   * the output's file system. Charts need the JRE's font libraries (libfontmanager and its libharfbuzz): where
   * they are missing the report is left out, with the reason, and best.properties is written all the same.
   */
  static Report writeReport(List<Row> rows, Row best, String runId, String reportDir, Configuration hadoopConf) {
    return writeReport(rows, best, runId, reportDir, hadoopConf, SweepReport::write);
  }

  /** What draws a report into a local directory: {@link SweepReport#write}, or a test's stand-in. */
  interface ReportDrawer {
    void draw(List<Row> trials, java.nio.file.Path dir, String title);
  }

  static Report writeReport(List<Row> rows, Row best, String runId, String reportDir, Configuration hadoopConf,
      ReportDrawer drawer) {
    String outputTable = reportDir.substring(0, Math.max(0, reportDir.lastIndexOf("/" + SweepTables.REPORT_DIR + "/")));
    try {
      java.nio.file.Path local = Files.createTempDirectory("sparkinfer-report-" + runId);
      String chartError = null;
      try {
        drawer.draw(rows, local, "sparkinfer sweep " + runId);
      } catch (LinkageError | java.awt.AWTError | java.awt.HeadlessException e) {
        chartError = e.toString();
        LOG.warn("the sweep report's charts could not be drawn", e);
        try (var partial = Files.list(local)) {
          for (java.nio.file.Path f : partial.toList()) {
            Files.delete(f);
          }
        }
      }
      if (best != null) {
        Files.writeString(local.resolve("best.properties"), bestProperties(best, runId), StandardCharsets.UTF_8);
      }
      Path target = new Path(reportDir);
      FileSystem fs = target.getFileSystem(hadoopConf);
      fs.mkdirs(target);
      try (var files = Files.list(local)) {
        for (java.nio.file.Path f : files.toList()) {
          fs.copyFromLocalFile(true, true, new Path(f.toUri()), new Path(target, f.getFileName().toString()));
        }
      }
      Files.deleteIfExists(local);
      return new Report(reportDir, chartError == null ? reportDir + "/" + SweepReport.INDEX_HTML : null,
          best == null ? null : reportDir + "/best.properties", chartError, outputTable.isEmpty() ? "OUTPUT"
          : outputTable, runId);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot write the report to " + reportDir + ": " + e.getMessage(), e);
    }
  }

  /**
   * The best trial as Spark conf defaults for the batch job: every engine option the trial ran with that is not
   * at its default, as {@code spark.sparkinfer.<name>}; axes that are not engine options as comments.
   */
  static String bestProperties(Row best, String runId) {
    StringBuilder sb = new StringBuilder();
    Map<String, String> params = best.getJavaMap(best.fieldIndex("params"));
    Map<String, String> engine = best.getJavaMap(best.fieldIndex("engine_options"));
    sb.append(String.format(Locale.ROOT, "# sparkinfer sweep %s, trial %d: %.1f tokens/s", runId,
        best.getInt(best.fieldIndex("trial")), best.getDouble(best.fieldIndex("tokens_per_s"))));
    if (!best.isNullAt(best.fieldIndex("token_latency_p99_ms"))) {
      sb.append(String.format(Locale.ROOT, ", p99 %.2f ms per token", best.getDouble(best.fieldIndex("token_latency_p99_ms"))));
    }
    sb.append("\n# use: submit/infer.sh --properties-file best.properties --model ... --input ... --output ...\n");
    Map<String, String> keys = new LinkedHashMap<>();
    for (Option<?> opt : EngineOptions.ALL) {
      String v = engine.get(opt.name());
      if (v != null && !v.equals(String.valueOf(opt.defaultText())) && !opt.name().equals("device")) {
        keys.put(opt.name(), v);
      }
    }
    for (Map.Entry<String, String> p : params.entrySet()) {
      if (p.getKey().equals(EngineOptions.LAYOUT.name())) {
        keys.put(p.getKey(), Layout.parse(p.getValue()).label());
      } else if (EngineOptions.ALL.stream().anyMatch(opt -> opt.name().equals(p.getKey()))) {
        keys.put(p.getKey(), p.getValue());
      } else if (p.getKey().equals(SweepOptions.THREADS)) {
        // the job runs decode threads as its layout's
        Layout layout = layoutOf(engine, Integer.parseInt(p.getValue()));
        if (layout.equals(Layout.SINGLE)) {
          keys.remove(EngineOptions.LAYOUT.name());
        } else {
          keys.put(EngineOptions.LAYOUT.name(), layout.label());
        }
      } else {
        sb.append("# ").append(p.getKey()).append('=').append(p.getValue()).append(" (a workload axis, not a job option)\n");
      }
    }
    keys.forEach((k, v) -> sb.append(OptionTable.CONF_PREFIX).append(k).append('=').append(v).append('\n'));
    return sb.toString();
  }

  /** The layout a trial ran: its engine options' layout with the trial's decode threads. */
  static Layout layoutOf(Map<String, String> engineOptions, int threads) {
    String text = engineOptions.get(EngineOptions.LAYOUT.name());
    Layout l = text == null ? Layout.SINGLE : Layout.parse(text);
    return l.auto() ? l : new Layout(l.replicas(), l.tp(), l.pp(), threads, false);
  }

  private static String spaceText(SweepOptions o) {
    List<String> parts = new ArrayList<>();
    for (Axis a : o.space().axes()) {
      parts.add(a.name() + "=" + a.spec());
    }
    return String.join(" ", parts);
  }

  private static List<String> promptLens(SweepOptions o) {
    Axis a = o.space().axis(SweepOptions.PROMPT_LEN);
    return a == null ? List.of("128") : a.grid();
  }

  /** A Scala map for a map column, as rows read from tables hold them (Row.getJavaMap reads Scala maps). */
  private static scala.collection.Map<String, String> scalaMap(Map<String, String> m) {
    return scala.jdk.javaapi.CollectionConverters.asScala(new LinkedHashMap<>(m));
  }

  private static Double at(double[] v, int i) {
    return v == null || Double.isNaN(v[i]) ? null : v[i];
  }

  private static Integer intOrNull(String s) {
    try {
      return s == null ? null : Integer.valueOf(s);
    } catch (NumberFormatException e) {
      return null;
    }
  }

  static String newRunId(Instant now) {
    return DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss", Locale.ROOT).withZone(ZoneOffset.UTC).format(now) + "-"
        + UUID.randomUUID().toString().substring(0, 8);
  }
}
