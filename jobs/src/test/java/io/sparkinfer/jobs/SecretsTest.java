package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
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

/**
 * S3 credentials given to {@code submit/infer.sh} (as {@code --conf}, and in a {@code --properties-file}) are used
 * (an S3-compatible server in this JVM demands them) and appear nowhere a person or a tool reads afterwards: no
 * line the driver logs (at INFO for every logger, Spark's configuration dump included), no Spark event log, no
 * value of the completions table (its error columns) or of job_runs (engine_options and error included), no
 * error or exception text of a failed run.
 */
@Tag("slow")
class SecretsTest {

  static final String BUCKET = "sparkinfer-secrets";
  /** Sentinels: strings that occur nowhere else, so finding one anywhere is a leak. */
  static final String ACCESS = "SENTINELACCESSa7f31c";
  static final String SECRET = "SENTINELSECRETb92e04";
  static final String TOKEN = "SENTINELTOKENc4d8e9";
  static final List<String> SENTINELS = List.of(ACCESS, SECRET, TOKEN);

  static S3Proxy proxy;
  static BlobStoreContext blobs;
  static URI endpoint;
  static Map<String, String> s3aSettings;

  @TempDir
  static Path tmp;

  @BeforeAll
  static void startS3() throws Exception {
    blobs = ContextBuilder.newBuilder("transient").credentials("identity", "credential").build(BlobStoreContext.class);
    endpoint = URI.create("http://127.0.0.1:" + Shell.freePort());
    proxy = S3Proxy.builder().blobStore(blobs.getBlobStore()).endpoint(endpoint)
        .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS, SECRET).build();
    proxy.start();
    for (int i = 0; i < 100 && !"STARTED".equals(proxy.getState()); i++) {
      Thread.sleep(50);
    }
    blobs.getBlobStore().createContainerInLocation(null, BUCKET);
    s3aSettings = new LinkedHashMap<>();
    s3aSettings.put("fs.s3a.endpoint", endpoint.toString());
    s3aSettings.put("fs.s3a.endpoint.region", "us-east-1");
    s3aSettings.put("fs.s3a.path.style.access", "true");
    s3aSettings.put("fs.s3a.connection.ssl.enabled", "false");
    s3aSettings.put("fs.s3a.retry.limit", "1");
    s3aSettings.put("fs.s3a.attempts.maximum", "1");
    // Access and secret key sign every request; S3Proxy answers 501 to requests carrying a session token, so the
    // token is only given, never sent: it still passes through every configuration Spark and the job handle.
    s3aSettings.put("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider");

