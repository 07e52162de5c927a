package io.sparkinfer.jobs.sweep;

import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.IntSummaryStatistics;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.function.Function;
import org.apache.spark.sql.Row;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.BitmapEncoder.BitmapFormat;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.XYSeries.XYSeriesRenderStyle;
import org.knowm.xchart.style.Styler.LegendPosition;

/**
 * A study's static report, written from its {@code sweep_trials} rows ({@link SweepTables#TRIALS}):
 * {@value #THROUGHPUT_PNG} (tokens/s against batch size, one series per precision and thread count, CI95 error
 * bars), {@value #PARETO_PNG} (p99 latency against tokens/s, the Pareto front joined by a line) and
 * {@value #INDEX_HTML} (a summary, both charts and a table of every trial; no external resources). The charts are
 * drawn by XChart in memory, so a headless JVM draws them.
 */
public final class SweepReport {

  /** Width of both charts, in pixels. */
  public static final int CHART_WIDTH = 800;
  /** Height of both charts, in pixels. */
  public static final int CHART_HEIGHT = 500;
  /** The throughput chart's file in the report directory. */
  public static final String THROUGHPUT_PNG = "throughput.png";
  /** The latency/throughput chart's file in the report directory. */
  public static final String PARETO_PNG = "pareto.png";
  /** The page's file in the report directory. */
  public static final String INDEX_HTML = "index.html";

  /** Batch sizes spanning more than this factor go on a log2 axis. */
  private static final double LOG_AXIS_SPAN = 8;

  static {
    // XChart draws with AWT; without a display AWT must be told it has none (a setting made elsewhere stays).
    if (System.getProperty("java.awt.headless") == null) {
      System.setProperty("java.awt.headless", "true");
    }
  }

  private SweepReport() {}

  /**
   * Writes the report of {@code trials} (rows with the {@link SweepTables#TRIALS} schema) into {@code reportDir},
   * creating it; each file is written beside its final name and then moved over it.
   *
   * @return the path of {@value #INDEX_HTML}
   * @throws UncheckedIOException when a file cannot be written
   */
  public static Path write(List<Row> trials, Path reportDir, String title) {
    Objects.requireNonNull(title, "the report's title");
    List<Trial> all = trials.stream().map(Trial::of).sorted(Comparator.comparingInt(Trial::trial)).toList();
    try {
      Files.createDirectories(reportDir);
      writeAtomically(reportDir.resolve(THROUGHPUT_PNG),
          out -> BitmapEncoder.saveBitmap(throughputChart(all), out, BitmapFormat.PNG));
      writeAtomically(reportDir.resolve(PARETO_PNG),
          out -> BitmapEncoder.saveBitmap(paretoChart(all), out, BitmapFormat.PNG));
      Path index = reportDir.resolve(INDEX_HTML);
      writeAtomically(index, out -> out.write(ReportPage.html(all, title).getBytes(StandardCharsets.UTF_8)));
      return index;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the sweep report into " + reportDir + ": " + e.getMessage(), e);
    }
  }

  /** Tokens/s against batch size of the ok trials: a series per precision (and per thread count when several). */
  static XYChart throughputChart(List<Trial> all) {
    List<Trial> ok = all.stream().filter(t -> t.ok() && t.tokensPerS() != null && t.batchSize() != null).toList();
    boolean severalThreads = ok.stream().map(Trial::threads).distinct().count() > 1;
    boolean log2 = batchesSpanMoreThan(ok, LOG_AXIS_SPAN);
    XYChart chart = chart("Throughput by batch size", ok.isEmpty(), log2 ? "batch size (log2 scale)" : "batch size",
        "tokens/s");
    chart.getStyler().setErrorBarsColorSeriesColor(true);
    chart.getStyler()
        .setxAxisTickLabelsFormattingFunction(log2 ? SweepReport::powerOfTwoLabel : SweepReport::integerLabel);
    Map<String, List<Trial>> series = new TreeMap<>();
    for (Trial t : ok) {
      series.computeIfAbsent(seriesName(t, severalThreads), k -> new ArrayList<>()).add(t);
    }
    series.forEach((name, trials) -> {
      List<Trial> byBatch = trials.stream().sorted(Comparator.comparingInt(Trial::batchSize)).toList();
      chart.addSeries(name, values(byBatch, t -> log2 ? log2(t.batchSize()) : t.batchSize()),
          values(byBatch, Trial::tokensPerS), values(byBatch, t -> t.ci95() != null ? t.ci95() : 0));
    });
    return chart;
  }

  /**
   * p99 latency (per token, else per request) against tokens/s of the ok trials: the Pareto front joined in
   * latency order, the other trials within the constraints as points, those outside them as a third series.
   */
  static XYChart paretoChart(List<Trial> all) {
    List<Trial> ok = all.stream().filter(t -> t.ok() && t.tokensPerS() != null && t.p99LatencyMs() != null).toList();
    XYChart chart = chart("Latency and throughput", ok.isEmpty(), "p99 latency (ms)", "tokens/s");
    addScatter(chart, "trials", ok.stream().filter(t -> !t.pareto() && t.satisfiesConstraints()).toList());
    addScatter(chart, "outside the constraints",
        ok.stream().filter(t -> !t.pareto() && !t.satisfiesConstraints()).toList());
    List<Trial> front = ok.stream().filter(Trial::pareto).sorted(Comparator.comparingDouble(Trial::p99LatencyMs))
        .toList();
    if (!front.isEmpty()) {
      chart.addSeries("Pareto front", values(front, Trial::p99LatencyMs), values(front, Trial::tokensPerS))
          .setXYSeriesRenderStyle(XYSeriesRenderStyle.Line);
    }
    return chart;
  }

