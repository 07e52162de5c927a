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
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The job under each kind of layout on the CPU (every replica and shard on the one device): decode threads and
 * replicas (several generators, each its own batches, rows still in any order but each id once), a tensor-parallel
 * and a pipeline-parallel replica; every row gives the engine's greedy tokens and names the layout it ran, and
 * job_runs records it.
 */
@Tag("slow")
class JobLayoutsTest {

  static final int MAX_NEW = 6;

  @TempDir
  Path tmp;

  @ParameterizedTest(name = "--layout {0}")
  @CsvSource(delimiter = ';', value = {"threads=3; replicas=1,tp=1,pp=1,threads=3",
      "replicas=2,threads=2; replicas=2,tp=1,pp=1,threads=2", "tp=2; replicas=1,tp=2,pp=1,threads=1",
      "pp=2,threads=2; replicas=1,tp=1,pp=2,threads=2"})
  void everyLayoutGivesTheEnginesGreedyTokensAndNamesItself(String layout, String label) {
    Map<String, String> prompts = new LinkedHashMap<>(TestSupport.referenceInput());
    for (int i = 0; i < 12; i++) {
      prompts.put("extra" + i, "def f" + i + "(x):\n    return x * " + i);
    }
    Map<String, Completion> expected = greedy(prompts);
    SparkSession spark = TestSupport.spark();
    ExecutorEngines.closeAll(); // an engine an earlier test left loaded (TextGenerator's) would hide this load
    Path input = TestSupport.writeJsonl(tmp.resolve("in/prompts.jsonl"), prompts);
    String out = tmp.resolve("out").toString();
    JobResult result = BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(),
        "--input", input.toString(), "--output", out, "--max-new-tokens", "" + MAX_NEW, "--batch-size", "2",
        "--partitions", "1", "--precision", "fp32", "--layout", layout));

    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).containsExactlyInAnyOrderElementsOf(prompts.keySet());
    for (Row r : written) {
      Completion c = expected.get(r.<String>getAs("id"));
      assertThat(r.<scala.collection.Seq<Long>>getAs("output_token_ids").mkString(","))
          .as("%s: tokens of %s", layout, r.<String>getAs("id")).isEqualTo(join(c.outputTokenIds()));
      assertThat(r.<String>getAs("layout")).isEqualTo(label);
      assertThat(r.<String>getAs("device")).as("every shard shares the one CPU").isEqualTo("cpu");
    }
    Row run = spark.read().parquet(out + "/_job_runs").first();
    assertThat(run.<String>getAs("layout")).isEqualTo(label);
    assertThat(result.okRows()).isEqualTo(prompts.size());
    assertThat(result.loadsByExecutor()).as("replicas on one device share its engine: one load")
        .containsExactly(Map.entry("driver", 1));
  }

  private static Map<String, Completion> greedy(Map<String, String> prompts) {
    List<GenerationRequest> requests = new ArrayList<>();
    prompts.forEach((id, p) -> requests.add(GenerationRequest.greedy(id, p, MAX_NEW)));
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(TestSupport.tinyModel(), Precision.FP32, "cpu"))) {
      Map<String, Completion> out = new HashMap<>();
      engine.generate(requests, 4).forEach(c -> out.put(c.id(), c));
      return out;
    }
  }

  private static String join(long[] ids) {
    StringBuilder sb = new StringBuilder();
    for (long id : ids) {
      sb.append(sb.length() == 0 ? "" : ",").append(id);
    }
    return sb.toString();
  }
}
