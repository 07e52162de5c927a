package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.Field;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.metrics.source.CodegenMetrics;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.junit.jupiter.api.Test;

/**
 * Spark SQL planned ahead on a daemon thread ({@link SqlWarmUp}): it plans the run's query shapes, runs no Spark job,
 * starts when the setting says (with the first Spark job by default) and not at all when turned off.
 */
class SqlWarmUpTest {

  private final SparkSession spark = TestSupport.spark();

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
   * The wave's code, compiled ahead with made-up ranges, is the code a wave of other rows needs with other ranges:
   * making that wave's RDD, in another session as the run's is, compiles nothing more (on a cached plan, as the run's,
   * only its first stage's code differs). Neither runs a Spark job.
   */
  @Test
  void theWavesCodeIsCompiledAheadForAnyRanges() throws Exception {
    String setting = spark.conf().get(AdaptiveExecution.SETTING);
    SparkSession run = spark.newSession();
    run.conf().set(AdaptiveExecution.SETTING, "false"); // as the run's wave is planned
    int jobs = TestSupport.sparkJobsDuring(spark, () -> {
      SqlWarmUp.compileWave(spark.newSession(), LengthRanges.of(new TreeMap<>(), 2));
      long compiled = CodegenMetrics.METRIC_COMPILATION_TIME().getCount();
      MapPartitionsFunction<Row, Row> none = rows -> Collections.emptyIterator();
      Dataset<Row> planned = run.createDataFrame(List.of(RowFactory.create("a", "def f():", null, null, "in:1"),
          RowFactory.create("b", "import os", null, null, "in:2")), Tables.INPUT)
          .mapPartitions(none, Encoders.row(Tables.PLANNED)); // planned rows, as the warm-up's made-up ones
      LengthRanges ranges = LengthRanges.of(new TreeMap<>(Map.of(5, 1L, 9, 1L)), 2);
      Completions.arrange(Completions.requests(planned), 2, true, ranges)
          .mapPartitions(none, Encoders.row(Tables.COMPLETIONS)).queryExecution().toRdd();
      assertThat(CodegenMetrics.METRIC_COMPILATION_TIME().getCount()).as("classes the other wave compiled")
          .isEqualTo(compiled);
    });
    assertThat(jobs).as("Spark jobs").isZero();
    assertThat(spark.conf().get(AdaptiveExecution.SETTING)).as("the run's session keeps its setting")
        .isEqualTo(setting);
  }

  /**
   * A wave arranged in place (local mode, {@link RunPlan#inPlaceMode}) is one stage over the cached plan: its code,
   * compiled ahead over a made-up cached plan, is the code the run's wave needs over its own (a real planner, another
   * session, more rows). Neither runs a Spark job, and the made-up plan leaves nothing cached.
   */
  @Test
  void theWavesCodeIsCompiledAheadInPlace() throws Exception {
    MapPartitionsFunction<Row, Row> none = rows -> Collections.emptyIterator();
    assertCompiledAhead(SqlWarmUp::compileWaveInPlace, "import os", planned -> Completions.arrangeInPlace(
        Completions.requests(planned), true).mapPartitions(none, Encoders.row(Tables.COMPLETIONS)), "wave");
  }

  /**
   * The planning job's code, compiled ahead over a made-up input, is the code the run's driver needs for its planned
   * rows and their summary: building the run's own (a real planner, another session, more rows) compiles nothing more.
   * Neither runs a Spark job, and the made-up plan leaves nothing cached.
   */
  @Test
  void thePlanningJobsCodeIsCompiledAhead() throws Exception {
    assertCompiledAhead(SqlWarmUp::compilePlanning, "", PlanSummary::counted, "planning"); // as PlanSummary.of makes it
  }

  /**
   * Compiles ahead with {@code ahead} (in a session of the warm-up's own), then makes the RDD of {@code query} over a
   * run's cached plan (a real planner over two rows, the second prompt {@code secondPrompt}, in another session, as a
   * run's), and checks that this compiled nothing more, that neither ran a Spark job, and that nothing is left cached.
   */
  private void assertCompiledAhead(Consumer<SparkSession> ahead, String secondPrompt,
      Function<Dataset<Row>, Dataset<Row>> query, String what) throws Exception {
    SparkSession run = spark.newSession();
    run.conf().set(AdaptiveExecution.SETTING, "false");
    JobOptions o = TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input", "x", "--output", "y");
    ModelLocation model = ModelLocation.check(o.model(), new Configuration(false), null);
    boolean nothingCached = spark.sharedState().cacheManager().isEmpty();
    int jobs = TestSupport.sparkJobsDuring(spark, () -> {
      ahead.accept(spark.newSession());
      long compiled = CodegenMetrics.METRIC_COMPILATION_TIME().getCount();
      Dataset<Row> input = run.createDataFrame(new JavaSparkContext(run.sparkContext()).parallelize(List.of(
          RowFactory.create("a", "def f():", null, null, "in.jsonl:1"),
          RowFactory.create("b", secondPrompt, null, null, "in.jsonl:2")), 2), Tables.INPUT);
      Dataset<Row> planned = Completions.plan(input, model, o, InferenceStageProfile.forRun(run, 0, null))
          .persist(StorageLevel.MEMORY_AND_DISK());
      try {
        query.apply(planned).queryExecution().toRdd();
        assertThat(CodegenMetrics.METRIC_COMPILATION_TIME().getCount()).as("classes the run's %s compiled", what)
            .isEqualTo(compiled);
      } finally {
        planned.unpersist();
      }
    });
    assertThat(jobs).as("Spark jobs").isZero();
    assertThat(spark.sharedState().cacheManager().isEmpty()).as("nothing left cached").isEqualTo(nothingCached);
  }

  @Test
  void nowStartsADaemonThreadAtOnce() throws Exception {
    CompletableFuture<Boolean> planned = SqlWarmUp.start(spark, "now");
    assertThat(planned.get(60, TimeUnit.SECONDS)).isTrue();
  }

  @Test
  void falseTurnsItOffAndOtherValuesAreRefused() {
    assertThat(SqlWarmUp.start(spark, " False ")).isNull();
    assertThatThrownBy(() -> SqlWarmUp.start(spark, "later")).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("first-job, now or false");
  }

  /**
   * The setting is the application's (its Spark conf), read without building the session's state: a run builds that
   * later, and built before the input's line count it held the count back. A session's own value is not read.
   */
  @Test
  void theSettingIsTheApplicationsAndReadingItLeavesTheSessionsStateUnbuilt() throws Exception {
    SparkSession session = spark.newSession(); // its state is built when first needed
    session.conf(); // ... as here: the session's runtime setting, below, builds it
    session.conf().set(SqlWarmUp.CONF, "false");
    SparkSession fresh = spark.newSession();
    Field state = fresh.getClass().getDeclaredField("sessionState"); // Scala's lazy val: null until built
    state.setAccessible(true);
    assertThat(state.get(fresh)).as("a new session's state").isNull();

    CompletableFuture<Boolean> started = SqlWarmUp.start(fresh);
    assertThat(state.get(fresh)).as("the session's state, once the setting is read").isNull();
    CompletableFuture<Boolean> alsoStarted = SqlWarmUp.start(session);
    assertThat(alsoStarted).as("a session set to false: the application's first-job applies").isNotNull();
    assertThat(new JavaSparkContext(spark.sparkContext()).parallelize(List.of(1, 2)).count()).isEqualTo(2); // a job
    assertThat(started.get(60, TimeUnit.SECONDS)).as("started with the first job").isTrue();
    assertThat(alsoStarted.get(60, TimeUnit.SECONDS)).as("the other session's, started with it").isTrue();
  }

  private static long threadsNamed(String name) {
    return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name) && t.isAlive()).count();
  }
}
