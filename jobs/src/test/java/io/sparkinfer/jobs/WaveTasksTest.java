package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The wave's write runs the inference partitions, and the planned error rows only where there are some: their
 * partitions' tasks read the cached plan, so Spark schedules them first, and on an H200's host the empty ones held
 * every core for 0.2 s before the first inference task (bench/results/2026-12-03-e2e-NVIDIA-H200-run27).
 */
class WaveTasksTest {

  @TempDir
  Path tmp;

  @Test
  void aRunWithoutPlanningErrorsWritesOnlyItsInferencePartitions() throws Exception {
    Map<String, String> prompts = Map.of("a", "def add(a, b):", "b", "def sub(a, b):", "c", "class Stack:");
    assertThat(writeStageTasks(prompts)).as("tasks of the wave's writing stage: the 2 inference partitions only")
        .isEqualTo(2);
  }

  @Test
  void aRunWithPlanningErrorsWritesThemToo() throws Exception {
    Map<String, String> prompts = new LinkedHashMap<>(Map.of("a", "def add(a, b):", "b", "def sub(a, b):"));
    prompts.put("empty", "");
    assertThat(writeStageTasks(prompts)).as("the inference partitions and the planned error rows' partitions")
        .isGreaterThan(2);
    SparkSession spark = TestSupport.spark();
    assertThat(TestSupport.answers(spark, tmp.resolve("out").toString())).containsKeys("a", "b", "empty");
  }

  /** The tasks of the last stage of the run's wave (its write), with 2 inference partitions. */
  private int writeStageTasks(Map<String, String> prompts) throws Exception {
    SparkSession spark = TestSupport.spark();
    List<Integer> waveStages = Collections.synchronizedList(new ArrayList<>());
    SparkListener listener = new SparkListener() {
      @Override
      public void onStageSubmitted(SparkListenerStageSubmitted submitted) {
        String description = submitted.properties() == null ? null
            : submitted.properties().getProperty("spark.job.description");
        if (description != null && description.contains("generate and write")) {
          waveStages.add(submitted.stageInfo().numTasks());
        }
      }
    };
    String input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), prompts).toString();
    assertThat(TestSupport.runListened(spark, listener, input, tmp.resolve("out").toString()).status())
        .isEqualTo(JobResult.SUCCEEDED);
    assertThat(waveStages).isNotEmpty();
    return waveStages.get(waveStages.size() - 1);
  }
}
