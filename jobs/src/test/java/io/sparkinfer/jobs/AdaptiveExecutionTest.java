package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Adaptive query execution off for the job's own queries ({@link AdaptiveExecution}): the session's setting comes back
 * as it was, also when the work fails, and a run's inference wave is one job that infers and writes (with adaptive
 * execution, the range shuffle's map stage was a job of its own before it; and the range partitioner sampled the
 * requests in a job of its own until planning's count of their lengths cut the ranges, {@link LengthRanges}).
 */
class AdaptiveExecutionTest {

  @TempDir
  Path tmp;

  @Test
  void theSessionsSettingComesBackAsItWas() {
    SparkSession spark = TestSupport.spark();
    String initially = spark.conf().get(AdaptiveExecution.SETTING);
    try {
      for (String setting : new String[] {"true", "false"}) {
        spark.conf().set(AdaptiveExecution.SETTING, setting);
        assertThat(AdaptiveExecution.off(spark, () -> spark.conf().get(AdaptiveExecution.SETTING)))
            .as("inside").isEqualTo("false");
        assertThat(spark.conf().get(AdaptiveExecution.SETTING)).as("after").isEqualTo(setting);
        assertThatThrownBy(() -> AdaptiveExecution.off(spark, () -> {
          throw new IllegalStateException("failed");
        })).hasMessage("failed");
        assertThat(spark.conf().get(AdaptiveExecution.SETTING)).as("after a failure").isEqualTo(setting);
      }
    } finally {
      spark.conf().set(AdaptiveExecution.SETTING, initially);
    }
  }

  @Test
  void aWaveIsOneJobThatInfersAndWrites() throws Exception {
    SparkSession spark = TestSupport.spark();
    String initially = spark.conf().get(AdaptiveExecution.SETTING);
    spark.conf().set(AdaptiveExecution.SETTING, "true"); // Spark's default: the run turns it off for its wave
    List<String> waveJobs = Collections.synchronizedList(new ArrayList<>());
    SparkListener listener = new SparkListener() {
      @Override
      public void onJobStart(SparkListenerJobStart start) {
        String description = start.properties() == null ? null
            : start.properties().getProperty("spark.job.description");
        if (description != null && description.contains("generate and write")) {
          waveJobs.add(description);
        }
      }
    };
    String input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), Map.of("a", "def add(a, b):",
        "b", "def sub(a, b):", "c", "class Stack:", "d", "import os")).toString();
    try {
      assertThat(TestSupport.runListened(spark, listener, input, tmp.resolve("out").toString()).status())
          .isEqualTo(JobResult.SUCCEEDED);
    } finally {
      spark.conf().set(AdaptiveExecution.SETTING, initially);
    }
    assertThat(waveJobs).as("the wave's inference and write, no sampling job before it").hasSize(1);
  }
}