  private static XYChart chart(String title, boolean empty, String xTitle, String yTitle) {
    XYChart chart = new XYChartBuilder().width(CHART_WIDTH).height(CHART_HEIGHT)
        .title(empty ? title + " (no ok trial to plot)" : title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
    chart.getStyler().setLegendPosition(LegendPosition.InsideSE).setChartBackgroundColor(Color.WHITE);
    return chart;
  }

  private static void addScatter(XYChart chart, String name, List<Trial> trials) {
    if (!trials.isEmpty()) {
      XYSeries s = chart.addSeries(name, values(trials, Trial::p99LatencyMs), values(trials, Trial::tokensPerS));
      s.setXYSeriesRenderStyle(XYSeriesRenderStyle.Scatter);
    }
  }

  private static String seriesName(Trial t, boolean withThreads) {
    String precision = t.precision() != null ? t.precision() : "default precision";
    return withThreads ? precision + ", " + t.threads() + (t.threads() == 1 ? " thread" : " threads") : precision;
  }

  private static boolean batchesSpanMoreThan(List<Trial> trials, double factor) {
    IntSummaryStatistics batches = trials.stream().mapToInt(Trial::batchSize).summaryStatistics();
    return batches.getCount() > 0 && batches.getMin() > 0 && (double) batches.getMax() / batches.getMin() > factor;
  }

  private static double[] values(List<Trial> trials, Function<Trial, Number> f) {
    return trials.stream().mapToDouble(t -> f.apply(t).doubleValue()).toArray();
  }

  private static double log2(int v) {
    return Math.log(v) / Math.log(2);
  }

  /** A log2 axis' tick: the batch size at whole powers of two, nothing between them. */
  private static String powerOfTwoLabel(double exponent) {
    return isWhole(exponent) ? String.valueOf(Math.round(Math.pow(2, exponent))) : "";
  }

  /** A linear batch axis' tick: whole batch sizes only. */
  private static String integerLabel(double v) {
    return isWhole(v) ? String.valueOf(Math.round(v)) : "";
  }

  private static boolean isWhole(double v) {
    return Math.abs(v - Math.rint(v)) < 1e-9;
  }

  /** Writes {@code target} through a temporary file beside it, moved over it once complete. */
  private static void writeAtomically(Path target, Content content) throws IOException {
    Path tmp = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".tmp");
    try {
      try (OutputStream out = Files.newOutputStream(tmp)) {
        content.writeTo(out);
      }
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  @FunctionalInterface
  private interface Content {
    void writeTo(OutputStream out) throws IOException;
  }

  /**
   * The columns of a {@code sweep_trials} row that the report shows; metrics are null when absent (and NaN
   * read as absent, as the CI95 of a single repeat is).
   */
  record Trial(int trial, String status, String runId, String model, String gpuName, String date,
      String precision, int threads, Integer batchSize, SortedMap<String, String> params, Double tokensPerS,
      Double ci95, Double tokenLatencyP99Ms, Double latencyP99Ms, Double peakGpuMemMb, Double agreementIdentical,
      Double agreementFirstToken, boolean pareto, boolean satisfiesConstraints, String error) {

    static Trial of(Row r) {
      return new Trial(r.<Integer>getAs("trial"), get(r, "status"), get(r, "run_id"), get(r, "model"),
          get(r, "gpu_name"), text(r, "date"), get(r, "precision"), r.<Integer>getAs("threads"),
          get(r, "batch_size"), params(r), number(r, "tokens_per_s"), number(r, "tokens_per_s_ci95"),
          number(r, "token_latency_p99_ms"), number(r, "latency_p99_ms"), number(r, "peak_gpu_mem_mb"),
          number(r, "agreement_identical"), number(r, "agreement_first_token"), flag(r, "pareto"),
          flag(r, "satisfies_constraints"), get(r, "error"));
    }

    boolean ok() {
      return SweepTables.OK.equals(status);
    }

    /** The p99 latency the Pareto chart plots: per token, or per request where per token is absent. */
    Double p99LatencyMs() {
      return tokenLatencyP99Ms != null ? tokenLatencyP99Ms : latencyP99Ms;
    }

    private static <T> T get(Row r, String column) {
      int i = r.fieldIndex(column);
      return r.isNullAt(i) ? null : r.getAs(i);
    }

    /** A column as text: the date partition reads back from the table as a {@code java.sql.Date}. */
    private static String text(Row r, String column) {
      Object v = get(r, column);
      return v == null ? null : v.toString();
    }

    private static Double number(Row r, String column) {
      Double v = get(r, column);
      return v == null || v.isNaN() ? null : v;
    }

    private static boolean flag(Row r, String column) {
      return Boolean.TRUE.equals(get(r, column));
    }

    private static SortedMap<String, String> params(Row r) {
      int i = r.fieldIndex("params");
      return r.isNullAt(i) ? new TreeMap<>() : new TreeMap<>(r.<String, String>getJavaMap(i));
    }
  }
}
