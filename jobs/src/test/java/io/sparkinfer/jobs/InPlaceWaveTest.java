package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * In local mode a run's wave is arranged where planning left its rows ({@link RunPlan#inPlaceMode}): one stage, no range
 * shuffle, and the same answers as a ranged wave. A run with {@code --dedup} whose prompts repeat, or one given
 * {@code --partitions}, is ranged as before (where {@link RepeatedPrompts} merges the repeats of a range).
 */
class InPlaceWaveTest {

  @TempDir
  Path tmp;

  private static final Map<String, String> DISTINCT = prompts("def add(a, b):", "def sub(a, b):", "class Stack:",
      "import os", "for i in range(3):", "def main():");

  @Test
  void aLocalRunsWaveIsOneStageWithTheRangedWavesAnswers() throws Exception {
    String input = twoFiles(DISTINCT);
    assertThat(waveStages(input, "in-place")).as("the wave's stages in place: inference and write, no range shuffle")
        .isEqualTo(1);
    assertThat(waveStages(input, "ranged", "--partitions", "2"))
        .as("the wave's stages ranged: the shuffle's map stage, then inference").isEqualTo(2);
    SparkSession spark = TestSupport.spark();
    Map<String, List<Object>> answers = TestSupport.answers(spark, tmp.resolve("in-place").toString());
    assertThat(answers).containsOnlyKeys(DISTINCT.keySet());
    assertThat(answers).isEqualTo(TestSupport.answers(spark, tmp.resolve("ranged").toString()));
  }

  @Test
  void repeatedPromptsUnderDedupMeetInARangedWave() throws Exception {
    Map<String, String> prompts = new LinkedHashMap<>(DISTINCT);
    prompts.put("again", DISTINCT.get("p0"));
    prompts.put("once more", DISTINCT.get("p0"));
    String input = twoFiles(prompts);
    assertThat(waveStages(input, "dedup")).as("ranged, so the repeats meet in one partition").isEqualTo(2);
    SparkSession spark = TestSupport.spark();
    Map<String, List<Object>> answers = TestSupport.answers(spark, tmp.resolve("dedup").toString());
    assertThat(answers).containsOnlyKeys(prompts.keySet());
    assertThat(answers.get("again")).isEqualTo(answers.get("p0")).isEqualTo(answers.get("once more"));

    assertThat(waveStages(input, "no-dedup", "--dedup=false")).as("without --dedup, in place").isEqualTo(1);
    assertThat(TestSupport.answers(spark, tmp.resolve("no-dedup").toString())).isEqualTo(answers);
  }

  /**
   * The prompts in two JSONL files of one directory, the first half in each: planning reads them as two splits, as
   * many as the wave's partitions in the tests' local[2] session (one small file would be one split).
   */
  private String twoFiles(Map<String, String> prompts) {
    Map<String, String> first = new LinkedHashMap<>();
    Map<String, String> second = new LinkedHashMap<>();
    prompts.forEach((id, prompt) -> (first.size() < prompts.size() / 2 ? first : second).put(id, prompt));
    TestSupport.writeJsonl(tmp.resolve("in").resolve("a.jsonl"), first);
    TestSupport.writeJsonl(tmp.resolve("in").resolve("b.jsonl"), second);
    return tmp.resolve("in").toString();
  }

  private static Map<String, String> prompts(String... texts) {
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < texts.length; i++) {
      m.put("p" + i, texts[i]);
    }
    return m;
  }

  /** Runs the job into {@code output} under tmp and returns the stages of its wave's Spark job. */
  private int waveStages(String input, String output, String... more) throws Exception {
    SparkSession spark = TestSupport.spark();
    List<Integer> stages = Collections.synchronizedList(new ArrayList<>());
    SparkListener listener = new SparkListener() {
      @Override
      public void onJobStart(SparkListenerJobStart job) {
        String description = job.properties() == null ? null : job.properties().getProperty("spark.job.description");
        if (description != null && description.contains("generate and write")) {
          stages.add(job.stageInfos().size());
        }
      }
    };
    spark.sparkContext().listenerBus().waitUntilEmpty();
    spark.sparkContext().addSparkListener(listener);
    try {
      JobResult result = BatchInference.run(spark, TestSupport.options(TestSupport.with(new String[] {"--model",
          TestSupport.tinyModel().toString(), "--input", input, "--output", tmp.resolve(output).toString(),
          "--max-new-tokens", "2"}, more)));
      assertThat(result.status()).isEqualTo(JobResult.SUCCEEDED);
      spark.sparkContext().listenerBus().waitUntilEmpty();
    } finally {
      spark.sparkContext().removeSparkListener(listener);
    }
    assertThat(stages).as("the wave's jobs").hasSize(1);
    return stages.get(0);
  }
}
