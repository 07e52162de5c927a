package io.sparkinfer.jobs.sweep;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import javax.imageio.ImageIO;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.expressions.GenericRowWithSchema;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.XYSeries.XYSeriesRenderStyle;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The sweep report from synthetic {@code sweep_trials} rows: the charts' files, the page's content and escaping,
 * and the page as Debian's headless Chromium renders it. The browser tests skip where Chromium is missing, unless
 * {@code -Dsparkinfer.requireBrowser=true} (set by jobs/pom.xml from {@code -DrequireBrowser=true} or the
 * environment variable {@code SPARKINFER_REQUIRE_BROWSER=true}, which {@code .ci/run} exports).
 */
class SweepReportTest {

  private static final String MALICIOUS = "<script>alert(1)</script>";
  private static final int SCREEN_WIDTH = 1200;
  private static final int SCREEN_HEIGHT = 1600;

  @TempDir
  Path tmp;

  @Test
  void writesChartsOfTheStatedSizeAndAPageThatLinksThem() throws IOException {
    List<Row> rows = study();
    Path index = SweepReport.write(rows, tmp.resolve("report"), "Sweep <qwen2-tiny> & co");

    assertThat(index).isEqualTo(tmp.resolve("report").resolve(SweepReport.INDEX_HTML)).isRegularFile();
    for (String png : List.of(SweepReport.THROUGHPUT_PNG, SweepReport.PARETO_PNG)) {
      BufferedImage image = ImageIO.read(index.resolveSibling(png).toFile());
      assertThat(image).as("%s decodes as an image", png).isNotNull();
      assertThat(image.getWidth()).as("%s width", png).isEqualTo(SweepReport.CHART_WIDTH);
      assertThat(image.getHeight()).as("%s height", png).isEqualTo(SweepReport.CHART_HEIGHT);
      assertThat(distinctColours(image)).as("distinct colours in %s (1 = blank)", png).isGreaterThan(1);
    }
    try (var files = Files.list(index.getParent())) {
      assertThat(files.map(p -> p.getFileName().toString()))
          .as("the report directory holds the three files and no temporary ones")
          .containsExactlyInAnyOrder(SweepReport.THROUGHPUT_PNG, SweepReport.PARETO_PNG, SweepReport.INDEX_HTML);
    }

    String html = Files.readString(index, StandardCharsets.UTF_8);
    assertThat(html).contains("<img src=\"throughput.png\" alt=\"", "<img src=\"pareto.png\" alt=\"")
        .contains("<title>Sweep &lt;qwen2-tiny&gt; &amp; co</title>")
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;").doesNotContain(MALICIOUS)
        .doesNotContain("http://", "https://", "<link");
    for (Row r : rows) {
      int trial = r.getAs("trial");
      assertThat(html).as("the table's row of trial %s", trial).contains("<td class=\"num\">" + trial + "</td>");
    }
    assertThat(html).as("summary").contains("8 (5 ok, 1 oom, 1 pruned, 1 failed)")
        .contains("trial 3 (batch_size=16, precision=fp16, threads=1): 2400.0 ± 35.0 tokens/s");
  }

  @Test
  void aStudyWithoutOkTrialsStillHasBothChartsAndSaysSo() throws IOException {
    List<Row> failed = study().stream().filter(r -> !SweepTables.OK.equals(r.getAs("status"))).toList();
    Path index = SweepReport.write(failed, tmp.resolve("report"), "Nothing ran");

    for (String png : List.of(SweepReport.THROUGHPUT_PNG, SweepReport.PARETO_PNG)) {
      BufferedImage image = ImageIO.read(index.resolveSibling(png).toFile());
      assertThat(image).as("%s decodes as an image", png).isNotNull();
      assertThat(image.getWidth()).as("%s width", png).isEqualTo(SweepReport.CHART_WIDTH);
    }
    assertThat(Files.readString(index, StandardCharsets.UTF_8)).contains("3 (1 oom, 1 pruned, 1 failed)")
        .contains("<strong>Best ok trial within the constraints:</strong> none");
  }

