package io.sparkinfer.jobs;

import java.util.function.Supplier;
import org.apache.spark.sql.SparkSession;

/**
 * Spark SQL's adaptive query execution, turned off for the queries a piece of work plans and the session's setting put
 * back after it. Adaptive execution runs each shuffle stage of a query as a Spark job of its own and plans the query
 * again between them; the job's queries have nothing for it to adapt: the planning summary's id groups (an id's one
 * row or few, past its bound on the ids' hashes) have no skew to split ({@link PlanSummary}), and the inference wave's
 * range partitions are a number the run chose, which adaptive execution keeps anyway ({@link BatchInference}). The
 * setting is the session's: a query another thread plans on the same session meanwhile plans without it too.
 */
final class AdaptiveExecution {

  /** Spark SQL's setting for adaptive query execution. */
  static final String SETTING = "spark.sql.adaptive.enabled";

  private AdaptiveExecution() {}

  /** What {@code work} gives, its queries planned without adaptive execution. */
  static <T> T off(SparkSession spark, Supplier<T> work) {
    String before = spark.conf().get(SETTING); // its default where the session sets none
    spark.conf().set(SETTING, "false");
    try {
      return work.get();
    } finally {
      spark.conf().set(SETTING, before);
    }
  }

  /** Runs {@code work}, its queries planned without adaptive execution. */
  static void off(SparkSession spark, Runnable work) {
    off(spark, () -> {
      work.run();
      return null;
    });
  }
}
