package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.Precision;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Out of device memory during the job's batches (simulated in local mode, where the executor is this JVM, at the
 * KV cache allocation a GPU would fail at): each batch is retried at half its width, no row is lost, the tokens
 * are the engine's, and job_runs counts the retries.
 */
@Tag("slow")
class JobOutOfMemoryTest {

  static final int MAX_NEW = 5;

  @TempDir
  Path tmp;

  @Test
  void batchesOutOfMemoryAreRetriedSmallerAndEveryIdIsAnsweredOnce() {
    Map<String, String> prompts = new LinkedHashMap<>(TestSupport.referenceInput());
    for (int i = 0; i < 8; i++) {
      prompts.put("more" + i, "def g" + i + "(y):\n    return y + " + i);
    }
    Map<String, long[]> expected = new HashMap<>();
    List<GenerationRequest> requests = new ArrayList<>();
    prompts.forEach((id, p) -> requests.add(GenerationRequest.greedy(id, p, MAX_NEW)));
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(TestSupport.tinyModel(), Precision.FP32, "cpu"))) {
      for (Completion c : engine.generate(requests, 2)) {
        expected.put(c.id(), c.outputTokenIds());
      }
    }
    SparkSession spark = TestSupport.spark();
    Path input = TestSupport.writeJsonl(tmp.resolve("in/prompts.jsonl"), prompts);
    String out = tmp.resolve("out").toString();
    System.setProperty("sparkinfer.test.oomAboveRows", "2");
    JobResult result;
    try {
      result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
          "--input", input.toString(), "--output", out, "--max-new-tokens", "" + MAX_NEW, "--batch-size", "8",
          "--precision", "fp32", "--partitions", "1"));
    } finally {
      System.clearProperty("sparkinfer.test.oomAboveRows");
    }
    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).containsExactlyInAnyOrderElementsOf(prompts.keySet());
    for (Row r : written) {
      assertThat(r.<String>getAs("error_code")).as(r.<String>getAs("id")).isNull();
      assertThat(r.<scala.collection.Seq<Long>>getAs("output_token_ids").mkString(","))
          .as("tokens of %s", r.<String>getAs("id")).isEqualTo(join(expected.get(r.<String>getAs("id"))));
    }
    assertThat(result.oomRetries()).as("the task's batch of 8: 8 -> 4 -> 2, later batches stay at 2").isEqualTo(2);
    Row run = spark.read().parquet(out + "/_job_runs").first();
    assertThat(run.<Long>getAs("oom_retries")).isEqualTo(result.oomRetries());
    assertThat(run.<Long>getAs("ok_rows")).isEqualTo(prompts.size());
    assertThat(result.summary()).contains("out of memory, retried at half width");
  }

  private static String join(long[] ids) {
    StringBuilder sb = new StringBuilder();
    for (long id : ids) {
      sb.append(sb.length() == 0 ? "" : ",").append(id);
    }
    return sb.toString();
  }
}
