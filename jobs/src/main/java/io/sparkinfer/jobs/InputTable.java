package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.col;

import io.sparkinfer.jobs.JobOptions.InputFormat;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The job's input: a Parquet, JSONL or CSV table (a file, a directory or a glob; {@code file:}, {@code hdfs:},
 * {@code s3a:}) read as (id, prompt) strings. Its format is given or told by the file extensions; ids come
 * from {@code --id-column}, or are {@code row-<position>} when the input has no such column.
 */
public final class InputTable {

  private static final Logger LOG = LoggerFactory.getLogger(InputTable.class);

  private InputTable() {}

  /**
   * The input as (id, prompt) strings.
   *
   * @throws IllegalArgumentException when it cannot be read or lacks the prompt column
   */
  static Dataset<Row> read(SparkSession spark, JobOptions o, Configuration hadoopConf) {
    return read(spark, o.input(), o.inputFormat(), o.idColumn(), o.promptColumn(), hadoopConf);
  }

  /**
   * The table at {@code input} as (id, prompt) strings: its format as given or told by the file extensions,
   * ids from {@code idColumn} (or {@code row-<position>} without one), prompts from {@code promptColumn}.
   *
   * @throws IllegalArgumentException when it cannot be read or lacks the prompt column
   */
  public static Dataset<Row> read(SparkSession spark, String input, InputFormat inputFormat, String idColumn,
      String promptColumn, Configuration hadoopConf) {
    InputFormat format = format(input, inputFormat, hadoopConf);
    DataFrameReader reader = spark.read();
    Dataset<Row> df;
    try {
      df = switch (format) {
        case PARQUET -> reader.parquet(input);
        case JSONL -> reader.json(input);
        case CSV -> reader.option("header", "true").option("multiLine", "true").option("escape", "\"")
            .csv(input);
        case AUTO -> throw new IllegalStateException("the format was resolved above");
      };
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("--input " + input + ": cannot read it as " + format.label() + ": "
          + firstLine(e.getMessage()), e);
    }
    List<String> columns = Arrays.asList(df.columns());
    if (!columns.contains(promptColumn)) {
      throw new IllegalArgumentException("--input " + input + " has no column '" + promptColumn
          + "' (columns: " + String.join(", ", columns) + "); name the prompt column with --prompt-column");
    }
    Column prompt = col(promptColumn).cast(DataTypes.StringType).as(Tables.PROMPT);
    if (columns.contains(idColumn)) {
      return df.select(col(idColumn).cast(DataTypes.StringType).as(Tables.ID), prompt);
    }
    LOG.info("--input has no column '{}': ids are row-<position in the input>", idColumn);
    StructType schema = new StructType().add(Tables.ID, DataTypes.StringType, false)
        .add(Tables.PROMPT, DataTypes.StringType, true);
    JavaRDD<Row> numbered = df.select(prompt).javaRDD().zipWithIndex()
        .map(t -> RowFactory.create("row-" + t._2(), t._1().isNullAt(0) ? null : t._1().getString(0)));
    return spark.createDataFrame(numbered, schema);
  }

  /** The input's format: as given, else from the file extension (of the path, or of the files inside it). */
  static InputFormat format(JobOptions o, Configuration hadoopConf) {
    return format(o.input(), o.inputFormat(), hadoopConf);
  }

  static InputFormat format(String input, InputFormat given, Configuration hadoopConf) {
    Path path = new Path(input);
    try {
      FileSystem fs = path.getFileSystem(hadoopConf);
      FileStatus[] matches = fs.globStatus(path);
      if (matches == null || matches.length == 0) {
        throw new IllegalArgumentException("--input " + input + ": no such file or directory");
      }
      if (given != InputFormat.AUTO) {
        return given;
      }
      for (FileStatus m : matches) {
        FileStatus[] files = m.isDirectory() ? fs.listStatus(m.getPath()) : new FileStatus[] {m};
        for (FileStatus f : files) {
          String name = f.getPath().getName().toLowerCase(Locale.ROOT);
          if (f.isFile() && !name.startsWith("_") && !name.startsWith(".")) {
            InputFormat byName = formatOfName(name);
            if (byName != null) {
              return byName;
            }
          }
        }
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("--input " + input + ": cannot read it: " + e.getMessage(), e);
    }
    throw new IllegalArgumentException("--input " + input + ": cannot tell its format from the file names "
        + "(.parquet, .jsonl, .json, .csv); pass --input-format");
  }

  private static InputFormat formatOfName(String name) {
    String n = name.replaceAll("\\.(gz|bz2|zst|snappy|lz4)$", "");
    if (n.endsWith(".parquet")) {
      return InputFormat.PARQUET;
    }
    if (n.endsWith(".jsonl") || n.endsWith(".json") || n.endsWith(".ndjson")) {
      return InputFormat.JSONL;
    }
    if (n.endsWith(".csv")) {
      return InputFormat.CSV;
    }
    return null;
  }

  static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
