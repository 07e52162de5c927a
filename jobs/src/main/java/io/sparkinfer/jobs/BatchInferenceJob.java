package io.sparkinfer.jobs;

import java.io.PrintStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Batch inference with {@code spark-submit}: the command line over {@link BatchInference}. Parses the options
 * ({@link JobOptions}: command line, then Spark conf {@code spark.sparkinfer.*}, then the environment), runs
 * the job on the session spark-submit configured, prints the summary, and exits 0 (done), 1 (the job failed)
 * or 2 (bad options, missing model, unreadable input).
 */
public final class BatchInferenceJob {

  private static final Logger LOG = LoggerFactory.getLogger(BatchInferenceJob.class);

  /** Exit status for bad options, a missing model or an unreadable input. */
  public static final int EXIT_USAGE = 2;
  /** Exit status for a job that failed while running. */
  public static final int EXIT_FAILED = 1;

  private BatchInferenceJob() {}

  public static void main(String[] args) {
    int status = run(args, System.out, System.err);
    if (status != 0) {
      System.exit(status);
    }
  }

  /** Parses options, runs the job, prints the summary; returns the exit status. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    JobOptions options;
    ModelLocation checked = null; // a local model, checked before Spark starts
    try {
      if (JobOptions.wantsHelp(args)) {
        out.print(JobOptions.usage());
        return 0;
      }
      SparkConf conf = new SparkConf(); // spark-submit passes --conf and properties files as system properties
      options = JobOptions.parse(args, key -> conf.contains(key) ? conf.get(key) : null);
      if (ModelLocation.isLocal(options.model())) {
        checked = ModelLocation.check(options.model(), new Configuration(false), options.modelCache());
      }
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      err.println("(run with --help for the options)");
      return EXIT_USAGE;
    }
    SparkSession spark = SparkSession.builder().appName("sparkinfer batch inference").getOrCreate();
    try {
      JobResult result = BatchInference.run(spark, options, checked);
      out.print(result.summary());
      out.println("query it: submit/sql.sh --view c=" + options.output()
          + " \"SELECT finish_reason, count(*) AS n FROM c GROUP BY finish_reason\"");
      return result.succeeded() ? 0 : EXIT_FAILED;
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      return EXIT_USAGE;
    } catch (RuntimeException e) {
      err.println("error: the job failed: " + FailureMessage.of(e));
      LOG.error("the job failed", e);
      return EXIT_FAILED;
    } finally {
      spark.stop();
    }
  }
}
