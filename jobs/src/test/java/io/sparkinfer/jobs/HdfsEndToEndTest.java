package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job reading its model and prompts from, and writing its tables to, hdfs:// on an HDFS in this JVM
 * (Hadoop's MiniDFSCluster: a NameNode and a DataNode on 127.0.0.1, from the shaded hadoop-client-minicluster
 * at Spark's Hadoop version), checked against the same job on local files.
 */
@Tag("slow")
class HdfsEndToEndTest {

  static final int MAX_NEW = 8;

  @TempDir
  static Path dfsDir;

  @TempDir
  Path tmp;

  static MiniDFSCluster cluster;
  static String root;

  @BeforeAll
  static void startHdfs() throws IOException {
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, dfsDir.toString());
    conf.set("dfs.namenode.http-address", "127.0.0.1:0");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    conf.setInt("dfs.replication", 1);
    cluster = new MiniDFSCluster.Builder(conf, dfsDir.toFile()).numDataNodes(1).format(true).build();
    cluster.waitClusterUp();
    root = cluster.getURI().toString(); // hdfs://127.0.0.1:<port> or hdfs://localhost:<port>
    assertThat(root).startsWith("hdfs://");
  }

  @AfterAll
  static void stopHdfs() throws IOException {
    FileSystem.closeAll(); // the shared session's cached hdfs:// clients point at this cluster
    if (cluster != null) {
      cluster.shutdown(true);
    }
  }

  @Test
  void readsPromptsFromAndWritesCompletionsToHdfsAsOnLocalFiles() throws IOException {
    SparkSession spark = TestSupport.spark();
    Map<String, String> rows = new LinkedHashMap<>(TestSupport.referenceInput());
    rows.put("dup-of-p3", rows.get("p3"));
    rows.put("empty", "");
    Path localPrompts = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), rows);

    FileSystem hdfs = FileSystem.get(URI.create(root), spark.sparkContext().hadoopConfiguration());
    assertThat(hdfs.getScheme()).isEqualTo("hdfs");
    String prompts = root + "/in/prompts.jsonl";
    String model = root + "/models/qwen2-tiny";
    hdfs.copyFromLocalFile(new org.apache.hadoop.fs.Path(localPrompts.toUri()), new org.apache.hadoop.fs.Path(prompts));
    hdfs.copyFromLocalFile(new org.apache.hadoop.fs.Path(TestSupport.tinyModel().toUri()),
        new org.apache.hadoop.fs.Path(model));

    String out = root + "/out/completions";
    JobResult onHdfs = BatchInference.run(spark, TestSupport.options("--model", model, "--input", prompts,
        "--output", out, "--max-new-tokens", "" + MAX_NEW, "--batch-size", "2", "--partitions", "2",
        "--device", "auto"));
    assertThat(onHdfs.succeeded()).isTrue();
    assertThat(onHdfs.rows()).isEqualTo((long) rows.size());

    String localOut = tmp.resolve("local-out").toString();
    JobResult onLocal = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
        "--input", localPrompts.toString(), "--output", localOut, "--max-new-tokens", "" + MAX_NEW,
        "--batch-size", "2", "--partitions", "2", "--device", "auto"));
    assertThat(onLocal.succeeded()).isTrue();

    // What is in HDFS, read back through the NameNode: committed part files, the job's _SUCCESS, _job_runs.
    List<String> names = Arrays.stream(hdfs.listStatus(new org.apache.hadoop.fs.Path(out)))
        .map(s -> s.getPath().getName()).toList();
    assertThat(names).contains("_SUCCESS", "_job_runs").anyMatch(n -> n.startsWith("part-") && n.endsWith(".parquet"));
    assertThat(names).as("no uncommitted task output left").doesNotContain("_temporary");
    FileStatus[] runFiles = hdfs.listStatus(new org.apache.hadoop.fs.Path(out + "/_job_runs"));
    assertThat(runFiles).anyMatch(s -> s.getPath().getName().endsWith(".parquet"));

    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("each input id exactly once in HDFS")
        .containsExactlyInAnyOrderElementsOf(rows.keySet());
    Map<String, Row> local = new HashMap<>();
    spark.read().parquet(localOut).collectAsList().forEach(r -> local.put(r.getAs("id"), r));
    assertThat(local.keySet()).containsExactlyInAnyOrderElementsOf(rows.keySet());
    for (Row r : written) {
      String id = r.getAs("id");
      Row l = local.get(id);
      assertThat(r.<String>getAs("completion")).as("completion of %s", id).isEqualTo(l.<String>getAs("completion"));
      assertThat(r.<Long>getList(r.fieldIndex("output_token_ids"))).as("output_token_ids of %s", id)
          .isEqualTo(l.<Long>getList(l.fieldIndex("output_token_ids")));
      assertThat(r.<String>getAs("finish_reason")).as("finish_reason of %s", id)
          .isEqualTo(l.<String>getAs("finish_reason"));
      assertThat(r.<String>getAs("error_code")).as("error_code of %s", id).isEqualTo(l.<String>getAs("error_code"));
      assertThat(r.<String>getAs("model")).isEqualTo(model);
    }
    // The comparison means something: real completions, and the planning error path taken.
    assertThat(local.get("p0").<Integer>getAs("completion_tokens")).isPositive();
    assertThat(local.get("empty").<String>getAs("finish_reason")).isEqualTo("error");

    List<Row> runs = spark.read().parquet(out + "/_job_runs").collectAsList();
    assertThat(runs).hasSize(1);
    Row run = runs.get(0);
    assertThat(run.<String>getAs("run_id")).isEqualTo(onHdfs.runId());
    assertThat(run.<String>getAs("status")).isEqualTo("succeeded");
    assertThat(run.<String>getAs("input")).isEqualTo(prompts);
    assertThat(run.<String>getAs("output")).isEqualTo(out);
    assertThat(run.<Long>getAs("rows")).isEqualTo((long) rows.size());
    assertThat(run.<Long>getAs("ok_rows")).isEqualTo(rows.size() - 1L);
    assertThat(run.<String>getAs("device")).as("what --device auto resolved to on a CPU").isEqualTo("cpu");
  }
}