    Configuration conf = new Configuration();
    s3aSettings.forEach(conf::set);
    credentials().forEach(conf::set);
    FileSystem fs = FileSystem.newInstance(URI.create("s3a://" + BUCKET), conf);
    try {
      fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(TestSupport.tinyModel().toUri()),
          new org.apache.hadoop.fs.Path("s3a://" + BUCKET + "/models/qwen2-tiny"));
      Map<String, String> rows = new LinkedHashMap<>();
      TestSupport.referenceInput().entrySet().stream().limit(3).forEach(e -> rows.put(e.getKey(), e.getValue()));
      rows.put("empty", ""); // an error row: its error_message is written too
      Path local = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), rows);
      fs.copyFromLocalFile(new org.apache.hadoop.fs.Path(local.toUri()),
          new org.apache.hadoop.fs.Path("s3a://" + BUCKET + "/in/prompts.jsonl"));
    } finally {
      fs.close();
    }
  }

  @AfterAll
  static void stopS3() throws Exception {
    if (proxy != null) {
      proxy.stop();
    }
    if (blobs != null) {
      blobs.close();
    }
  }

  private static Map<String, String> credentials() {
    return Map.of("fs.s3a.access.key", ACCESS, "fs.s3a.secret.key", SECRET, "fs.s3a.session.token", TOKEN);
  }

  /** A log4j2 configuration with every logger at INFO, to stderr: more than the job logs by default. */
  private static Path verboseLogConfig() throws IOException {
    return Files.writeString(tmp.resolve("log4j2-info.properties"), """
        rootLogger.level = info
        rootLogger.appenderRef.stderr.ref = stderr
        appender.stderr.type = Console
        appender.stderr.name = stderr
        appender.stderr.target = SYSTEM_ERR
        appender.stderr.layout.type = PatternLayout
        appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
        """);
  }

  /** infer.sh's arguments for a run on local[2], with the event log in {@code events}. */
  private static List<String> infer(Path events, List<String> extra) throws IOException {
    Files.createDirectories(events);
    List<String> cmd = new ArrayList<>(List.of("submit/infer.sh", "--master", "local[2]",
        "--conf", "spark.eventLog.enabled=true", "--conf", "spark.eventLog.dir=" + events.toUri(),
        "--conf", "spark.eventLog.compress=false", "--conf", "spark.logConf=true",
        "--conf", "spark.sql.shuffle.partitions=2"));
    s3aSettings.forEach((k, v) -> cmd.addAll(List.of("--conf", "spark.hadoop." + k + "=" + v)));
    cmd.addAll(List.of("--model", "s3a://" + BUCKET + "/models/qwen2-tiny", "--input",
        "s3a://" + BUCKET + "/in/prompts.jsonl", "--max-new-tokens", "2", "--partitions", "2",
        "--model-cache", tmp.resolve("model-cache").toString()));
    cmd.addAll(extra);
    return cmd;
  }

  private static Shell.Result run(List<String> command) throws IOException {
    return Shell.run(Map.of("SPARKINFER_DRIVER_MEMORY", "1g", "SPARKINFER_LOG_CONFIG", verboseLogConfig().toString()),
        300, command);
  }

  /** Every event log file under {@code events}, as text. */
  private static String eventLogs(Path events) throws IOException {
    StringBuilder sb = new StringBuilder();
    try (Stream<Path> files = Files.walk(events)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        sb.append(Files.readString(f, StandardCharsets.UTF_8));
      }
    }
    return sb.toString();
  }

  /** Every value of every row of a table read back with the credentials, as text. */
  private static String tableText(String path) throws IOException {
    SparkSession spark = TestSupport.spark();
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    s3aSettings.forEach(conf::set);
    credentials().forEach(conf::set);
    try {
      StringBuilder sb = new StringBuilder();
      for (Row r : spark.read().parquet(path).collectAsList()) {
        sb.append(r.toString()).append('\n');
      }
      return sb.toString();
    } finally {
      s3aSettings.keySet().forEach(conf::unset);
      credentials().keySet().forEach(conf::unset);
      FileSystem.closeAll();
    }
  }

  private static void assertNoSentinel(String what, String text) {
    for (String s : SENTINELS) {
      assertThat(text).as("%s holds no credential", what).doesNotContain(s);
    }
  }

  @Test
  void credentialsGivenAsConfAreUsedAndNeitherLoggedNorRecordedNorWrittenToAnyTable() throws IOException {
    Path events = tmp.resolve("events-conf");
    List<String> cmd = infer(events, List.of("--output", "s3a://" + BUCKET + "/out/conf"));
    credentials().forEach((k, v) -> cmd.addAll(1, List.of("--conf", "spark.hadoop." + k + "=" + v)));

    Shell.Result r = run(cmd);

    assertThat(r.status()).as("infer.sh: %s", r).isZero();
    assertThat(r.stdout()).contains("3 ok | 1 error");
    assertThat(r.stderr()).as("the log was verbose enough to see Spark's configuration")
        .contains("Spark configuration:").contains("spark.hadoop.fs.s3a.secret.key=*********(redacted)");
    assertNoSentinel("the driver's log and output", r.stdout() + r.stderr());
    String eventLog = eventLogs(events);
    assertThat(eventLog).as("the event log has the keys, redacted")
        .contains("\"spark.hadoop.fs.s3a.secret.key\":\"*********(redacted)\"")
        .contains("\"spark.hadoop.fs.s3a.access.key\":\"*********(redacted)\"")
        .contains("\"spark.hadoop.fs.s3a.session.token\":\"*********(redacted)\"");
    assertNoSentinel("the event log", eventLog);
    String completions = tableText("s3a://" + BUCKET + "/out/conf");
    assertThat(completions).as("the table was read").contains("empty_prompt");
    assertNoSentinel("the completions table", completions);
    String runs = tableText("s3a://" + BUCKET + "/out/conf/_job_runs");
    assertThat(runs).as("job_runs was read, engine_options included").contains("succeeded").contains("precision");
    assertNoSentinel("job_runs", runs);
  }

  @Test
  void credentialsInAPropertiesFileStayOutOfAFailedRunsErrorsLogsAndRecords() throws IOException {
    StringBuilder props = new StringBuilder(Files.readString(TestSupport.repo().resolve("conf/local.properties")));
    credentials().forEach((k, v) -> props.append("\nspark.hadoop.").append(k).append('=').append(v));
    Path file = Files.writeString(tmp.resolve("with-credentials.properties"), props.append('\n').toString());
    Path events = tmp.resolve("events-file");
    // Every inference attempt fails (the job's test hook), so the run fails with an exception in every log.
    List<String> cmd = infer(events, List.of("--output", "s3a://" + BUCKET + "/out/file", "--properties-file",
        file.toString(), "--conf", InjectedFault.ACTION + "=fail", "--conf", InjectedFault.ATTEMPTS + "=every"));

    Shell.Result failed = run(cmd);

    assertThat(failed.status()).as("infer.sh: %s", failed).isEqualTo(BatchInferenceJob.EXIT_FAILED);
    assertThat(failed.stderr()).contains("error: the job failed").contains("injected fault")
        .as("the exception's stack trace is logged").contains("\tat ");
    assertNoSentinel("the failed run's log, errors and exceptions", failed.stdout() + failed.stderr());
    String eventLog = eventLogs(events);
    assertThat(eventLog).contains("\"spark.hadoop.fs.s3a.secret.key\":\"*********(redacted)\"")
        .as("the task failures are in it").contains("injected fault");
    assertNoSentinel("the failed run's event log", eventLog);
    String runs = tableText("s3a://" + BUCKET + "/out/file/_job_runs");
    assertThat(runs).contains("failed").contains("injected fault");
    assertNoSentinel("the failed run's job_runs row", runs);

    Shell.Result noBucket = run(infer(tmp.resolve("events-nobucket"), List.of("--output", "s3a://no-such-bucket/out",
        "--properties-file", file.toString())));
    assertThat(noBucket.status()).as("infer.sh: %s", noBucket).isNotZero();
    assertThat(noBucket.stderr()).contains("no-such-bucket");
    assertNoSentinel("an S3 error's text", noBucket.stdout() + noBucket.stderr());
  }
}
