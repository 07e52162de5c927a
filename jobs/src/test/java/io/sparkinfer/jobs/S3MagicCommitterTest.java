package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStoreContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The job reading its model and prompts from, and writing its tables to, s3a:// on an S3-compatible server in
 * this JVM (S3Proxy over an in-memory blob store on 127.0.0.1), with the committer and file system settings of
 * conf/s3.properties itself: every row committed once through the S3A magic committer; throttling (503) retried
 * within bounded time; a failed task attempt's files never visible; a failed job leaves no data and no pending
 * multipart upload. The session allows one retry per task (local[2,2]), as a cluster does.
 */
@Tag("slow")
class S3MagicCommitterTest {

  static final String BUCKET = "sparkinfer-test";
  static final String ACCESS = "test-access";
  static final String SECRET = "test-secret";
  static final String ROOT = "s3a://" + BUCKET;

  static S3Proxy proxy;
  static BlobStoreContext blobs;
  static FaultyBlobStore faults;
  static S3Client s3;
  static URI endpoint;
  static SparkSession spark;
  static FileSystem fs;
  static Map<String, String> rows;

  @TempDir
  static Path tmp;

  @BeforeAll
  static void startS3AndSpark() throws Exception {
    blobs = ContextBuilder.newBuilder("transient").credentials("identity", "credential").build(BlobStoreContext.class);
    faults = FaultyBlobStore.over(blobs.getBlobStore());
    int port = Shell.freePort();
    endpoint = URI.create("http://127.0.0.1:" + port);
    proxy = S3Proxy.builder().blobStore(faults.store()).endpoint(endpoint)
        .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS, SECRET).build();
    proxy.start();
    for (int i = 0; i < 100 && !"STARTED".equals(proxy.getState()); i++) {
      Thread.sleep(50);
    }
    s3 = S3Client.builder().endpointOverride(endpoint).region(Region.US_EAST_1).forcePathStyle(true)
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS, SECRET))).build();
    s3.createBucket(b -> b.bucket(BUCKET));

    TestSupport.stopSpark();
    SparkSession.Builder builder = SparkSession.builder().master("local[2,2]").appName("sparkinfer-s3-tests")
        .config("spark.ui.enabled", "false").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1");
    Properties file = s3Properties();
    for (String key : file.stringPropertyNames()) {
      builder.config(key, file.getProperty(key)); // the committer and the file system, as users pass them
    }
    Map.of("fs.s3a.endpoint", endpoint.toString(), "fs.s3a.endpoint.region", "us-east-1",
        "fs.s3a.path.style.access", "true", "fs.s3a.connection.ssl.enabled", "false",
        "fs.s3a.access.key", ACCESS, "fs.s3a.secret.key", SECRET,
        "fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        // bounded retries: S3A's own for throttling (503), the SDK's for the rest
        "fs.s3a.retry.throttle.interval", "100ms", "fs.s3a.retry.limit", "3")
        .forEach((k, v) -> builder.config("spark.hadoop." + k, v));
    spark = builder.getOrCreate();
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    assertThat(conf.get("fs.s3a.committer.name")).as("from conf/s3.properties").isEqualTo("magic");
    assertThat(spark.conf().get("spark.sql.sources.commitProtocolClass")).endsWith("PathOutputCommitProtocol");

    fs = FileSystem.get(URI.create(ROOT), conf);
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(TestSupport.tinyModel().toUri()),
        new org.apache.hadoop.fs.Path(ROOT + "/models/qwen2-tiny"));
    rows = TestSupport.referenceInput();
    Path local = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), rows);
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(local.toUri()), new org.apache.hadoop.fs.Path(ROOT + "/in/prompts.jsonl"));
  }

  /** conf/s3.properties as Spark reads a properties file. */
  static Properties s3Properties() throws IOException {
    Properties p = new Properties();
    try (var in = Files.newBufferedReader(TestSupport.repo().resolve("conf/s3.properties"))) {
      p.load(in);
    }
    return p;
  }

  @AfterAll
  static void stop() throws Exception {
    if (spark != null) {
      spark.stop();
    }
    FileSystem.closeAll();
    if (s3 != null) {
      s3.close();
    }
    if (proxy != null) {
      proxy.stop();
    }
    if (blobs != null) {
      blobs.close();
    }
  }

  @AfterEach
  void disarm() {
    faults.disarm();
  }

  private static JobResult run(String out) {
    return BatchInference.run(spark, TestSupport.options("--model", ROOT + "/models/qwen2-tiny",
        "--input", ROOT + "/in/prompts.jsonl", "--output", ROOT + "/" + out, "--max-new-tokens", "4",
        "--partitions", "2", "--model-cache", tmp.resolve("models-" + out).toString()));
  }

  private static List<String> ids(String out) {
    return spark.read().parquet(ROOT + "/" + out).collectAsList().stream().map(r -> r.<String>getAs("id")).toList();
  }

  private static void assertNoPendingUploads() {
    assertThat(s3.listMultipartUploads(b -> b.bucket(BUCKET)).uploads()).as("no pending multipart uploads").isEmpty();
  }

  @Test
  void writesEveryRowThroughTheMagicCommitterAndLeavesNoPendingUploads() throws IOException {
    JobResult result = run("out1");
    assertThat(result.succeeded()).isTrue();
    List<Row> written = spark.read().parquet(ROOT + "/out1").collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("all rows present, once")
        .containsExactlyInAnyOrderElementsOf(rows.keySet());
    assertThat(written).allSatisfy(r -> assertThat(r.<String>getAs("finish_reason")).isIn("stop", "length"));
    assertThat(spark.read().parquet(ROOT + "/out1/_job_runs").count()).isEqualTo(1);
    String success;
    try (var in = fs.open(new org.apache.hadoop.fs.Path(ROOT + "/out1/_SUCCESS"))) {
      success = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertThat(success).as("an S3A committer's JSON _SUCCESS names the committer").contains("\"committer\"")
        .contains("magic");
    assertThat(Arrays.stream(fs.listStatus(new org.apache.hadoop.fs.Path(ROOT + "/out1"))).map(s -> s.getPath().getName()))
        .as("no magic directories left").noneMatch(n -> n.startsWith("__magic"));
    assertNoPendingUploads();
  }

  @Test
  void throttledRequestsAreRetriedWithinBoundedTime() {
    faults.failNextRequests(12, 503); // SlowDown: the model's download, the input's reads, the commit
    long start = System.nanoTime();
    JobResult result = run("out2");
    double seconds = (System.nanoTime() - start) / 1e9;
    assertThat(faults.served()).as("every injected 503 was met and retried").isEqualTo(12);
    assertThat(result.succeeded()).isTrue();
    assertThat(seconds).as("retries back off within bounds").isLessThan(120);
    assertThat(ids("out2")).containsExactlyInAnyOrderElementsOf(rows.keySet());
    assertNoPendingUploads();
  }

  @Test
  void aFailedTaskAttemptsFilesAreNeverVisible() {
    // The first part upload of the completions fails as a refused request: that task attempt fails after its
    // rows were generated and its file was opened; the retried attempt writes them again.
    faults.failPartUploads(1, 400, key -> key.startsWith("out3/") && !key.contains("_job_runs"));
    JobResult result = run("out3");
    assertThat(faults.served()).isEqualTo(1);
    assertThat(result.succeeded()).isTrue();
    assertThat(ids("out3")).as("the failed attempt's rows are not there twice")
        .containsExactlyInAnyOrderElementsOf(rows.keySet());
    assertNoPendingUploads();
  }

  @Test
  void aFailedJobLeavesNoDataAndNoPendingUploads() throws IOException {
    faults.failPartUploads(Integer.MAX_VALUE, 400, key -> key.startsWith("out4/") && !key.contains("_job_runs"));
    assertThatThrownBy(() -> run("out4")).isInstanceOf(JobFailedException.class);
    org.apache.hadoop.fs.Path out = new org.apache.hadoop.fs.Path(ROOT + "/out4");
    assertThat(fs.exists(new org.apache.hadoop.fs.Path(out, "_SUCCESS"))).isFalse();
    List<String> visible = new java.util.ArrayList<>();
    var files = fs.listFiles(out, true);
    while (files.hasNext()) {
      String p = files.next().getPath().toString();
      if (!p.contains("/_job_runs/")) {
        visible.add(p);
      }
    }
    assertThat(visible).as("no completion file of the failed job is visible").noneMatch(p -> p.endsWith(".parquet"));
    Row run = spark.read().parquet(ROOT + "/out4/_job_runs").first();
    assertThat(run.<String>getAs("status")).isEqualTo(JobResult.FAILED);
    faults.disarm();
    assertNoPendingUploads();
  }

  /**
   * A remote checkpoint is checked on the driver like a local one, from a stand-in holding its small files and its
   * weights' headers (not their tensors), before any Spark job: the error names the remote file and the problem.
   */
  @Test
  void aHostileRemoteModelIsRefusedBeforeAnySparkJobNamingTheRemoteFile() throws Exception {
    Path badHeader = copyOfTiny("bad-header");
    SafetensorsWriter.writeRaw(badHeader.resolve("model.safetensors"), 1L << 40,
        "{}".getBytes(StandardCharsets.UTF_8), new byte[16]);
    Path manyLayers = copyOfTiny("many-layers");
    Files.writeString(manyLayers.resolve("config.json"),
        Files.readString(manyLayers.resolve("config.json"))
            .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000"));
    Map<String, String> problems = Map.of(
        "bad-header", "/models/bad-header/model.safetensors: header length 1099511627776 is outside 1..104857600",
        "many-layers", "/models/many-layers/config.json: num_hidden_layers 1000000 is over 4096");

    AtomicInteger jobs = new AtomicInteger();
    SparkListener counter = new SparkListener() {
      @Override
      public void onJobStart(SparkListenerJobStart start) {
        jobs.incrementAndGet();
      }
    };
    spark.sparkContext().listenerBus().waitUntilEmpty();
    spark.sparkContext().addSparkListener(counter);
    try {
      for (Map.Entry<String, String> e : problems.entrySet()) {
        fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(tmp.resolve(e.getKey()).toUri()),
            new org.apache.hadoop.fs.Path(ROOT + "/models/" + e.getKey()));
        String model = ROOT + "/models/" + e.getKey();
        assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options(
            "--model", model, "--input", ROOT + "/in/prompts.jsonl", "--output", ROOT + "/hostile/" + e.getKey())))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageStartingWith("--model " + model + ": " + ROOT + e.getValue());
      }
      spark.sparkContext().listenerBus().waitUntilEmpty();
    } finally {
      spark.sparkContext().removeSparkListener(counter);
    }
    assertThat(jobs.get()).as("Spark jobs started").isZero();
    assertThat(fs.exists(new org.apache.hadoop.fs.Path(ROOT + "/hostile"))).as("nothing written").isFalse();
  }

  private static Path copyOfTiny(String name) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve(name));
    try (var files = Files.list(TestSupport.tinyModel())) {
      for (Path f : files.toList()) {
        Files.copy(f, dir.resolve(f.getFileName()));
        dir.resolve(f.getFileName()).toFile().setWritable(true);
      }
    }
    return dir;
  }
}
