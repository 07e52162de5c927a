package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * 100,000 prompts through {@code submit/infer.sh} on local[2] with the tiny checkpoint, in a driver JVM of
 * {@value #DRIVER_HEAP} heap (local mode: the driver is also the executor): nothing is collected to the driver,
 * or it would not fit. Prints rows/s (job_runs) and the heap the GC log saw, the figures README quotes.
 */
@Tag("slow")
class LoadTest {

  static final int ROWS = 100_000;
  static final String DRIVER_HEAP = "512m";
  static final long DRIVER_HEAP_MB = 512;

  @TempDir
  Path tmp;

  @Test
  void hundredThousandPromptsFinishInA512MbDriverHeap() throws IOException {
    Path input = tmp.resolve("prompts.jsonl");
    try (BufferedWriter w = Files.newBufferedWriter(input, StandardCharsets.UTF_8)) {
      for (int i = 0; i < ROWS; i++) {
        w.write("{\"id\": \"r" + i + "\", \"prompt\": \"def f" + i + "(x):\"}\n");
      }
    }
    String out = tmp.resolve("completions").toString();
    Path gcLogs = Files.createDirectories(tmp.resolve("gc"));
    long start = System.nanoTime();
    Shell.Result r = Shell.run(Map.of("SPARKINFER_DRIVER_MEMORY", DRIVER_HEAP,
            "JAVA_TOOL_OPTIONS", "-Xlog:gc:file=" + gcLogs.resolve("gc-%p.log")),
        600, List.of("submit/infer.sh", "--master", "local[2]", "--model", TestSupport.tinyModel().toString(),
            "--input", input.toString(), "--output", out, "--max-new-tokens", "1"));
    double processSeconds = (System.nanoTime() - start) / 1e9;
    assertThat(r.status()).as("infer.sh: %s", r).isZero();

    SparkSession spark = TestSupport.spark();
    Row run = spark.read().parquet(out + "/_job_runs").first();
    assertThat(run.<String>getAs("status")).isEqualTo("succeeded");
    assertThat(run.<Long>getAs("input_rows")).isEqualTo(ROWS);
    assertThat(run.<Long>getAs("ok_rows")).as("every prompt answered").isEqualTo(ROWS);
    assertThat(spark.read().parquet(out).select("id").distinct().count()).as("each id once").isEqualTo(ROWS);

    GcLog gc = GcLog.read(gcLogs);
    assertThat(gc.capacityMb()).as("the driver ran under the -Xmx bound (its heap never grew past it)")
        .isPositive().isLessThanOrEqualTo(DRIVER_HEAP_MB);
    System.out.printf(Locale.ROOT, "load: %,d rows on local[2] in %.1f s (job_runs wall_s; %.1f s with JVM start): "
            + "%.0f rows/s; driver heap -Xmx%s: in use at most %d MB, live after GC at most %d MB, %d GCs%n",
        ROWS, run.<Double>getAs("wall_s"), processSeconds, run.<Double>getAs("rows_per_s"), DRIVER_HEAP,
        gc.peakUsedMb(), gc.peakLiveMb(), gc.collections());
  }

  /**
   * What a {@code -Xlog:gc} log says of the heap: the most in use before a collection, the most still live after
   * one, and the largest heap capacity, from lines such as {@code GC(3) Pause Young ... 85M->76M(380M) 51ms}.
   */
  record GcLog(long peakUsedMb, long peakLiveMb, long capacityMb, int collections) {
    static final Pattern PAUSE = Pattern.compile("(\\d+)([KMG])->(\\d+)([KMG])\\((\\d+)([KMG])\\)");

    static GcLog read(Path dir) throws IOException {
      List<Path> logs;
      try (Stream<Path> files = Files.list(dir)) {
        logs = files.toList();
      }
      assertThat(logs).as("one JVM, one GC log").hasSize(1);
      long used = 0;
      long live = 0;
      long capacity = 0;
      int n = 0;
      for (String line : Files.readAllLines(logs.get(0))) {
        Matcher m = PAUSE.matcher(line);
        if (m.find()) {
          used = Math.max(used, mb(m.group(1), m.group(2)));
          live = Math.max(live, mb(m.group(3), m.group(4)));
          capacity = Math.max(capacity, mb(m.group(5), m.group(6)));
          n++;
        }
      }
      return new GcLog(used, live, capacity, n);
    }

    private static long mb(String value, String unit) {
      long v = Long.parseLong(value);
      return switch (unit) {
        case "K" -> v / 1024;
        case "G" -> v * 1024;
        default -> v;
      };
    }
  }
}
