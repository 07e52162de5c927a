package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.SamplingParams;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job on the standalone cluster of {@code submit/local-cluster.sh}: a master and two workers on
 * 127.0.0.1, each running one executor JVM. The test JVM is the driver.
 */
@Tag("slow")
class LocalClusterTest {

  @TempDir
  static Path tmp;

  static Map<String, String> env;
  static String masterUrl;

  @BeforeAll
  static void startCluster() {
    env = Map.of("SPARKINFER_CLUSTER_DIR", tmp.resolve("cluster").toString(),
        "SPARKINFER_MASTER_PORT", Integer.toString(Shell.freePort()),
        "SPARKINFER_WORKER_MEMORY", "1g");
    Shell.Result r = Shell.run(env, 180, List.of("submit/local-cluster.sh", "start"));
    assertThat(r.status()).as("local-cluster.sh start: %s", r).isZero();
    masterUrl = r.stdout().strip();
    assertThat(masterUrl).startsWith("spark://127.0.0.1:");
  }

  @AfterAll
  static void stopCluster() {
    TestSupport.stopSpark();
    if (env != null) {
      Shell.Result r = Shell.run(env, 60, List.of("submit/local-cluster.sh", "stop"));
      assertThat(r.status()).as("local-cluster.sh stop: %s", r).isZero();
    }
  }

  /** A session on the cluster, its executors running the test's build, with {@code extra} settings. */
  private static SparkSession clusterSession(Map<String, String> extra) throws IOException {
    TestSupport.stopSpark();
    Path target = TestSupport.repo().resolve("jobs/target");
    String appClasspath = target.resolve("classes") + ":" + Files.readString(target.resolve("classpath/app.classpath")).strip();
    SparkSession.Builder builder = SparkSession.builder()
        .master(masterUrl)
        .appName("sparkinfer-local-cluster-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.executor.memory", "1g")
        .config("spark.cores.max", "2")
        .config("spark.locality.wait", "0")
        .config("spark.sql.shuffle.partitions", "4")
        // The executors run the test's build: its classes and the engine's jars (a job jar with spark-submit).
        .config("spark.executor.extraClassPath", appClasspath)
        .config("spark.executor.extraJavaOptions",
            "-Dai.djl.offline=true -Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1");
    extra.forEach(builder::config);
    return builder.getOrCreate();
  }