  @Test
  void seriesArePerPrecisionAndThreadCountAndTheFrontRunsInLatencyOrder() {
    List<SweepReport.Trial> trials = study().stream().map(SweepReport.Trial::of).toList();

    XYChart throughput = SweepReport.throughputChart(trials);
    assertThat(throughput.getSeriesMap()).containsOnlyKeys("bf16, 1 thread", "fp16, 1 thread", "fp16, 2 threads");
    XYSeries fp16 = throughput.getSeriesMap().get("fp16, 1 thread");
    assertThat(fp16.getXData()).as("log2 of batch sizes 1, 4, 16 (the ok trials' span 1 to 64)")
        .containsExactly(new double[] {0, 2, 4}, within(1e-9));
    assertThat(fp16.getYData()).containsExactly(600, 1800, 2400);
    assertThat(fp16.getExtraValues()).as("error bars: CI95, 0 where it is NaN").containsExactly(20, 0, 35);
    assertThat(throughput.getXAxisTitle()).isEqualTo("batch size (log2 scale)");

    XYChart pareto = SweepReport.paretoChart(trials);
    assertThat(pareto.getSeriesMap()).containsOnlyKeys("trials", "Pareto front", "outside the constraints");
    assertThat(pareto.getSeriesMap().get("Pareto front").getXData()).as("token p99, else request p99")
        .containsExactly(9, 20, 120);
    assertThat(pareto.getSeriesMap().get("Pareto front").getXYSeriesRenderStyle()).isEqualTo(XYSeriesRenderStyle.Line);
  }

  @Test
  void theReportRendersInAHeadlessBrowserWithoutConsoleErrors() throws Exception {
    Path chromium = requireChromium();
    Path index = SweepReport.write(study(), tmp.resolve("report"), "Sweep in a browser");

    HeadlessChromium.Result dom = HeadlessChromium.run(chromium, tmp, index, List.of("--dump-dom"));
    assertThat(dom.exitStatus()).as("chromium --dump-dom's exit status; stderr:\n%s", dom.stderr()).isZero();
    assertThat(dom.stdout()).as("the DOM after load").contains("data-images-loaded=\"2/2\"");
    assertThat(dom.consoleMessages()).as("console messages naming an error or a failure")
        .noneMatch(SweepReportTest::isConsoleError);

    Path shot = tmp.resolve("screenshot.png");
    HeadlessChromium.Result screenshot = HeadlessChromium.run(chromium, tmp, index,
        List.of("--hide-scrollbars", "--screenshot=" + shot, "--window-size=" + SCREEN_WIDTH + "," + SCREEN_HEIGHT));
    assertThat(screenshot.exitStatus()).as("chromium --screenshot's exit status; stderr:\n%s", screenshot.stderr())
        .isZero();
    BufferedImage image = ImageIO.read(shot.toFile());
    assertThat(image).as("the screenshot at %s", shot).isNotNull();
    assertThat(image.getWidth()).as("screenshot width").isEqualTo(SCREEN_WIDTH);
    assertThat(image.getHeight()).as("screenshot height").isEqualTo(SCREEN_HEIGHT);
    assertThat(distinctColours(image)).as("distinct colours in the screenshot").isGreaterThan(1);
  }

  /** The browser check is not vacuous: a chart that is missing is counted and logged. */
  @Test
  void theBrowserCheckReportsAChartThatDoesNotLoad() throws Exception {
    Path chromium = requireChromium();
    Path index = SweepReport.write(study(), tmp.resolve("report"), "Sweep with a chart missing");
    Files.delete(index.resolveSibling(SweepReport.PARETO_PNG));

    HeadlessChromium.Result dom = HeadlessChromium.run(chromium, tmp, index, List.of("--dump-dom"));
    assertThat(dom.stdout()).as("the DOM after load").contains("data-images-loaded=\"1/2\"");
    assertThat(dom.consoleMessages()).as("console messages; stderr:\n%s", dom.stderr())
        .anyMatch(m -> m.contains("image failed to load: " + index.resolveSibling(SweepReport.PARETO_PNG).toUri()))
        .anyMatch(SweepReportTest::isConsoleError);
  }

  private static boolean isConsoleError(String message) {
    String m = message.toLowerCase(Locale.ROOT);
    return m.contains("error") || m.contains("uncaught") || m.contains("failed");
  }

