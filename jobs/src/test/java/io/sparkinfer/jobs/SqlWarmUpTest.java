package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.metrics.source.CodegenMetrics;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Spark SQL planned ahead on a daemon thread ({@link SqlWarmUp}): it plans the run's query shapes, runs no Spark job,
 * starts when the setting says (with the first Spark job by default) and not at all when turned off.
 */
class SqlWarmUpTest {

  private final SparkSession spark = TestSupport.spark();

  @AfterEach
  void unset() {
    spark.conf().unset(SqlWarmUp.CONF);
  }

  @Test
  void theRunsQueryShapesPlan() {
    assertThat(SqlWarmUp.plan(spark)).as("every warm-up query planned").isTrue();
  }

  @Test
  void byDefaultItStartsWithTheFirstSparkJobAndStartsNoJobOfItsOwn() throws Exception {
    String setting = spark.conf().get(AdaptiveExecution.SETTING);
    int jobs = TestSupport.sparkJobsDuring(spark, () -> {
      CompletableFuture<Boolean> planned = SqlWarmUp.start(spark);
      Thread.sleep(300);
      assertThat(planned).as("no job yet: not started").isNotDone();
      assertThat(threadsNamed("sparkinfer-sql-warm-up")).isZero();

      assertThat(new JavaSparkContext(spark.sparkContext()).parallelize(List.of(1, 2, 3)).count()).isEqualTo(3); // a job
      assertThat(planned.get(60, TimeUnit.SECONDS)).as("started with the job, every query planned").isTrue();
    });
    assertThat(jobs).as("Spark jobs: the count's alone").isEqualTo(1);
  }

  /**
   * The wave's code, compiled ahead with made-up ranges, is the code a run's wave uses with its own ranges: compiling
   * it again, in another session and with other ranges, compiles nothing more. Neither runs a Spark job.
   */
  @Test
  void theWavesCodeIsCompiledAheadForAnyRanges() throws Exception {
    String setting = spark.conf().get(AdaptiveExecution.SETTING);
    int jobs = TestSupport.sparkJobsDuring(spark, () -> {
      SqlWarmUp.compileWave(spark.newSession(), LengthRanges.of(new TreeMap<>(), 2));
      long compiled = CodegenMetrics.METRIC_COMPILATION_TIME().getCount();
      SqlWarmUp.compileWave(spark.newSession(), LengthRanges.of(new TreeMap<>(Map.of(5, 3L, 9, 1L)), 2));
      assertThat(CodegenMetrics.METRIC_COMPILATION_TIME().getCount()).as("classes compiled the second time")
          .isEqualTo(compiled);
    });
    assertThat(jobs).as("Spark jobs").isZero();
    assertThat(spark.conf().get(AdaptiveExecution.SETTING)).as("the run's session keeps its setting")
        .isEqualTo(setting);
  }

  @Test
  void nowStartsADaemonThreadAtOnce() throws Exception {
    spark.conf().set(SqlWarmUp.CONF, "now");
    CompletableFuture<Boolean> planned = SqlWarmUp.start(spark);
    assertThat(planned.get(60, TimeUnit.SECONDS)).isTrue();
  }

  @Test
  void falseTurnsItOffAndOtherValuesAreRefused() {
    spark.conf().set(SqlWarmUp.CONF, "false");
    assertThat(SqlWarmUp.start(spark)).isNull();
    spark.conf().set(SqlWarmUp.CONF, "later");
    assertThatThrownBy(() -> SqlWarmUp.start(spark)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("first-job, now or false");
  }

  private static long threadsNamed(String name) {
    return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name) && t.isAlive()).count();
  }
}
