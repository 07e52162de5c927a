package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.is_valid_utf8;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.make_valid_utf8;
import static org.apache.spark.sql.functions.not;
import static org.apache.spark.sql.functions.when;

import io.sparkinfer.generate.ErrorCode;
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
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The job's input: a Parquet, JSONL or CSV table (a file, a directory or a glob; {@code file:}, {@code hdfs:},
 * {@code s3a:}) read as {@link Tables#INPUT} rows: (id, prompt) strings, or the error a row is when it cannot be
 * read, so one bad row out of millions costs that row, not the run. Its format is given or told by the file
 * extensions; ids come from {@code --id-column}, or are {@code row-<position>} when the input has no such column.
 *
 * <ul>
 *   <li>JSONL ({@link JsonlInput}) and CSV ({@link CsvInput}) are read as numbered lines ({@link TextInput}): a
 *       line that is not a JSON object, a CSV record that breaks the quoting rules or has too many or too few
 *       fields, an id or prompt of the wrong type, a missing id or bytes that are not UTF-8 make an error row,
 *       under the row's id or, when it has no readable one, {@code _line:<file>:<line>}.
 *   <li>Parquet is read by Spark: its prompt column must be a string (a struct, array, map or number is an error
 *       before any work: the whole column is wrong); a null id or bytes that are not UTF-8 make an error row, under
 *       {@code _row:<file>:<row>} when the id cannot be read.
 * </ul>
 */
public final class InputTable {

  private static final Logger LOG = LoggerFactory.getLogger(InputTable.class);

  private InputTable() {}

  /**
   * The input as {@link Tables#INPUT} rows.
   *
   * @throws IllegalArgumentException when it cannot be read or lacks the prompt column
   */
  static Dataset<Row> read(SparkSession spark, JobOptions o, Configuration hadoopConf) {
    return read(spark, o.input(), o.inputFormat(), o.idColumn(), o.promptColumn(), hadoopConf);
  }

  /**
   * The table at {@code input} as {@link Tables#INPUT} rows: its format as given or told by the file extensions,
   * ids from {@code idColumn} (or {@code row-<position>} without one), prompts from {@code promptColumn}; rows
   * that cannot be read carry their error (error_code not null).
   *
   * @throws IllegalArgumentException when it cannot be read, holds no readable row, or lacks the prompt column
   */
  public static Dataset<Row> read(SparkSession spark, String input, InputFormat inputFormat, String idColumn,
      String promptColumn, Configuration hadoopConf) {
    InputFormat format = format(input, inputFormat, hadoopConf);
    try {
      return switch (format) {
        case PARQUET -> parquet(spark, input, idColumn, promptColumn);
        case JSONL -> TextInput.read(spark, input, new JsonlInput(idColumn, promptColumn), idColumn, promptColumn,
            hadoopConf);
        case CSV -> TextInput.read(spark, input, new CsvInput(idColumn, promptColumn), idColumn, promptColumn,
            hadoopConf);
        case AUTO -> throw new IllegalStateException("the format was resolved above");
      };
    } catch (IllegalArgumentException e) {
      throw e;
    } catch (Exception e) { // Spark's exceptions are checked ones in Java's eyes (SparkException)
      throw new IllegalArgumentException("--input " + input + ": cannot read it as " + format.label() + ": "
          + firstLine(e.getMessage()), e);
    }
  }

  /** A Parquet table: ids and prompts as Spark reads them, with the rows that cannot be used marked. */
  private static Dataset<Row> parquet(SparkSession spark, String input, String idColumn, String promptColumn) {
    Dataset<Row> df = spark.read().parquet(input);
    List<String> columns = Arrays.asList(df.columns());
    if (!columns.contains(promptColumn)) {
      throw new IllegalArgumentException("--input " + input + " has no column '" + promptColumn
          + "' (columns: " + String.join(", ", columns) + "); name the prompt column with --prompt-column");
    }
    DataType promptType = df.schema().apply(promptColumn).dataType();
    if (!(promptType instanceof StringType) && !(promptType instanceof BinaryType)) {
      throw new IllegalArgumentException("--input " + input + ": column '" + promptColumn + "' is "
          + promptType.simpleString() + ", not a string; name the prompt column with --prompt-column");
    }
    boolean hasId = columns.contains(idColumn);
    if (hasId) {
      DataType idType = df.schema().apply(idColumn).dataType();
      if (idType instanceof StructType || idType instanceof ArrayType || idType instanceof MapType) {
        throw new IllegalArgumentException("--input " + input + ": column '" + idColumn + "' is "
            + idType.simpleString() + "; ids must be strings or numbers (--id-column)");
      }
    }
    Column rowNumber = col("_metadata.row_index").plus(1).cast(DataTypes.StringType);
    Column file = col("_metadata.file_name");
    Column source = concat(file, lit(":"), rowNumber);
    Column where = concat(lit("row "), rowNumber, lit(" of "), file);
    Column prompt = col(promptColumn).cast(DataTypes.StringType);
    Column id = hasId ? col(idColumn).cast(DataTypes.StringType) : lit("");
    Column noId = id.isNull();
    Column notUtf8 = not(is_valid_utf8(prompt)).or(not(is_valid_utf8(id)));
    Column code = when(noId, ErrorCode.INVALID_REQUEST).when(notUtf8, ErrorCode.INVALID_ENCODING);
    Column message = when(noId, concat(where, lit(" has no id ('" + idColumn + "' is null)")))
        .when(notUtf8, concat(where, lit(" is not valid UTF-8 (the bad bytes read as U+FFFD)")));
    Column validPrompt = make_valid_utf8(prompt).as(Tables.PROMPT);
    if (hasId) {
      Column rowId = concat(lit(InputRows.ROW_ID), source);
      return df.select(when(noId.or(not(is_valid_utf8(id))), rowId).otherwise(id).as(Tables.ID), validPrompt,
          code.as(Tables.ERROR_CODE), message.as(Tables.ERROR_MESSAGE), source.as(Tables.SOURCE));
    }
    LOG.info("--input has no column '{}': ids are row-<position in the input>", idColumn);
    JavaRDD<Row> numbered = df.select(validPrompt, code, message, source).javaRDD().zipWithIndex()
        .map(t -> RowFactory.create(InputRows.POSITION_ID + t._2(), t._1().get(0), t._1().get(1), t._1().get(2),
            t._1().get(3)));
    return spark.createDataFrame(numbered, Tables.INPUT);
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