  private static Path requireChromium() {
    Optional<Path> chromium = HeadlessChromium.find();
    if (Boolean.getBoolean("sparkinfer.requireBrowser")) {
      assertThat(chromium).as("Chromium (/usr/bin/chromium, or chromium or chromium-browser on PATH), required by "
          + "-Dsparkinfer.requireBrowser=true; on Debian: apt-get install chromium").isPresent();
    }
    assumeTrue(chromium.isPresent(), "Chromium not found (/usr/bin/chromium, chromium, chromium-browser): "
        + "the browser check is skipped; -Dsparkinfer.requireBrowser=true makes it fail instead");
    return chromium.get();
  }

  /**
   * Eight trials of one study: fp16 at batch 1, 4, 16 with one thread (the last the best within the
   * constraints), fp16 at batch 4 with two threads and bf16 at batch 64 (outside the constraints), and an oom,
   * a pruned and a failed one whose error is markup.
   */
  private static List<Row> study() {
    return List.of(
        trial(1, "ok", "fp16", 1, 1, 600.0, 20.0, 9.0, true, true),
        trial(2, "ok", "fp16", 1, 4, 1800.0, Double.NaN, null, true, true, "latency_p99_ms", 20.0),
        trial(3, "ok", "fp16", 1, 16, 2400.0, 35.0, 120.0, true, true),
        trial(4, "ok", "fp16", 2, 4, 1500.0, 40.0, 30.0, false, true),
        trial(5, "ok", "bf16", 1, 64, 4000.0, 50.0, 400.0, false, false),
        trial(6, "oom", "bf16", 1, 256, null, null, null, false, false, "error", "CUDA out of memory"),
        trial(7, "pruned", "fp16", 1, 128, null, null, null, false, false),
        trial(8, "failed", "fp16", 1, 32, null, null, null, false, false, "error", MALICIOUS));
  }

  private static Row trial(int n, String status, String precision, int threads, int batch, Double tokensPerS,
      Double ci95, Double tokenP99, boolean pareto, boolean withinConstraints, Object... more) {
    Map<String, Object> c = new LinkedHashMap<>();
    c.put("run_id", "run-1");
    c.put("trial", n);
    c.put("model", "qwen2-tiny");
    c.put("gpu_name", "NVIDIA H200");
    c.put("date", "2026-12-01");
    c.put("status", status);
    c.put("precision", precision);
    c.put("threads", threads);
    c.put("batch_size", batch);
    c.put("params", Map.of("precision", precision, "threads", String.valueOf(threads),
        "batch_size", String.valueOf(batch)));
    c.put("tokens_per_s", tokensPerS);
    c.put("tokens_per_s_ci95", ci95);
    c.put("token_latency_p99_ms", tokenP99);
    c.put("latency_p99_ms", tokenP99 != null ? tokenP99 * 10 : null);
    c.put("peak_gpu_mem_mb", tokensPerS != null ? 1024.0 : null);
    c.put("agreement_identical", tokensPerS != null ? 1.0 : null);
    c.put("agreement_first_token", tokensPerS != null ? 1.0 : null);
    c.put("pareto", pareto);
    c.put("satisfies_constraints", withinConstraints);
    for (int i = 0; i < more.length; i += 2) {
      c.put((String) more[i], more[i + 1]);
    }
    return row(c);
  }

  /**
   * A row with {@link SweepTables#TRIALS}' schema: the given columns (a Java map becomes the Scala map Spark
   * holds), null for the others.
   */
  static Row row(Map<String, Object> columns) {
    Object[] values = new Object[SweepTables.TRIALS.size()];
    columns.forEach((name, v) -> values[SweepTables.TRIALS.fieldIndex(name)] =
        v instanceof Map<?, ?> m ? CollectionConverters.asScala(m) : v);
    return new GenericRowWithSchema(values, SweepTables.TRIALS);
  }

  private static int distinctColours(BufferedImage image) {
    Set<Integer> colours = new HashSet<>();
    for (int y = 0; y < image.getHeight(); y += 2) {
      for (int x = 0; x < image.getWidth(); x += 2) {
        colours.add(image.getRGB(x, y));
      }
    }
    return colours.size();
  }
}
