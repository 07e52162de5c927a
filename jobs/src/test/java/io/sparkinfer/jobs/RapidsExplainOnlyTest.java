package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.SamplingParams;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.MutableURLClassLoader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job's query plan under the RAPIDS Accelerator ({@code com.nvidia:rapids-4-spark_2.13}, its Spark 4.1.2 shim)
 * in {@code spark.rapids.sql.mode=explainOnly}: RAPIDS plans every query as it would on a GPU and logs which
 * operators would run there, while Spark runs them on the CPU (no GPU needed). The whole job runs, from a Parquet
 * and from a JSONL input, with conf/gpu-cluster.properties' RAPIDS settings; the test asserts what RAPIDS would put
 * on the GPU (the dedup aggregate, the range shuffle and sort by prompt length, the write) and what it leaves on the
 * CPU (the input scans, which read row positions or lines for error rows, and the planning and inference steps,
 * which are Java code), and that the answers are those of the engine alone.
 *
 * <p>The jar is loaded as spark-submit loads {@code spark.jars}: in a {@link MutableURLClassLoader} made the
 * context class loader, which RAPIDS' shim loader extends with its Spark 4.1.2 classes. It comes from the local
 * Maven repository (jobs/pom.xml says how to fetch it: its POM cannot be resolved as a dependency); without it the
 * test is skipped, unless {@code -Dsparkinfer.requireRapids=true} (CI) makes that a failure.
 */
@Tag("slow")
class RapidsExplainOnlyTest {

  static final String EXPLAIN_LOGGER = "com.nvidia.spark.rapids.GpuOverrides";

  @TempDir
  static Path tmp;

  static ClassLoader previousLoader;
  static SparkSession spark;
  static final List<String> explained = Collections.synchronizedList(new ArrayList<>());
  static AbstractAppender appender;

  @BeforeAll
  static void startRapidsSession() throws Exception {
    Path jar = rapidsJar();
    TestSupport.stopSpark();
    captureExplainLog();
    previousLoader = Thread.currentThread().getContextClassLoader();
    Thread.currentThread().setContextClassLoader(new MutableURLClassLoader(new URL[] {jar.toUri().toURL()},
        previousLoader));
    SparkSession.Builder builder = SparkSession.builder().master("local[2]").appName("sparkinfer-rapids-explain")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4");
    for (Map.Entry<String, String> e : ConfFilesTest.load("gpu-cluster.properties").entrySet()) {
      if (e.getKey().startsWith("spark.rapids.") || e.getKey().equals("spark.plugins")) {
        builder.config(e.getKey(), e.getValue());
      }
    }
    spark = builder.config("spark.rapids.sql.mode", "explainOnly").getOrCreate();
  }

  @AfterAll
  static void stopRapidsSession() {
    if (spark != null) {
      spark.stop();
    }
    TestSupport.stopSpark();
    if (previousLoader != null) {
      Thread.currentThread().setContextClassLoader(previousLoader);
    }
    if (appender != null) {
      LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
      ctx.getConfiguration().getLoggerConfig(EXPLAIN_LOGGER).removeAppender(appender.getName());
      ctx.updateLoggers();
      appender.stop();
    }
  }

  @Test
  void parquetInputScanShuffleSortAndWriteWouldRunOnTheGpu() {
    Map<String, String> rows = TestSupport.referenceInput();
    Path parquet = tmp.resolve("prompts.parquet");
    spark.createDataFrame(rows.entrySet().stream().map(e -> org.apache.spark.sql.RowFactory.create(e.getKey(),
        e.getValue())).toList(), new org.apache.spark.sql.types.StructType().add("id", "string").add("prompt",
        "string")).coalesce(1).write().parquet(parquet.toString());
    explained.clear();
    String out = runJob(parquet, rows);

    String write = plan("*Output <InsertIntoHadoopFsRelationCommand>");
    assertThat(write).as("the write of the completions: RAPIDS' Parquet writer")
        .contains("*Exec <DataWritingCommandExec> will run on GPU", "*Exec <WriteFilesExec> will run on GPU");
    assertThat(write).as("the sort by prompt length and its range shuffle")
        .contains("*Partitioning <RangePartitioning> will run on GPU", "*Exec <SortExec> will run on GPU");
    assertThat(write).as("dedup: no grouping shuffle; identical prompts are merged in the sorted partitions")
        .doesNotContain("HashAggregateExec");
    assertThat(write).as("the planned rows, cached by Spark's default serializer, are read on the CPU (RAPIDS may "
        + "also name their binary token ids)")
        .containsPattern("!Exec <InMemoryTableScanExec> cannot run on GPU because [^\\n]*ParquetCachedBatchSerializer "
            + "is not being used");
    assertThat(write).as("inference: Java code over rows, on the CPU")
        .contains("! <MapPartitionsExec> cannot run on GPU");
    String planning = plan("! <MapPartitionsExec> cannot run on GPU");
    assertThat(planning).as("the Parquet scan under token counting (PromptPlanner, Java code on the CPU) reads each "
        + "row's file and row index (_metadata, so that a bad row names its place): RAPIDS leaves it on the CPU")
        .contains("!Exec <FileSourceScanExec> cannot run on GPU because hidden metadata columns are not supported "
            + "on GPU");
    assertThat(spark.read().parquet(out).count()).isEqualTo(rows.size());
  }