  @Test
  void twoExecutorsGiveTheSameCompletionsWithOneModelLoadEach() throws IOException {
    SparkSession spark = clusterSession(Map.of());
    try {
      waitForExecutors(spark, 2);
      Map<String, String> rows = new HashMap<>(TestSupport.referenceInput());
      rows.put("dup-of-p5", rows.get("p5"));
      Path input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), rows);
      String out = tmp.resolve("out").toString();
      JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
          "--input", input.toString(), "--output", out, "--max-new-tokens", "" + BatchInferenceJobLocalTest.MAX_NEW,
          "--partitions", "4"));

      assertThat(result.loadsByExecutor()).as("one model load in each executor JVM, counted by the executors")
          .hasSize(2).allSatisfy((executor, loads) -> assertThat(loads).isEqualTo(1));
      assertThat(result.loadsByExecutor().keySet()).doesNotContain("driver");

      List<Row> written = spark.read().parquet(out).collectAsList();
      assertThat(written).extracting(r -> r.<String>getAs("id")).containsExactlyInAnyOrderElementsOf(rows.keySet());
      assertThat(written.stream().map(r -> r.<String>getAs("executor_id")).collect(Collectors.toSet()))
          .as("both executors answered rows").hasSize(2);
      Map<String, io.sparkinfer.generate.Completion> expected =
          BatchInferenceJobLocalTest.engineCompletions(rows, io.sparkinfer.generate.SamplingParams.GREEDY, 0);
      for (Row r : written) {
        assertThat(r.<String>getAs("completion")).as("completion of %s", r.<String>getAs("id"))
            .isEqualTo(expected.get(r.<String>getAs("id")).text());
      }
      Row run = spark.read().parquet(out + "/_job_runs").first();
      assertThat(run.<Integer>getAs("model_loads")).isEqualTo(2);
      assertThat(run.<Integer>getAs("executors")).isEqualTo(2);
    } finally {
      spark.stop();
      TestSupport.stopSpark();
    }
  }

  /**
   * An executor's JVM dies in the middle of a task (the job's test hook halts it after the task handed one row
   * to the writer, on partition 0's first attempt): the worker starts another executor, Spark runs the lost
   * tasks again, and the table holds each id once with the engine's completions.
   */
  @Test
  void anExecutorLostMidTaskIsReplacedAndEveryIdIsWrittenOnce() throws Exception {
    SparkSession spark = clusterSession(Map.of(InjectedFault.ACTION, "halt", InjectedFault.PARTITION, "0",
        InjectedFault.ATTEMPTS, "first", InjectedFault.AFTER_ROWS, "1"));
    List<String> removed = Collections.synchronizedList(new ArrayList<>());
    spark.sparkContext().addSparkListener(new SparkListener() {
      @Override
      public void onExecutorRemoved(SparkListenerExecutorRemoved event) {
        removed.add(event.executorId() + ": " + event.reason());
      }
    });
    try {
      waitForExecutors(spark, 2);
      Map<String, String> rows = TestSupport.referenceInput();
      Path input = TestSupport.writeJsonl(tmp.resolve("lost-in.jsonl"), rows);
      String out = tmp.resolve("lost-out").toString();
      JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
          "--input", input.toString(), "--output", out, "--max-new-tokens", "" + BatchInferenceJobLocalTest.MAX_NEW,
          "--partitions", "4", "--batch-size", "1"));

      spark.sparkContext().listenerBus().waitUntilEmpty();
      assertThat(removed).as("one executor was lost").hasSize(1);
      assertThat(executorLogs()).as("the executor halted itself in the middle of partition 0's first attempt")
          .contains("injected fault: halting this executor's JVM, partition 0, attempt 0 (stage attempt 0), after 1 rows");
      assertThat(result.succeeded()).isTrue();
      List<Row> written = spark.read().parquet(out).collectAsList();
      assertThat(written).extracting(r -> r.<String>getAs("id")).as("each id once, none lost, none twice")
          .containsExactlyInAnyOrderElementsOf(rows.keySet());
      Map<String, Completion> expected = BatchInferenceJobLocalTest.engineCompletions(rows, SamplingParams.GREEDY, 0);
      for (Row r : written) {
        assertThat(r.<String>getAs("completion")).as("completion of %s", r.<String>getAs("id"))
            .isEqualTo(expected.get(r.<String>getAs("id")).text());
      }
      Row run = spark.read().parquet(out + "/_job_runs").first();
      assertThat(run.<Long>getAs("ok_rows")).as("rows counted once").isEqualTo(rows.size());
      assertThat(run.<Long>getAs("requests")).isEqualTo(rows.size());
    } finally {
      spark.stop();
      TestSupport.stopSpark();
    }
  }

  /** What the executors the workers started wrote to stderr. */
  private static String executorLogs() throws IOException {
    StringBuilder sb = new StringBuilder();
    try (var files = Files.walk(tmp.resolve("cluster"))) {
      for (Path f : files.filter(p -> p.getFileName().toString().equals("stderr")).toList()) {
        sb.append(Files.readString(f));
      }
    }
    return sb.toString();
  }

  /**
   * {@code submit/package-natives.sh} packs DJL's CPU libtorch jar (the unmodified Maven artifact) and
   * {@code submit/infer.sh --natives} ships it with {@code --archives ARCHIVE#libtorch}: executors without any
   * libtorch on their class path load it from the archive unpacked in their working directories, as job_runs'
   * {@code libtorch} column records; on a local master the driver loads it from a copy unpacked under
   * jobs/target/natives.
   */
  @Test
  void executorsLoadLibtorchFromTheShippedArchive() throws IOException {
    Path archive = tmp.resolve("natives/libtorch-cpu.tar");
    Shell.Result pack = Shell.run(Map.of(), 300, List.of("submit/package-natives.sh", "--flavor", "cpu",
        "--output", archive.toString()));
    assertThat(pack.status()).as("package-natives.sh: %s", pack).isZero();
    assertThat(pack.stdout().strip()).isEqualTo(archive.toString());
    assertArchiveHoldsTheJarsLibrariesUnmodified(archive);

    Map<String, String> rows = TestSupport.referenceInput();
    Path input = TestSupport.writeJsonl(tmp.resolve("natives-in.jsonl"), rows);
    String out = tmp.resolve("natives-out").toString();
    Shell.Result infer = Shell.run(Map.of("SPARKINFER_DRIVER_MEMORY", "1g"), 300, List.of("submit/infer.sh",
        "--master", masterUrl, "--natives", archive.toString(), "--conf", "spark.executor.memory=1g",
        "--conf", "spark.cores.max=2", "--model", TestSupport.tinyModel().toString(), "--input", input.toString(),
        "--output", out, "--max-new-tokens", "4", "--partitions", "2"));
    assertThat(infer.status()).as("infer.sh --natives on the cluster: %s", infer).isZero();

    String localOut = tmp.resolve("natives-local-out").toString();
    Shell.Result local = Shell.run(Map.of("SPARKINFER_DRIVER_MEMORY", "1g"), 300, List.of("submit/infer.sh",
        "--master", "local[1]", "--natives", archive.toString(), "--model", TestSupport.tinyModel().toString(),
        "--input", input.toString(), "--output", localOut, "--max-new-tokens", "4"));
    assertThat(local.status()).as("infer.sh --natives on local[1]: %s", local).isZero();

    SparkSession spark = TestSupport.spark();
    Row run = spark.read().parquet(out + "/_job_runs").first();
    assertThat(run.<Integer>getAs("model_loads")).as("both executors loaded the model").isEqualTo(2);
    List<String> dirs = List.of(run.<String>getAs("libtorch").split(","));
    Path work = tmp.resolve("cluster").toAbsolutePath();
    assertThat(dirs).as("each executor's libtorch: the archive unpacked in its working directory").hasSize(2)
        .allSatisfy(d -> assertThat(d).startsWith(work + "/work-").endsWith("/libtorch/lib"));
    assertThat(spark.read().parquet(out).count()).isEqualTo(rows.size());

    Row localRun = spark.read().parquet(localOut + "/_job_runs").first();
    assertThat(localRun.<String>getAs("libtorch")).as("the driver's libtorch on a local master")
        .startsWith(TestSupport.repo().resolve("jobs/target/natives/libtorch-cpu.tar-").toString())
        .endsWith("/lib");
    assertThat(spark.read().parquet(localOut).select("id", "completion").orderBy("id").collectAsList())
        .as("the same completions as on the cluster")
        .isEqualTo(spark.read().parquet(out).select("id", "completion").orderBy("id").collectAsList());
  }

  /** Every file under the archive's lib/ is the jar's entry of that name (pytorch/cpu/linux-x86_64/), unmodified. */
  private static void assertArchiveHoldsTheJarsLibrariesUnmodified(Path archive) throws IOException {
    Path unpacked = Files.createDirectories(tmp.resolve("natives/unpacked"));
    Shell.Result untar = Shell.run(Map.of(), 120, List.of("tar", "-C", unpacked.toString(), "-xf", archive.toString()));
    assertThat(untar.status()).as("%s", untar).isZero();
    assertThat(Files.readString(unpacked.resolve("libtorch.properties"))).contains("version=2.5.1", "flavor=cpu");
    String jar = java.util.Arrays.stream(Files.readString(TestSupport.repo().resolve(
        "jobs/target/classpath/app.classpath")).strip().split(":")).filter(p -> p.contains("pytorch-native-cpu"))
        .findFirst().orElseThrow();
    int checked = 0;
    try (java.util.zip.ZipFile zip = new java.util.zip.ZipFile(jar)) {
      for (java.util.zip.ZipEntry e : java.util.Collections.list(zip.entries())) {
        String prefix = "pytorch/cpu/linux-x86_64/";
        if (e.isDirectory() || !e.getName().startsWith(prefix)) {
          continue;
        }
        Path file = unpacked.resolve("lib").resolve(e.getName().substring(prefix.length()));
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        try (java.io.InputStream in = Files.newInputStream(file)) {
          byte[] buf = new byte[1 << 20];
          for (int n; (n = in.read(buf)) > 0; ) {
            crc.update(buf, 0, n);
          }
        }
        assertThat(Files.size(file)).as("size of %s", file).isEqualTo(e.getSize());
        assertThat(crc.getValue()).as("CRC-32 of %s", file).isEqualTo(e.getCrc());
        checked++;
      }
    }
    assertThat(checked).as("libraries checked").isGreaterThanOrEqualTo(4);
    assertThat(unpacked.resolve("lib/libtorch.so")).isRegularFile();
  }

  private static void waitForExecutors(SparkSession spark, int n) {
    long deadline = System.nanoTime() + 120_000_000_000L;
    while (spark.sparkContext().statusTracker().getExecutorInfos().length < n + 1) { // + the driver
      if (System.nanoTime() > deadline) {
        throw new AssertionError("executors did not register within 120 s");
      }
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }
}
