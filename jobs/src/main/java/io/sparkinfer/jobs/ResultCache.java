package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.element_at;
import static org.apache.spark.sql.functions.explode;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.row_number;
import static org.apache.spark.sql.functions.udf;

import java.io.IOException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.api.java.UDF2;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.expressions.Window;
import org.apache.spark.sql.types.DataTypes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The result cache at {@code --cache} ({@link Tables#RESULT_CACHE}): answers of earlier runs to deterministic
 * requests, under a key of everything that decides the answer ({@link CacheKey}).
 *
 * <p>Layout: a directory of commits, {@code PATH/commit=<run_id>-<n>-<random>/part-*.parquet}, each the new entries
 * of one output commit of one run, written through Spark's commit protocol (the S3A committers for {@code s3a:}),
 * which writes the commit's {@code _SUCCESS} last. Writers never touch another run's commit.
 *
 * <p>Readers ({@link #read}, the job's lookups, {@code sql.sh --view}) see only commits with a {@code _SUCCESS},
 * and of the entries that share a key (two runs that computed the same request at once) only the first by
 * ({@code created_at}, {@code run_id}, {@code commit}): whatever runs append at once, every key is seen once.
 * A run reads the commits that were there when it planned (a snapshot: its hits stay the same if the job
 * recomputes a stage), and before appending it leaves out the keys committed meanwhile.
 */
final class ResultCache {

  private static final Logger LOG = LoggerFactory.getLogger(ResultCache.class);

  /** The name of a commit's directory starts with it. */
  static final String COMMIT_PREFIX = "commit=";

  /** Entries per Parquet file of a commit (at most 64 files). */
  static final long ENTRIES_PER_FILE = 500_000;

  /** Column name prefix of the cached answer beside a request in {@link #lookup}. */
  static final String CACHED = "cached_";
  /** The commit an entry was read from (to order entries of the same run and time). */
  private static final String COMMIT = "_commit";

  private final String path;
  private final CacheKey key;
  private final List<String> snapshot;

  private ResultCache(String path, CacheKey key, List<String> snapshot) {
    this.path = path;
    this.key = key;
    this.snapshot = snapshot;
  }

  /**
   * The run's cache: null without {@code --cache}, or when the run's requests are not deterministic (sampled without
   * a given {@code --seed}: logged). Fingerprints the model (reading all of it) and lists the committed entries.
   *
   * @param gpu whether the inference tasks run on GPUs ({@link #tasksUseGpus})
   * @throws IllegalArgumentException when {@code --cache} is not a result cache or a new path
   */
  static ResultCache open(SparkSession spark, JobOptions o, ModelLocation model, boolean gpu) {
    String path = o.cache();
    if (path == null) {
      return null;
    }
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    check(path, conf);
    if (!o.isCacheable()) {
      LOG.info("--cache {}: this run samples without a given --seed; its requests are neither looked up nor added",
          path);
      return null;
    }
    CacheKey key = CacheKey.of(o, ModelFingerprint.of(model), gpu, ProjectVersion.get());
    List<String> snapshot = committed(path, conf);
    LOG.info("--cache {}: {} committed commit(s); model fingerprint {}, {} {} {}", path, snapshot.size(),
        key.modelFingerprint(), key.precision(), key.deviceKind(), key.backend());
    return new ResultCache(path, key, snapshot);
  }

  /**
   * Whether the run's inference tasks get GPUs, as {@link DeviceBinding} will bind them: {@code --device gpu...}, or
   * {@code auto} where Spark assigns GPUs to the inference stage (its profile, or the application's task resources).
   */
  static boolean tasksUseGpus(JobOptions o, InferenceStageProfile stage, org.apache.spark.SparkConf conf) {
    String device = o.device();
    if (!"auto".equals(device)) {
      return device.startsWith("gpu");
    }
    return stage.gpus() > 0 || conf.getDouble(InferenceStageProfile.TASK_GPUS, 0) > 0;
  }

  /**
   * Fails unless {@code path} is a result cache or a new path: a directory whose entries are all commits
   * ({@link #COMMIT_PREFIX}) or hidden.
   */
  static void check(String path, Configuration conf) {
    Path p = new Path(path);
    try {
      FileSystem fs = p.getFileSystem(conf);
      if (!fs.exists(p)) {
        return;
      }
      if (!fs.getFileStatus(p).isDirectory()) {
        throw new IllegalArgumentException("--cache " + path + " is a file; it must be a result cache directory");
      }
      for (FileStatus f : fs.listStatus(p)) {
        String name = f.getPath().getName();
        if (!name.startsWith("_") && !name.startsWith(".") && !(f.isDirectory() && name.startsWith(COMMIT_PREFIX))) {
          throw new IllegalArgumentException("--cache " + path + " holds " + name + ", which no result cache has; "
              + "give --cache a result cache or a new path");
        }
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("--cache " + path + ": cannot list it: " + e.getMessage(), e);
    }
  }

  /** Whether {@code path} is a directory of result cache commits (and nothing else visible). */
  static boolean isCache(String path, Configuration conf) {
    Path p = new Path(path);
    try {
      FileSystem fs = p.getFileSystem(conf);
      if (!fs.exists(p) || !fs.getFileStatus(p).isDirectory()) {
        return false;
      }
      boolean commits = false;
      for (FileStatus f : fs.listStatus(p)) {
        String name = f.getPath().getName();
        if (name.startsWith("_") || name.startsWith(".")) {
          continue;
        }
        if (!f.isDirectory() || !name.startsWith(COMMIT_PREFIX)) {
          return false;
        }
        commits = true;
      }
      return commits;
    } catch (IOException e) {
      return false;
    }
  }

  /** The commit directories of {@code path} whose commit finished ({@code _SUCCESS}), in name order. */
  static List<String> committed(String path, Configuration conf) {
    Path p = new Path(path);
    try {
      FileSystem fs = p.getFileSystem(conf);
      FileStatus[] done = fs.globStatus(new Path(p, COMMIT_PREFIX + "*/_SUCCESS"));
      List<String> dirs = new ArrayList<>();
      if (done != null) {
        for (FileStatus f : done) {
          dirs.add(f.getPath().getParent().toString());
        }
      }
      dirs.sort(null);
      return dirs;
    } catch (IOException e) {
      throw new IllegalArgumentException("--cache " + path + ": cannot list it: " + e.getMessage(), e);
    }
  }

  /**
   * The cache at {@code path} as readers see it: the committed entries, one per key (the first by
   * {@code created_at}, {@code run_id}, commit). Empty for a new path.
   */
  public static Dataset<Row> read(SparkSession spark, String path) {
    return firstPerKey(entries(spark, committed(path, spark.sparkContext().hadoopConfiguration())))
        .drop(COMMIT);
  }

  /** Every entry of the commits {@code dirs} (duplicate keys included), with the commit each came from. */
  private static Dataset<Row> entries(SparkSession spark, List<String> dirs) {
    if (dirs.isEmpty()) {
      return spark.createDataFrame(List.of(), Tables.RESULT_CACHE).withColumn(COMMIT, lit(""));
    }
    return spark.read().schema(Tables.RESULT_CACHE).parquet(dirs.toArray(String[]::new))
        .withColumn(COMMIT, org.apache.spark.sql.functions.input_file_name());
  }

  /** Of entries that share a key, the first by (created_at, run_id, commit). */
  private static Dataset<Row> firstPerKey(Dataset<Row> entries) {
    return entries.withColumn("_n", row_number().over(Window.partitionBy(col(Tables.KEY))
        .orderBy(col(Tables.CREATED_AT), col(Tables.RUN_ID), col(COMMIT)))).where(col("_n").equalTo(1)).drop("_n");
  }

  /** The key of each request of {@code groups} (prompt, ids): the first id's seed for a sampled one. */
  private Column keyOf(Column prompt, Column id) {
    CacheKey k = key;
    UserDefinedFunction f = udf((UDF2<String, String, String>) k::key, DataTypes.StringType);
    return f.apply(prompt, id);
  }

  /**
   * The requests (prompt, prompt_tokens, ids, tiebreak) with their key ({@link Tables#KEY}) and the cached answer,
   * if any, in columns named {@link #CACHED} + completion, output_token_ids, prompt_tokens, completion_tokens,
   * finish_reason, precision, device, layout (null for a miss). Reads the commits of the run's snapshot only.
   */
  Dataset<Row> lookup(Dataset<Row> groups) {
    SparkSession spark = groups.sparkSession();
    Dataset<Row> keyed = groups.withColumn(Tables.KEY, keyOf(col(Tables.PROMPT), element_at(col(Tables.IDS), 1)));
    Dataset<Row> found = firstPerKey(entries(spark, snapshot)
        .where(col(Tables.MODEL_FINGERPRINT).equalTo(key.modelFingerprint()))
        .join(keyed.select(col(Tables.KEY)), Tables.KEY, "left_semi"));
    List<Column> cached = new ArrayList<>();
    cached.add(col(Tables.KEY));
    for (String c : List.of(Tables.COMPLETION, Tables.OUTPUT_TOKEN_IDS, Tables.PROMPT_TOKENS, Tables.COMPLETION_TOKENS,
        Tables.FINISH_REASON, Tables.PRECISION, Tables.DEVICE, Tables.LAYOUT)) {
      cached.add(col(c).as(CACHED + c));
    }
    return keyed.join(found.select(cached.toArray(Column[]::new)), Tables.KEY, "left");
  }

  /** Whether a looked-up request was found. */
  static Column hit() {
    return col(CACHED + Tables.FINISH_REASON).isNotNull();
  }

  /** The completion rows ({@link Tables#COMPLETIONS}) of the looked-up requests that were found, one per id. */
  static Dataset<Row> hitRows(Dataset<Row> looked, String model, String runId) {
    Column nullString = lit(null).cast(DataTypes.StringType);
    return looked.where(hit()).select(
        explode(col(Tables.IDS)).as(Tables.ID),
        col(Tables.PROMPT),
        col(CACHED + Tables.COMPLETION).as(Tables.COMPLETION),
        col(CACHED + Tables.OUTPUT_TOKEN_IDS).as(Tables.OUTPUT_TOKEN_IDS),
        col(CACHED + Tables.PROMPT_TOKENS).as(Tables.PROMPT_TOKENS),
        col(CACHED + Tables.COMPLETION_TOKENS).as(Tables.COMPLETION_TOKENS),
        col(CACHED + Tables.FINISH_REASON).as(Tables.FINISH_REASON),
        nullString.as(Tables.ERROR_CODE),
        nullString.as(Tables.ERROR_MESSAGE),
        lit(model).as(Tables.MODEL),
        col(CACHED + Tables.PRECISION).as(Tables.PRECISION),
        col(CACHED + Tables.LAYOUT).as(Tables.LAYOUT),
        col(CACHED + Tables.DEVICE).as(Tables.DEVICE),
        nullString.as(Tables.EXECUTOR_ID),
        lit(0.0).as(Tables.LATENCY_MS),
        lit(0.0).as(Tables.TTFT_MS),
        lit(runId).as(Tables.RUN_ID),
        lit(true).as(Tables.CACHE_HIT));
  }

  /**
   * Adds the answers that one output commit of the run computed to the cache, as a commit of its own: the rows of
   * {@code ids} (the commit's computed ids) that the output holds under this run, without errors, computed in the
   * precision and on the device kind the key holds, one per key, less the keys committed meanwhile by other runs.
   * Nothing is added when the engines resolved another backend than the key holds (logged).
   *
   * @return the entries added
   */
  long append(SparkSession spark, Dataset<Row> written, Dataset<Row> ids, String model, String runId,
      JobMetrics metrics) {
    String backends = metrics.loadedBackends();
    if (backends != null && !backends.equals(key.backend())) {
      LOG.warn("--cache {}: the engines ran the {} backend, not {} as the key says; nothing is added", path, backends,
          key.backend());
      return 0;
    }
    CacheKey k = key;
    Column deviceKind = col(Tables.DEVICE).startsWith("gpu");
    Dataset<Row> computed = written
        .where(col(Tables.RUN_ID).equalTo(runId).and(col(Tables.CACHE_HIT).equalTo(false))
            .and(col(Tables.ERROR_CODE).isNull()).and(col(Tables.FINISH_REASON).notEqual("error"))
            .and(col(Tables.PRECISION).equalTo(key.precision()))
            .and(key.deviceKind().equals("gpu") ? deviceKind : deviceKind.isNull().or(deviceKind.unary_$bang())))
        .join(ids, Tables.ID, "left_semi")
        .withColumn(Tables.KEY, keyOf(col(Tables.PROMPT), col(Tables.ID)))
        .withColumn(Tables.SEED, udf((UDF1<String, Long>) k::seed, DataTypes.LongType).apply(col(Tables.ID)))
        .dropDuplicates(Tables.KEY);
    Dataset<Row> committedNow = entries(spark, committed(path, spark.sparkContext().hadoopConfiguration()))
        .where(col(Tables.MODEL_FINGERPRINT).equalTo(key.modelFingerprint())).select(col(Tables.KEY));
    Timestamp now = Timestamp.from(Instant.now());
    Dataset<Row> added = computed.join(committedNow, Tables.KEY, "left_anti").select(
        col(Tables.KEY),
        lit(key.modelFingerprint()).as(Tables.MODEL_FINGERPRINT),
        lit(key.settings()).as(Tables.SETTINGS),
        col(Tables.SEED),
        col(Tables.PROMPT),
        col(Tables.COMPLETION),
        col(Tables.OUTPUT_TOKEN_IDS),
        col(Tables.PROMPT_TOKENS),
        col(Tables.COMPLETION_TOKENS),
        col(Tables.FINISH_REASON),
        lit(model).as(Tables.MODEL),
        col(Tables.PRECISION),
        col(Tables.DEVICE),
        lit(key.backend()).as(Tables.BACKEND),
        col(Tables.LAYOUT),
        lit(runId).as(Tables.RUN_ID),
        lit(now).as(Tables.CREATED_AT));
    Dataset<Row> rows = added.persist(org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK());
    try {
      long n = rows.count();
      if (n == 0) {
        return 0;
      }
      String commit = new Path(path, COMMIT_PREFIX + runId + "-" + UUID.randomUUID().toString().substring(0, 8))
          .toString();
      spark.sparkContext().setJobDescription("sparkinfer " + runId + ": add " + n + " entries to the cache " + path);
      rows.coalesce((int) Math.max(1, Math.min(64, n / ENTRIES_PER_FILE))).write().mode(SaveMode.ErrorIfExists)
          .parquet(commit);
      LOG.info("--cache {}: {} new entries in {}", path, n, commit);
      return n;
    } finally {
      rows.unpersist();
    }
  }
}
