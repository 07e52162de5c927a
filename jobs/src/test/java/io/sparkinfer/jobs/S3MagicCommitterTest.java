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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The job reading its model and prompts from, and writing its tables to, s3a:// on an S3-compatible server
 * in this JVM (S3Proxy over an in-memory blob store on 127.0.0.1), committed by the S3A magic committer as
 * conf/s3.properties sets it up.
 */
@Tag("slow")
class S3MagicCommitterTest {

  static final String BUCKET = "sparkinfer-test";
  static final String ACCESS = "test-access";
  static final String SECRET = "test-secret";

  static S3Proxy proxy;
  static BlobStoreContext blobs;
  static S3Client s3;
  static URI endpoint;

  /** The S3A and committer settings of this test, restored afterwards on the shared session. */
  static Map<String, String> hadoopSettings;
  static final Map<String, String> SQL_SETTINGS = Map.of(
      "spark.sql.sources.commitProtocolClass", "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol",
      "spark.sql.parquet.output.committer.class", "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter");

  @TempDir
  Path tmp;

  @BeforeAll
  static void startS3() throws Exception {
    blobs = ContextBuilder.newBuilder("transient").credentials("identity", "credential").build(BlobStoreContext.class);
    int port = Shell.freePort();
    endpoint = URI.create("http://127.0.0.1:" + port);
    proxy = S3Proxy.builder().blobStore(blobs.getBlobStore()).endpoint(endpoint)
        .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS, SECRET).build();
    proxy.start();
    for (int i = 0; i < 100 && !"STARTED".equals(proxy.getState()); i++) {
      Thread.sleep(50);
    }
    s3 = S3Client.builder().endpointOverride(endpoint).region(Region.US_EAST_1).forcePathStyle(true)
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS, SECRET))).build();
    s3.createBucket(b -> b.bucket(BUCKET));

    hadoopSettings = Map.ofEntries(
        Map.entry("fs.s3a.endpoint", endpoint.toString()),
        Map.entry("fs.s3a.endpoint.region", "us-east-1"),
        Map.entry("fs.s3a.path.style.access", "true"),
        Map.entry("fs.s3a.connection.ssl.enabled", "false"),
        Map.entry("fs.s3a.access.key", ACCESS),
        Map.entry("fs.s3a.secret.key", SECRET),
        Map.entry("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"),
        Map.entry("fs.s3a.retry.limit", "2"),
        Map.entry("fs.s3a.attempts.maximum", "2"),
        Map.entry("fs.s3a.committer.name", "magic"),
        Map.entry("fs.s3a.committer.magic.enabled", "true"),
        Map.entry("mapreduce.outputcommitter.factory.scheme.s3a", "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory"));
  }

  @AfterAll
  static void stopS3() throws Exception {
    SparkSession spark = TestSupport.spark();
    SQL_SETTINGS.keySet().forEach(k -> spark.conf().unset(k));
    hadoopSettings.keySet().forEach(k -> spark.sparkContext().hadoopConfiguration().unset(k));
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

  @Test
  void writesEveryRowThroughTheMagicCommitterAndLeavesNoPendingUploads() throws IOException {
    SparkSession spark = TestSupport.spark();
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    hadoopSettings.forEach(conf::set);
    SQL_SETTINGS.forEach((k, v) -> spark.conf().set(k, v));

    String root = "s3a://" + BUCKET;
    FileSystem fs = FileSystem.get(URI.create(root), conf);
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(TestSupport.tinyModel().toUri()),
        new org.apache.hadoop.fs.Path(root + "/models/qwen2-tiny"));
    Map<String, String> rows = TestSupport.referenceInput();
    Path local = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), rows);
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(local.toUri()), new org.apache.hadoop.fs.Path(root + "/in/prompts.jsonl"));

    String out = root + "/out/completions";
    JobResult result = BatchInference.run(spark, TestSupport.options("--model", root + "/models/qwen2-tiny",
        "--input", root + "/in/prompts.jsonl", "--output", out, "--max-new-tokens", "4", "--partitions", "2"));
    assertThat(result.succeeded()).isTrue();

    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("all rows present, once")
        .containsExactlyInAnyOrderElementsOf(rows.keySet());
    assertThat(written).allSatisfy(r -> assertThat(r.<String>getAs("finish_reason")).isIn("stop", "length"));
    assertThat(spark.read().parquet(out + "/_job_runs").count()).isEqualTo(1);

    String success;
    try (var in = fs.open(new org.apache.hadoop.fs.Path(out + "/_SUCCESS"))) {
      success = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertThat(success).as("an S3A committer's JSON _SUCCESS names the committer").contains("\"committer\"")
        .contains("magic");
    assertThat(Arrays.stream(fs.listStatus(new org.apache.hadoop.fs.Path(out))).map(s -> s.getPath().getName()))
        .as("no magic directories left").noneMatch(n -> n.startsWith("__magic"));
    assertThat(s3.listMultipartUploads(b -> b.bucket(BUCKET)).uploads()).as("no pending multipart uploads").isEmpty();
  }

  /**
   * A remote checkpoint is checked on the driver like a local one, from a stand-in holding its small files and its
   * weights' headers (not their tensors), before any Spark job: the error names the remote file and the problem.
   */
  @Test
  void aHostileRemoteModelIsRefusedBeforeAnySparkJobNamingTheRemoteFile() throws Exception {
    SparkSession spark = TestSupport.spark();
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    hadoopSettings.forEach(conf::set);
    SQL_SETTINGS.forEach((k, v) -> spark.conf().set(k, v));
    String root = "s3a://" + BUCKET;
    FileSystem fs = FileSystem.get(URI.create(root), conf);
    Path local = tmp.resolve("in.jsonl");
    TestSupport.writeJsonl(local, TestSupport.referenceInput());
    fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(local.toUri()), new org.apache.hadoop.fs.Path(root + "/in2.jsonl"));

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
    spark.sparkContext().addSparkListener(counter);
    try {
      for (Map.Entry<String, String> e : problems.entrySet()) {
        fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(tmp.resolve(e.getKey()).toUri()),
            new org.apache.hadoop.fs.Path(root + "/models/" + e.getKey()));
        String model = root + "/models/" + e.getKey();
        assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options(
            "--model", model, "--input", root + "/in2.jsonl", "--output", root + "/out/" + e.getKey())))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageStartingWith("--model " + model + ": " + root + e.getValue());
      }
      spark.sparkContext().listenerBus().waitUntilEmpty();
    } finally {
      spark.sparkContext().removeSparkListener(counter);
    }
    assertThat(jobs.get()).as("Spark jobs started").isZero();
    assertThat(fs.exists(new org.apache.hadoop.fs.Path(root + "/out"))).as("nothing written").isFalse();
  }

  private Path copyOfTiny(String name) throws IOException {
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
