package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.collect_list;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.min;
import static org.apache.spark.sql.functions.pmod;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;
import static org.apache.spark.sql.functions.xxhash64;

import io.sparkinfer.generate.FinishReason;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.DataFrameReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Batch inference with {@code spark-submit}: reads a table of prompts, answers every row once with the model
 * and writes the {@code completions} table ({@link Tables#COMPLETIONS}), then appends a {@code job_runs} row.
 *
 * <ol>
 *   <li>Read: Parquet, JSONL or CSV; an id column (generated when absent) and a prompt column.
 *   <li>Resume: ids already in the output are skipped.
 *   <li>Plan (executors): token counts; empty, null and over-long prompts become error rows.
 *   <li>Deduplicate identical prompts under greedy decoding; range-partition by prompt length.
 *   <li>Infer (executors): {@link PartitionInference} with the executor's cached engine.
 *   <li>Write with Spark's commit protocol (the S3A committers for s3a: outputs, see conf/s3.properties).
 * </ol>
 */
public final class BatchInferenceJob {

  private static final Logger LOG = LoggerFactory.getLogger(BatchInferenceJob.class);

  /** Exit status for bad options, a missing model or an unreadable input. */
  public static final int EXIT_USAGE = 2;
  /** Exit status for a job that failed while running. */
  public static final int EXIT_FAILED = 1;

  /** Rows per inference partition aimed at when deriving the partition count from the input. */
  static final int ROWS_PER_PARTITION = 2048;

  private BatchInferenceJob() {}

  public static void main(String[] args) {
    int status = run(args, System.out, System.err);
    if (status != 0) {
      System.exit(status);
    }
  }

  /**
   * The command line: parses options, runs the job on the session spark-submit configured, prints the
   * summary. Returns the exit status (0, {@link #EXIT_FAILED}, {@link #EXIT_USAGE}).
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    JobOptions options;
    try {
      Map<JobOption, List<String>> parsed = JobOptions.parseArgs(args);
      if (parsed.containsKey(JobOption.HELP)) {
        out.print(JobOption.usage());
        return 0;
      }
      SparkConf conf = new SparkConf(); // spark-submit passes --conf and properties files as system properties
      options = JobOptions.resolve(parsed, key -> conf.contains(key) ? conf.get(key) : null);
      if (ModelLocation.isLocal(options.model())) {
        ModelLocation.check(options.model(), new Configuration(false)); // fail before Spark starts
      }
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      err.println("(run with --help for the options)");
      return EXIT_USAGE;
    }
    SparkSession spark = SparkSession.builder().appName("sparkinfer batch inference").getOrCreate();
    try {
      JobResult result = run(spark, options);
      out.print(result.summary());
      out.println("query it: submit/sql.sh --view c=" + options.output()
          + " \"SELECT finish_reason, count(*) AS n FROM c GROUP BY finish_reason\"");
      return result.succeeded() ? 0 : EXIT_FAILED;
    } catch (IllegalArgumentException e) {
      err.println("error: " + e.getMessage());
      return EXIT_USAGE;
    } catch (RuntimeException e) {
      err.println("error: the job failed: " + e);
      LOG.error("the job failed", e);
      return EXIT_FAILED;
    } finally {
      spark.stop();
    }
  }

  /**
   * Runs the job on {@code spark}. Problems with the options, the model or the input throw
   * {@link IllegalArgumentException} before any work; a failure while running appends a {@code failed}
   * job_runs row and rethrows.
   */
  public static JobResult run(SparkSession spark, JobOptions o) {
    Instant started = Instant.now();
    String runId = o.runId() != null ? o.runId() : newRunId(started);
    SparkContext sc = spark.sparkContext();
    Configuration hadoopConf = sc.hadoopConfiguration();
    ModelLocation model = ModelLocation.check(o.model(), hadoopConf);
    OutputState output = OutputState.of(o, hadoopConf);
    if (output.hasData() && !o.resume() && !o.overwrite()) {
      throw new IllegalArgumentException("--output " + o.output() + " already holds a table; pass --resume to add the "
          + "missing ids, or --overwrite to replace it");
    }
    Dataset<Row> input = readInput(spark, o, hadoopConf);

    JobMetrics metrics = JobMetrics.register(sc);
    Counts counts = new Counts();
    int partitions = 0;
    int waves = 0;
    int commits = 0;
    Dataset<Row> planned = null;
    Dataset<Row> cachedGroups = null;
    try {
      if (o.resume() && output.hasData()) {
        counts.inputRows = input.count();
        Dataset<Row> done = readOutput(spark, o).select(col(Tables.ID)).distinct();
        input = input.join(done, Tables.ID, "left_anti");
      }
      sc.setJobDescription("sparkinfer " + runId + ": plan (token counts)");
      planned = input.mapPartitions(new PromptPlanner(model, o.maxPromptTokens()), Encoders.row(Tables.PLANNED))
          .persist(StorageLevel.MEMORY_AND_DISK());
      Row c = planned.agg(count(lit(1)), sum(when(col(Tables.ERROR_CODE).isNotNull(), 1).otherwise(0))).first();
      counts.rows = c.getLong(0);
      counts.plannedErrors = c.isNullAt(1) ? 0 : c.getLong(1);
      if (!(o.resume() && output.hasData())) {
        counts.inputRows = counts.rows;
      }
      checkIds(planned);
      long validRows = counts.rows - counts.plannedErrors;
      waves = o.commitEvery() > 0 ? (int) Math.max(1, (validRows + o.commitEvery() - 1) / o.commitEvery()) : 1;
      partitions = o.partitions() > 0 ? o.partitions()
          : defaultPartitions((validRows + waves - 1) / waves, sc.defaultParallelism());
      LOG.info("run {}: {} rows to answer ({} skipped, {} planning errors), {} commit(s) of {} inference partitions",
          runId, counts.rows, counts.inputRows - counts.rows, counts.plannedErrors, waves, partitions);

      Dataset<Row> errors = planningErrorRows(planned, model.uri(), runId);
      Dataset<Row> groups = null;
      if (validRows > 0) {
        Dataset<Row> valid = planned.where(col(Tables.ERROR_CODE).isNull());
        groups = (o.dedup() && o.isGreedy()
            ? valid.groupBy(col(Tables.PROMPT)).agg(min(col(Tables.PROMPT_TOKENS)).as(Tables.PROMPT_TOKENS),
                collect_list(col(Tables.ID)).as(Tables.IDS))
            : valid.select(col(Tables.PROMPT), col(Tables.PROMPT_TOKENS), array(col(Tables.ID)).as(Tables.IDS)))
            .withColumn(Tables.TIEBREAK, xxhash64(col(Tables.PROMPT)));
        if (waves > 1) {
          groups = groups.persist(StorageLevel.MEMORY_AND_DISK());
          cachedGroups = groups;
        }
      }

      SaveMode mode = o.overwrite() ? SaveMode.Overwrite : output.exists() ? SaveMode.Append : SaveMode.ErrorIfExists;
      try (ProgressReporter progress = ProgressReporter.start(spark, metrics, counts.rows, counts.plannedErrors,
          o.progressSeconds())) {
        for (int wave = 0; wave < waves; wave++) {
          // Each wave is its own Spark job and commit: a run that dies keeps the waves it committed.
          Dataset<Row> answers = wave == 0 ? errors : null;
          if (groups != null) {
            Dataset<Row> part = waves == 1 ? groups : groups.where(pmod(col(Tables.TIEBREAK), lit(waves)).equalTo(wave));
            Dataset<Row> inferred = part
                // Range on (length, hash): similar lengths share a partition, and equal lengths still spread.
                .repartitionByRange(partitions, col(Tables.PROMPT_TOKENS), col(Tables.TIEBREAK))
                .sortWithinPartitions(col(Tables.PROMPT_TOKENS), col(Tables.TIEBREAK))
                .select(col(Tables.PROMPT), col(Tables.PROMPT_TOKENS), col(Tables.IDS))
                .mapPartitions(new PartitionInference(o, model, runId, metrics), Encoders.row(Tables.COMPLETIONS));
            answers = answers == null ? inferred : inferred.unionByName(answers);
          }
          if (answers == null || (counts.rows == 0 && output.hasData())) {
            continue; // nothing to add (a resume with every id already answered)
          }
          sc.setJobDescription("sparkinfer " + runId + ": generate and write " + o.output() + " (commit " + (wave + 1)
              + "/" + waves + ")");
          answers.write().format(o.format().sparkSource()).mode(wave == 0 ? mode : SaveMode.Append)
              .option("ignoreNullFields", "false").save(o.output());
          commits++;
        }
        progress.report(); // the final line: 100%
      }
      JobResult result = result(spark, o, runId, started, JobResult.SUCCEEDED, null, counts, metrics, partitions,
          commits);
      appendRun(spark, result);
      return result;
    } catch (Exception e) { // Spark's exceptions are checked ones in Java's eyes (SparkException)
      try {
        appendRun(spark, result(spark, o, runId, started, JobResult.FAILED, String.valueOf(e), counts, metrics,
            partitions, commits));
      } catch (RuntimeException again) {
        LOG.warn("could not append the failed run to {}", o.runsTablePath(), again);
        e.addSuppressed(again);
      }
      if (e instanceof RuntimeException re) {
        throw re;
      }
      throw new JobFailedException("run " + runId + " failed: " + e.getMessage(), e);
    } finally {
      sc.setJobDescription(null);
      if (cachedGroups != null) {
        cachedGroups.unpersist();
      }
      if (planned != null) {
        planned.unpersist();
      }
      if (sc.isLocal()) {
        ExecutorEngines.closeAll(); // the driver is the executor: free the model with the job
      }
    }
  }

  /** Row counts known on the driver. */
  private static final class Counts {
    long inputRows;
    long rows;
    long plannedErrors;
  }

  private static JobResult result(SparkSession spark, JobOptions o, String runId, Instant started, String status,
      String error, Counts counts, JobMetrics m, int partitions, int commits) {
    long errorRows = counts.plannedErrors + m.errorRows.value();
    long answeredByEngine = m.okRows.value() + m.errorRows.value();
    return new JobResult(runId, status, error, started, Instant.now(), o,
        m.loadedPrecisions() != null ? m.loadedPrecisions() : o.precision() == null ? "auto" : o.precision().label(),
        m.loadedDevices() != null ? m.loadedDevices() : o.device(),
        m.loadedBackends() != null ? m.loadedBackends() : o.backend(),
        spark.sparkContext().master(), spark.version(),
        counts.inputRows, counts.inputRows - counts.rows, counts.rows, counts.plannedErrors, m.requests.value(),
        Math.max(0, answeredByEngine - m.requests.value()), m.okRows.value(), errorRows, m.promptTokens.value(),
        m.completionTokens.value(), m.generateNanos.value() / 1e9, partitions, commits, m.executorCount(),
        m.loadsByExecutor(), m.loadSeconds());
  }

  private static void appendRun(SparkSession spark, JobResult result) {
    spark.sparkContext().setJobDescription("sparkinfer " + result.runId() + ": append to job_runs");
    spark.createDataFrame(List.of(result.toRow()), Tables.JOB_RUNS).coalesce(1).write().mode(SaveMode.Append)
        .parquet(result.options().runsTablePath());
  }

  /** Partitions for {@code rows}: the cluster's parallelism, more when the input is large. */
  static int defaultPartitions(long rows, int parallelism) {
    long byRows = (rows + ROWS_PER_PARTITION - 1) / ROWS_PER_PARTITION;
    long n = Math.max(parallelism, byRows);
    return (int) Math.max(1, Math.min(n, Math.max(rows, 1)));
  }

  /** The planning error rows, as completion rows. */
  private static Dataset<Row> planningErrorRows(Dataset<Row> planned, String model, String runId) {
    Column nullString = lit(null).cast(DataTypes.StringType);
    return planned.where(col(Tables.ERROR_CODE).isNotNull()).select(
        col(Tables.ID),
        col(Tables.PROMPT),
        nullString.as(Tables.COMPLETION),
        lit(new long[0]).as(Tables.OUTPUT_TOKEN_IDS),
        col(Tables.PROMPT_TOKENS),
        lit(0).as(Tables.COMPLETION_TOKENS),
        lit(FinishReason.ERROR.label()).as(Tables.FINISH_REASON),
        col(Tables.ERROR_CODE),
        col(Tables.ERROR_MESSAGE),
        lit(model).as(Tables.MODEL),
        nullString.as(Tables.PRECISION),
        nullString.as(Tables.LAYOUT),
        nullString.as(Tables.DEVICE),
        col(Tables.EXECUTOR_ID),
        lit(0.0).as(Tables.LATENCY_MS),
        lit(0.0).as(Tables.TTFT_MS),
        lit(runId).as(Tables.RUN_ID));
  }

  /** Fails when an id is null or repeated: each input row must be answered exactly once under its id. */
  private static void checkIds(Dataset<Row> planned) {
    List<Row> bad = planned.groupBy(col(Tables.ID)).count()
        .where(col(Tables.ID).isNull().or(col("count").gt(1))).limit(5).collectAsList();
    if (bad.isEmpty()) {
      return;
    }
    List<String> examples = new ArrayList<>();
    for (Row r : bad) {
      examples.add((r.isNullAt(0) ? "null" : "'" + r.getString(0) + "'") + " x" + r.getLong(1));
    }
    throw new IllegalArgumentException("the input's ids must be present and unique; found " + examples
        + " (malformed JSON lines read as rows without an id; pick another --id-column or drop it to "
        + "number the rows)");
  }

  /** The input as (id, prompt) strings; ids are {@code row-<position>} when the input has no id column. */
  static Dataset<Row> readInput(SparkSession spark, JobOptions o, Configuration hadoopConf) {
    String format = inputFormat(o, hadoopConf);
    DataFrameReader reader = spark.read();
    Dataset<Row> df;
    try {
      df = switch (format) {
        case "parquet" -> reader.parquet(o.input());
        case "jsonl" -> reader.json(o.input());
        case "csv" -> reader.option("header", "true").option("multiLine", "true").option("escape", "\"")
            .csv(o.input());
        default -> throw new IllegalStateException(format);
      };
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("--input " + o.input() + ": cannot read it as " + format + ": "
          + firstLine(e.getMessage()), e);
    }
    List<String> columns = Arrays.asList(df.columns());
    if (!columns.contains(o.promptColumn())) {
      throw new IllegalArgumentException("--input " + o.input() + " has no column '" + o.promptColumn()
          + "' (columns: " + String.join(", ", columns) + "); name the prompt column with --prompt-column");
    }
    Column prompt = col(o.promptColumn()).cast(DataTypes.StringType).as(Tables.PROMPT);
    if (columns.contains(o.idColumn())) {
      return df.select(col(o.idColumn()).cast(DataTypes.StringType).as(Tables.ID), prompt);
    }
    LOG.info("--input has no column '{}': ids are row-<position in the input>", o.idColumn());
    StructType schema = new StructType().add(Tables.ID, DataTypes.StringType, false)
        .add(Tables.PROMPT, DataTypes.StringType, true);
    JavaRDD<Row> numbered = df.select(prompt).javaRDD().zipWithIndex()
        .map(t -> RowFactory.create("row-" + t._2(), t._1().isNullAt(0) ? null : t._1().getString(0)));
    return spark.createDataFrame(numbered, schema);
  }

  /** The input's format: as given, else from the file extension (of the path, or of the files inside it). */
  static String inputFormat(JobOptions o, Configuration hadoopConf) {
    Path path = new Path(o.input());
    FileStatus[] matches;
    try {
      FileSystem fs = path.getFileSystem(hadoopConf);
      matches = fs.globStatus(path);
      if (matches == null || matches.length == 0) {
        throw new IllegalArgumentException("--input " + o.input() + ": no such file or directory");
      }
      if (!"auto".equals(o.inputFormat())) {
        return o.inputFormat();
      }
      for (FileStatus m : matches) {
        FileStatus[] files = m.isDirectory() ? fs.listStatus(m.getPath()) : new FileStatus[] {m};
        for (FileStatus f : files) {
          String name = f.getPath().getName().toLowerCase(Locale.ROOT);
          if (f.isFile() && !name.startsWith("_") && !name.startsWith(".")) {
            String byName = formatOfName(name);
            if (byName != null) {
              return byName;
            }
          }
        }
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("--input " + o.input() + ": cannot read it: " + e.getMessage(), e);
    }
    throw new IllegalArgumentException("--input " + o.input() + ": cannot tell its format from the file names "
        + "(.parquet, .jsonl, .json, .csv); pass --input-format");
  }

  private static String formatOfName(String name) {
    String n = name.replaceAll("\\.(gz|bz2|zst|snappy|lz4)$", "");
    if (n.endsWith(".parquet")) {
      return "parquet";
    }
    if (n.endsWith(".jsonl") || n.endsWith(".json") || n.endsWith(".ndjson")) {
      return "jsonl";
    }
    if (n.endsWith(".csv")) {
      return "csv";
    }
    return null;
  }

  /** The existing completions (for --resume), read with the table's schema. */
  static Dataset<Row> readOutput(SparkSession spark, JobOptions o) {
    return o.format() == JobOptions.OutputFormat.JSONL
        ? spark.read().schema(Tables.COMPLETIONS).json(o.output())
        : spark.read().parquet(o.output());
  }

  /** What is at --output now: nothing, a directory with only hidden entries (e.g. _job_runs), or a table. */
  record OutputState(boolean exists, boolean hasData) {
    static OutputState of(JobOptions o, Configuration hadoopConf) {
      Path path = new Path(o.output());
      try {
        FileSystem fs = path.getFileSystem(hadoopConf);
        if (!fs.exists(path)) {
          return new OutputState(false, false);
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
        return new OutputState(true, data);
      } catch (IOException e) {
        throw new IllegalArgumentException("--output " + o.output() + ": cannot list it: " + e.getMessage(), e);
      }
    }
  }

  static String newRunId(Instant now) {
    return DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss", Locale.ROOT).withZone(ZoneOffset.UTC).format(now) + "-"
        + UUID.randomUUID().toString().substring(0, 8);
  }

  /** This project's version, from the build. */
  public static String projectVersion() {
    try (InputStream in = BatchInferenceJob.class.getResourceAsStream("version.properties")) {
      Properties p = new Properties();
      if (in != null) {
        p.load(in);
      }
      return p.getProperty("version", "unknown");
    } catch (IOException e) {
      return "unknown";
    }
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