  @Test
  void jsonlInputIsReadByTheJobsLineReaderOnTheCpu() {
    Map<String, String> rows = TestSupport.referenceInput();
    Path jsonl = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), rows);
    explained.clear();
    runJob(jsonl, rows);

    assertThat(plan("! <RDDScanExec> cannot run on GPU")).as("JSON Lines are read by the job's own line reader "
        + "(TextInput: an RDD of rows, so that a bad line becomes an error row), then planned by Java code")
        .contains("! <MapPartitionsExec> cannot run on GPU")
        .doesNotContain("<FileSourceScanExec>");
    assertThat(plan("*Output <InsertIntoHadoopFsRelationCommand>"))
        .contains("*Exec <SortExec> will run on GPU", "*Exec <DataWritingCommandExec> will run on GPU");
  }

  @Test
  void gpuClusterPropertiesUseOnlyKeysRapidsKnows() throws Exception {
    Class<?> conf = Class.forName("com.nvidia.spark.rapids.RapidsConf$", true,
        Thread.currentThread().getContextClassLoader());
    Object module = conf.getField("MODULE$").get(null);
    Method help = conf.getMethod("help", boolean.class);
    ByteArrayOutputStream text = new ByteArrayOutputStream();
    PrintStream out = System.out;
    System.setOut(new PrintStream(text, true, StandardCharsets.UTF_8));
    try {
      help.invoke(module, true); // RAPIDS' documentation of its configs, as a markdown table
    } finally {
      System.setOut(out);
    }
    String documented = text.toString(StandardCharsets.UTF_8);
    assertThat(documented).as("RAPIDS documented its configs").contains("spark.rapids.sql.enabled");
    for (String key : ConfFilesTest.load("gpu-cluster.properties").keySet()) {
      if (key.startsWith("spark.rapids.")) {
        assertThat(documented).as("%s is a RAPIDS config", key).contains(key + "|");
      }
    }
  }

  /** Runs the job over {@code input} and checks its answers against the engine's; returns the output path. */
  private static String runJob(Path input, Map<String, String> rows) {
    String out = tmp.resolve("out-" + input.getFileName()).toString();
    JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
        "--input", input.toString(), "--output", out, "--max-new-tokens", "" + BatchInferenceJobLocalTest.MAX_NEW,
        "--partitions", "2"));
    assertThat(result.succeeded()).isTrue();
    Map<String, Completion> expected = BatchInferenceJobLocalTest.engineCompletions(rows, SamplingParams.GREEDY, 0);
    for (Row r : spark.read().parquet(out).collectAsList()) {
      assertThat(r.<String>getAs("completion")).as("explainOnly runs the job on the CPU, unchanged: %s",
          r.<String>getAs("id")).isEqualTo(expected.get(r.<String>getAs("id")).text());
    }
    assertThat(explained).as("RAPIDS explained the job's plans").isNotEmpty();
    return out;
  }

  /** The first explained plan that contains {@code marker}. */
  private static String plan(String marker) {
    synchronized (explained) {
      return explained.stream().filter(p -> p.contains(marker)).findFirst()
          .orElseGet(() -> fail("no explained plan contains '" + marker + "'; RAPIDS explained:\n"
              + String.join("\n----\n", explained)));
    }
  }

  /** Collects what RAPIDS' GpuOverrides logs (each message one plan, in explainOnly mode at WARN). */
  private static void captureExplainLog() {
    LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
    Configuration config = ctx.getConfiguration();
    appender = new AbstractAppender("rapids-explain", null, null, true, Property.EMPTY_ARRAY) {
      @Override
      public void append(LogEvent event) {
        explained.add(event.getMessage().getFormattedMessage());
      }
    };
    appender.start();
    LoggerConfig logger = new LoggerConfig(EXPLAIN_LOGGER, Level.WARN, true);
    logger.addAppender(appender, Level.WARN, null);
    config.addLogger(EXPLAIN_LOGGER, logger);
    ctx.updateLoggers();
  }

  /** The RAPIDS jar from the local Maven repository; skips (or, when required, fails) without it. */
  private static Path rapidsJar() {
    String path = System.getProperty("sparkinfer.rapidsJar", "");
    boolean present = !path.isEmpty() && Files.isRegularFile(Path.of(path));
    String why = "the RAPIDS jar " + path + " is not in the local Maven repository; fetch it with: mvn "
        + "org.apache.maven.plugins:maven-dependency-plugin:2.8:get -Dtransitive=false "
        + "-Dartifact=com.nvidia:rapids-4-spark_2.13:26.08.1";
    if (Boolean.getBoolean("sparkinfer.requireRapids") && !present) {
      fail(why + " (-Dsparkinfer.requireRapids=true: required)");
    }
    assumeTrue(present, why);
    return Path.of(path);
  }
}
