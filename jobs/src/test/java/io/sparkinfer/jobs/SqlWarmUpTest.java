package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.spark.api.java.JavaSparkContext;
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
