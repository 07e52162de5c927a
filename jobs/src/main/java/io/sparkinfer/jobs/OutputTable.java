package io.sparkinfer.jobs;

import java.io.IOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * The completions table at {@code --output}: what is there before the run (for {@code --resume} and the
 * checks that protect an existing table), and the writes of the run's answers through Spark's commit
 * protocol (the S3A committers for {@code s3a:}, see {@code conf/s3.properties}).
 *
 * @param exists whether the directory exists
 * @param hasData whether it holds a table (entries other than hidden ones such as {@code _job_runs})
 */
record OutputTable(JobOptions options, boolean exists, boolean hasData) {

  /**
   * What is at {@code --output} now.
   *
   * @throws IllegalArgumentException when it is a file, cannot be listed, or holds the other format
   */
  static OutputTable inspect(JobOptions o, Configuration hadoopConf) {
    Path path = new Path(o.output());
    try {
      FileSystem fs = path.getFileSystem(hadoopConf);
      if (!fs.exists(path)) {
        return new OutputTable(o, false, false);
      }
      if (!fs.getFileStatus(path).isDirectory()) {
        throw new IllegalArgumentException("--output " + o.output() + " is a file; it must be a directory");
      }
      boolean data = false;
      for (FileStatus f : fs.listStatus(path)) {
        String name = f.getPath().getName();
        if (name.equals("_SUCCESS") || (!name.startsWith("_") && !name.startsWith("."))) {
          data = true;
        }
        if (f.isFile() && name.startsWith("part-")) {
          boolean parquet = name.endsWith(".parquet");
          if (parquet != (o.format() == JobOptions.OutputFormat.PARQUET) && !o.overwrite()) {
            throw new IllegalArgumentException("--output " + o.output() + " holds " + (parquet ? "parquet" : "json")
                + " files but --format is " + o.format().label());
          }
        }
      }
      return new OutputTable(o, true, data);
    } catch (IOException e) {
      throw new IllegalArgumentException("--output " + o.output() + ": cannot list it: " + e.getMessage(), e);
    }
  }

  /** Fails unless the run may write here: an existing table needs {@code --resume} or {@code --overwrite}. */
  void checkWritable() {
    if (hasData && !options.resume() && !options.overwrite()) {
      throw new IllegalArgumentException("--output " + options.output() + " already holds a table; pass --resume to "
          + "add the missing ids, or --overwrite to replace it");
    }
  }

  /** The existing completions (for --resume), read with the table's schema. */
  Dataset<Row> read(SparkSession spark) {
    return options.format() == JobOptions.OutputFormat.JSONL
        ? spark.read().schema(Tables.COMPLETIONS).json(options.output())
        : spark.read().parquet(options.output());
  }

  /** The whole table with the completions schema (columns an older table lacks, such as cache_hit, read as null). */
  Dataset<Row> readAnswers(SparkSession spark) {
    return spark.read().schema(Tables.COMPLETIONS).format(options.format().sparkSource()).load(options.output());
  }

  /** Writes one commit of answers: the first replaces, appends to or creates the table; later ones append. */
  void write(Dataset<Row> answers, boolean firstCommit) {
    SaveMode first = options.overwrite() ? SaveMode.Overwrite : exists ? SaveMode.Append : SaveMode.ErrorIfExists;
    answers.write().format(options.format().sparkSource()).mode(firstCommit ? first : SaveMode.Append)
        .option("ignoreNullFields", "false").save(options.output());
  }
}
