package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.max;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;

/**
 * What planning counted over the planned rows ({@link Tables#PLANNED}), in one Spark query that groups the rows by
 * id and adds the groups up: the rows, those that cannot run and those the input could not give, the ids given to
 * more than one row, and the longest prompt that can run. The run used to count in one query (an aggregate) and
 * check the ids in another (a group-by on id); {@link RunPlan}'s notes say what that saved on the development
 * machine.
 *
 * @param rows the planned rows
 * @param plannedErrors the rows that cannot run (the input's errors among them)
 * @param inputErrors the rows the input could not give ({@link InputRows#ERROR_CODES})
 * @param repeatedIds the ids of more than one row
 * @param longestPromptTokens the tokens of the longest prompt among the rows that can run (0 when none can): the
 *     inference tasks tell the generators, whose first batch then holds it ({@link
 *     io.sparkinfer.generate.RequestStream#longestExpected})
 */
record PlanSummary(long rows, long plannedErrors, long inputErrors, long repeatedIds, int longestPromptTokens) {

  /**
   * Runs the summary's query with adaptive query execution off ({@link AdaptiveExecution}): with it, each shuffle
   * stage of the query (the group-by's, the sum's) was a Spark job of its own, planned again between them: four jobs,
   * where without it the summary is one. On the development machine (2 cores, 8,192 prompts) the inference stage
   * started 0.4-0.7 s earlier without it, alternated; on an H200's host the fp8 job ran at 46,340-47,284 completion
   * tokens/s with it off (bench/results/2026-12-02-e2e-NVIDIA-H200-run22; 43,087-44,234 with it on, run20, another
   * machine).
   */
  static PlanSummary of(Dataset<Row> planned) {
    Row r = AdaptiveExecution.off(planned.sparkSession(), () -> query(planned).first());
    return new PlanSummary(longOrZero(r, 0), longOrZero(r, 1), longOrZero(r, 2), longOrZero(r, 3),
        (int) longOrZero(r, 4));
  }

  /** The summary's query: one row of (rows, errors, input errors, repeated ids, longest prompt that can run). */
  static Dataset<Row> query(Dataset<Row> planned) {
    Column valid = col(Tables.ERROR_CODE).isNull();
    Column inputError = col(Tables.ERROR_CODE).isin(InputRows.ERROR_CODES.toArray());
    Dataset<Row> ids = planned.groupBy(col(Tables.ID)).agg(count(lit(1)).as("n"),
        sum(when(valid, 0).otherwise(1)).as("errors"), sum(when(inputError, 1).otherwise(0)).as("input_errors"),
        max(when(valid, col(Tables.PROMPT_TOKENS))).as("longest"));
    return ids.agg(sum(col("n")), sum(col("errors")), sum(col("input_errors")),
        // the cast to a DataType, not a type's name: parsing one would start Spark's SQL parser on the driver
        sum(when(col("n").gt(1), 1).otherwise(0)), max(col("longest")).cast(DataTypes.LongType));
  }

  /** A sum over no rows is null: none. */
  private static long longOrZero(Row r, int i) {
    return r.isNullAt(i) ? 0 : r.getLong(i);
  }
}
