package io.sparkinfer.jobs;

import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Spark SQL's first queries in a JVM are slow to plan: analyzing, optimizing and planning them loads and initializes
 * much of Catalyst, about 3 s of the driver's thread before the run's planning job on an H200's host (RunPlan's notes).
 * A daemon thread plans, without running, queries of the shapes the run plans (the planned rows, their summary, the
 * requests arranged for inference) over one made-up row, so that the loading is done, or under way, when the run's
 * own queries need it, and compiles the code of the planning job and of the inference wave ({@link #compilePlanning},
 * {@link #compileWave}; in local mode the wave in place first, {@link #compileWaveInPlace}). It runs no Spark job; a
 * failure is logged at debug level and changes nothing.
 *
 * <p>When it starts is the application's Spark setting {@value #CONF}: {@code first-job} (the default) when the run's
 * first Spark job starts (the input's line count, or the planning job), while the driver's thread waits for that job;
 * {@code now} at once; {@code false} never. On an H200's host the first inference task came 1.3 s earlier with
 * {@code first-job} than with {@code false} (bench/results/2026-12-02-e2e-NVIDIA-H200-run16); started with the run, the
 * thread slowed the driver's own way to its first job and gained 0.4 s (run15). It is off where RAPIDS' plugin is in
 * {@code spark.plugins}: RAPIDS plans queries its own way, and would explain the made-up queries in the job's log.
 */
final class SqlWarmUp {

  private static final Logger LOG = LoggerFactory.getLogger(SqlWarmUp.class);

  /** Spark setting: when the warm-up starts, {@code first-job}, {@code now} or {@code false} (never). */
  static final String CONF = "spark.sparkinfer.sql-warm-up";

  /** The made-up queries' Java steps (planning, inference): never run, so they give nothing. */
  private static final MapPartitionsFunction<Row, Row> NO_ROWS = rows -> Collections.emptyIterator();

  private SqlWarmUp() {}

  /**
   * Starts the warm-up as {@value #CONF} says: the application's Spark conf ({@code --conf} or a properties file at
   * submit, or the builder's {@code config} where a program makes the SparkContext). Not the session's: reading that
   * builds the session's state, which a run builds later anyway. Built before the input's line count, it held the
   * count back: the count started 0.86-0.95 s after the application's start with the setting read from the Spark conf,
   * 0.85-1.31 s with it read from the session (an H200's host, bench/results/2026-12-03-e2e-NVIDIA-H200-run35).
   *
   * @return whether the warm-up planned every query, once it has run; null when it is off
   */
  static CompletableFuture<Boolean> start(SparkSession spark) {
    return start(spark, spark.sparkContext().getConf().get(CONF, "first-job"));
  }

  /** Starts the warm-up as {@code setting} says ({@value #CONF}'s values). */
  static CompletableFuture<Boolean> start(SparkSession spark, String setting) {
    String when = setting.trim().toLowerCase(Locale.ROOT);
    if (RapidsPlugin.configured(spark.sparkContext().getConf()) && !when.equals("now")) {
      return null;
    }
    switch (when) {
      case "false":
        return null;
      case "now":
        return startThread(spark);
      case "first-job":
        CompletableFuture<Boolean> planned = new CompletableFuture<>();
        spark.sparkContext().addSparkListener(new SparkListener() {
          private final AtomicBoolean started = new AtomicBoolean();

          @Override
          public void onJobStart(SparkListenerJobStart job) {
            if (started.compareAndSet(false, true)) {
              spark.sparkContext().removeSparkListener(this);
              startThread(spark).whenComplete((ok, e) -> planned.complete(ok != null && ok));
            }
          }
        });
        return planned;
      default:
        throw new IllegalArgumentException(CONF + " takes first-job, now or false, got '" + when + "'");
    }
  }

  private static CompletableFuture<Boolean> startThread(SparkSession spark) {
    CompletableFuture<Boolean> planned = new CompletableFuture<>();
    Thread t = new Thread(() -> planned.complete(plan(spark)), "sparkinfer-sql-warm-up");
    t.setDaemon(true);
    t.start();
    return planned;
  }

  /**
   * Plans (analyzes, optimizes, makes physical plans of) queries shaped like the run's, and generates and compiles the
   * code of its planning job and its inference wave; runs none.
   *
   * @return whether every query planned
   */
  static boolean plan(SparkSession spark) {
    try {
      compilePlanning(spark.newSession()); // first: the run's driver needs it first
      boolean inPlace = RunPlan.inPlaceMode(spark); // the run's likely wave, as RunPlan arranges it
      LengthRanges ranges = RunPlan.cutsRanges(false, spark) ? LengthRanges.of(new TreeMap<>(), 2) : null; // the run's
      Dataset<Row> planned = madeUpPlan(spark);
      PlanSummary.counted(planned).queryExecution().executedPlan();
      wave(planned, ranges, inPlace).unionByName(Completions.errorRows(planned, "model", "run")).queryExecution()
          .executedPlan(); // the write's, with planning errors
      if (inPlace) {
        compileWaveInPlace(spark.newSession());
      }
      if (ranges != null) { // in local mode too: a run whose prompts repeat, say, is ranged there
        compileWave(spark.newSession(), ranges);
      }
      return true;
    } catch (RuntimeException | LinkageError e) {
      LOG.debug("Spark SQL's warm-up did not finish (nothing depends on it)", e);
      return false;
    }
  }

  /**
   * Generates and compiles the code of the wave's query (without planning errors, the usual run), as the driver and
   * the inference tasks would before their first request: Spark keeps compiled code for the JVM, so theirs is then
   * ready. Making the query's RDD runs no Spark job: its shuffle's partitions are named ({@link LengthRanges}), and
   * {@code session} (a session of the warm-up's own) plans without adaptive execution, which would run the shuffle's
   * map stage. On an H200's host the first inference task came at 3.7-3.8 s with it, against 4.2-4.8 s planned only
   * (bench/results/2026-12-03-e2e-NVIDIA-H200-run30).
   */
  static void compileWave(SparkSession session, LengthRanges ranges) {
    session.conf().set(AdaptiveExecution.SETTING, "false");
    wave(madeUpPlan(session), ranges, false).queryExecution().toRdd();
  }

  /**
   * {@link #compileWave} for a wave arranged in place ({@link RunPlan#inPlaceMode}): one stage that reads the cached
   * plan, so the code is compiled over a made-up plan cached as the run's is (as {@link #compilePlanning} does), which
   * runs no job and is left uncached.
   */
  static void compileWaveInPlace(SparkSession session) {
    session.conf().set(AdaptiveExecution.SETTING, "false");
    Dataset<Row> planned = madeUpCachedPlan(session);
    try {
      wave(planned, null, true).queryExecution().toRdd();
    } finally {
      planned.unpersist(false);
    }
  }

  /**
   * Generates and compiles the code that the run's driver compiles before its planning job (the cached plan's building,
   * the summary's scan of it: 0.24 s on an H200's host, 0.23 s of it Janino's first compile in the JVM,
   * bench/results/2026-12-03-e2e-NVIDIA-H200-run30's prof-1), over a made-up input read from an RDD as a JSONL or CSV
   * input is. The made-up plan is cached only while its RDD is made, which runs no job.
   */
  static void compilePlanning(SparkSession session) {
    session.conf().set(AdaptiveExecution.SETTING, "false");
    Dataset<Row> planned = madeUpCachedPlan(session);
    try {
      PlanSummary.counted(planned).queryExecution().toRdd();
    } finally {
      planned.unpersist(false);
    }
  }

  /** Planned rows over one made-up input row read from an RDD, as a JSONL or CSV input is, cached as the run's. */
  private static Dataset<Row> madeUpCachedPlan(SparkSession session) {
    JavaRDD<Row> one = JavaSparkContext.fromSparkContext(session.sparkContext())
        .parallelize(List.of(madeUpInputRow()), 1);
    return session.createDataFrame(one, Tables.INPUT)
        .mapPartitions(NO_ROWS, Encoders.row(Tables.PLANNED)).persist(StorageLevel.MEMORY_AND_DISK());
  }

  /** Planned rows over one made-up input row, as {@link PromptPlanner}'s. */
  private static Dataset<Row> madeUpPlan(SparkSession spark) {
    return spark.createDataFrame(List.of(madeUpInputRow()), Tables.INPUT)
        .mapPartitions(NO_ROWS, Encoders.row(Tables.PLANNED));
  }

  /** One input row ({@link Tables#INPUT}). */
  private static Row madeUpInputRow() {
    return RowFactory.create("id", "prompt", null, null, "file:1");
  }

  /**
   * Completion rows of {@code planned}, as the run's wave makes them ({@code --dedup}, the default, on): ranged, or
   * {@code inPlace}.
   */
  private static Dataset<Row> wave(Dataset<Row> planned, LengthRanges ranges, boolean inPlace) {
    Dataset<Row> requests = Completions.requests(planned);
    return (inPlace ? Completions.arrangeInPlace(requests, true) : Completions.arrange(requests, 2, true, ranges))
        .mapPartitions(NO_ROWS, Encoders.row(Tables.COMPLETIONS)); // as PartitionInference's
  }
}
