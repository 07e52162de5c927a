package io.sparkinfer.jobs.sweep;

import static org.apache.spark.sql.functions.col;

import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import java.io.PrintStream;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * {@code submit/sweep.sh report}: draws a finished study's report (charts, {@code index.html}) and
 * {@code best.properties} again from its rows in the sweep_trials table, without running a trial: for a study
 * whose machine could not draw charts (a JRE without its font libraries), or to put the report elsewhere.
 */
public final class SweepReportCommand {

  static final Option<String> OUTPUT = SweepCommandLine.OUTPUT;
  static final Option<String> RUN_ID = Option.text("run-id", "ID|latest", "latest",
      "the study to draw; latest: the newest in the table");
  static final Option<String> TO = Option.text("to", "DIR", null,
      "where to write the report (file:, hdfs:, s3a:)").describedDefault("OUTPUT/_report/RUN_ID");
  static final Option<Boolean> HELP = SweepCommandLine.HELP;

  static final OptionTable TABLE = new OptionTable(new OptionTable.Group("report options",
      List.of(OUTPUT, RUN_ID, TO, HELP)));

  private SweepReportCommand() {}

  /** The command line; returns 0, 1 (failed) or 2 (bad options). */
  static int run(String[] args, PrintStream out, PrintStream err) {
    SweepCommandLine.Parsed parsed = SweepCommandLine.parse(TABLE, args,
        "submit/sweep.sh report --output DIR [--run-id ID|latest] [--to DIR]",
        "Draws a finished study's report and best.properties again from the sweep_trials table.", out, err);
    if (parsed.done()) {
      return parsed.exitStatus();
    }
    OptionValues o = parsed.options();
    SparkSession spark = SparkSession.builder().appName("sparkinfer sweep report").getOrCreate();
    try {
      SweepJob.Report report = draw(spark, o.get(OUTPUT), o.get(RUN_ID), o.get(TO));
      out.println("sweep report: " + report.describe());
      return report.charts() ? 0 : SweepJob.EXIT_FAILED;
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      return SweepJob.EXIT_USAGE;
    } catch (RuntimeException e) {
      err.println("error: the report failed: " + e);
      return SweepJob.EXIT_FAILED;
    } finally {
      spark.stop();
    }
  }

  /** Draws the report of study {@code runId} ({@code latest}: the newest) of the table at {@code output}. */
  static SweepJob.Report draw(SparkSession spark, String output, String runId, String to) {
    String id = runId;
    if (id.equals("latest")) {
      List<Row> runs = spark.read().parquet(output + "/" + SweepTables.RUNS_DIR).select("run_id")
          .orderBy(col("started_at").desc()).limit(1).collectAsList();
      if (runs.isEmpty()) {
        throw new IllegalArgumentException(output + " holds no study");
      }
      id = runs.get(0).getString(0);
    }
    List<Row> rows = spark.read().parquet(output).where(col("run_id").equalTo(id)).orderBy(col("trial"))
        .collectAsList();
    if (rows.isEmpty()) {
      throw new IllegalArgumentException(output + " holds no trials of study " + id);
    }
    String dir = to != null ? to : output + "/" + SweepTables.REPORT_DIR + "/" + id;
    return SweepJob.writeReport(rows, SweepJob.best(rows), id, dir, spark.sparkContext().hadoopConfiguration());
  }
}
