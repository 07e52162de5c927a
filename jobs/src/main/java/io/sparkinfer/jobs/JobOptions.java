package io.sparkinfer.jobs;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.generate.RequestOptions;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.CliArgs;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import java.io.Serializable;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * The options of {@link BatchInferenceJob}, in one table ({@link #TABLE}): the job's own (input, output,
 * partitioning, commits), the generation options every request gets ({@link RequestOptions}) and the
 * engine's ({@link EngineOptions}), the last two shared with {@code generate.sh}. Values resolve through the
 * table's precedence chain: command line, then Spark conf {@code spark.sparkinfer.<name>}, then the
 * environment, then the default; the constructor checks what spans several options.
 */
public final class JobOptions implements Serializable {

  private static final long serialVersionUID = 1L;

  /** Output table formats. */
  public enum OutputFormat {
    PARQUET("parquet"), JSONL("json");

    private final String sparkSource;

    OutputFormat(String sparkSource) {
      this.sparkSource = sparkSource;
    }

    /** The Spark data source name. */
    public String sparkSource() {
      return sparkSource;
    }

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Input table formats; {@code auto} goes by the file extensions. */
  public enum InputFormat {
    AUTO, PARQUET, JSONL, CSV;

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public static final Option<String> MODEL = Option.text("model", "DIR|URI", null,
      "Hugging Face checkpoint directory: a local path, or an hdfs:/s3a: URI (copied once to each executor)")
      .describedDefault("required");
  public static final Option<String> INPUT = Option.text("input", "PATH", null,
      "prompts: a Parquet, JSONL or CSV file or directory (file:, hdfs:, s3a:)").describedDefault("required");
  public static final Option<String> OUTPUT = Option.text("output", "PATH", null,
      "where the completions table is written (a directory; file:, hdfs:, s3a:)").describedDefault("required");
  public static final Option<OutputFormat> FORMAT = Option.choice("format", OutputFormat.PARQUET, false,
      OutputFormat::label, "format of the completions table", OutputFormat.values());
  public static final Option<InputFormat> INPUT_FORMAT = Option.choice("input-format", InputFormat.AUTO, false,
      InputFormat::label, "format of the input; auto goes by the file extension (.parquet, .jsonl/.json, .csv)",
      InputFormat.values());
  public static final Option<String> ID_COLUMN = Option.text("id-column", "NAME", "id",
      "input column with each row's stable id; when the input has no such column, ids are row-<position>")
      .matching(".*\\S.*", "a column name");
  public static final Option<String> PROMPT_COLUMN = Option.text("prompt-column", "NAME", "prompt",
      "input column with the prompt text").matching(".*\\S.*", "a column name");
  public static final Option<Integer> PARTITIONS = Option.integerOrAuto("partitions", "N|auto", 1,
      "inference partitions per commit, range-partitioned by prompt length; auto: the cluster's parallelism, "
          + "more for big inputs; in local mode the planned partitions instead, each sorted by length (no shuffle), "
          + "when they are as many and, under --dedup, no prompt repeats");
  public static final Option<Long> COMMIT_EVERY = Option.longInteger("commit-every", "ROWS", 0,
      "commit the output in waves of about ROWS rows, so a failed run keeps what it finished (0: one commit)")
      .atLeast(0);
  public static final Option<Boolean> DEDUP = Option.flag("dedup", true,
      "with greedy decoding, compute identical prompts once (=false: once per row)");
  public static final Option<Boolean> RESUME = Option.flag("resume", false,
      "skip ids already in --output and append the rest");
  public static final Option<Boolean> OVERWRITE = Option.flag("overwrite", false, "replace --output if it exists");
  public static final Option<String> RUNS_TABLE = Option.text("runs-table", "PATH", null,
      "where the job_runs metrics row is appended").describedDefault("OUTPUT/_job_runs");
  public static final Option<Integer> PROGRESS_SECONDS = Option.integer("progress-seconds", "N", 5,
      "seconds between driver progress lines (0: none)").atLeast(0);
  public static final Option<String> RUN_ID = Option.text("run-id", "ID", null,
      "identifier of this run in both tables").describedDefault("a timestamp and random suffix");
  public static final Option<String> MODEL_CACHE = Option.text("model-cache", "DIR", null,
      "where each executor keeps its local copy of an hdfs:/s3a: model").describedDefault("java.io.tmpdir");
  public static final Option<String> CACHE = Option.text("cache", "PATH", null,
      "result cache (a Parquet table; file:, hdfs:, s3a:): deterministic requests answered by an earlier run with the "
          + "same model weights, precision, engine and generation options are read from it, not computed; new answers "
          + "are added (README: Result cache)").describedDefault("none");
  /** {@link #INFERENCE_GPUS}'s value for {@code auto}. */
  public static final int AUTO_GPUS = -1;
  public static final Option<Integer> INFERENCE_GPUS = Option.custom("inference-gpus", "N|auto", AUTO_GPUS,
      JobOptions::parseInferenceGpus, v -> v == AUTO_GPUS ? "auto" : String.valueOf(v),
      "GPUs each inference task asks for through a stage-level resource profile, while reading, token counts and "
          + "the sort by length run as CPU tasks that share GPU slots (spark.task.resource.gpu.amount below 1); "
          + "0: no profile, every stage takes the application's task resources; auto: the layout's GPUs on a cluster "
          + "whose tasks take a fraction of a GPU, else 0");
  public static final Option<Boolean> PRELOAD_ENGINES = Option.flag("preload-engines", true,
      "start loading the model on each executor while its prompts are read and counted, so the load overlaps "
          + "the work before inference (=false: load at the first inference task; always so with an inference "
          + "stage profile, whose GPUs the planning tasks do not hold, and with --cache, which may answer every row)");
  public static final Option<Boolean> HELP = Option.flag("help", false, "print this help and exit");

  /** The job's own options. */
  public static final OptionTable.Group JOB_GROUP = new OptionTable.Group("job options", List.of(MODEL, INPUT, OUTPUT,
      FORMAT, INPUT_FORMAT, ID_COLUMN, PROMPT_COLUMN, PARTITIONS, COMMIT_EVERY, DEDUP, RESUME, OVERWRITE, CACHE,
      RUNS_TABLE, PROGRESS_SECONDS, RUN_ID, MODEL_CACHE, INFERENCE_GPUS, PRELOAD_ENGINES, HELP));

  /** Everything {@code infer.sh} takes: the job's options, the generation options, the engine's. */
  public static final OptionTable TABLE = new OptionTable(JOB_GROUP, RequestOptions.GROUP, EngineOptions.GROUP);

  private final OptionValues values;

  /**
   * @param values the values of {@link #TABLE}'s options
   * @throws IllegalArgumentException for a missing model, input or output, or options that exclude each other
   */
  public JobOptions(OptionValues values) {
    this(values, true);
  }

  private JobOptions(OptionValues values, boolean files) {
    this.values = values;
    require(MODEL);
    if (files) {
      require(INPUT);
      require(OUTPUT);
    }
    if (resume() && overwrite()) {
      throw new IllegalArgumentException("--resume and --overwrite exclude each other");
    }
    if (files && cache() != null && trimSlashes(cache()).equals(trimSlashes(output()))) {
      throw new IllegalArgumentException("--cache " + cache() + " is --output; give the result cache a path of its own");
    }
  }

  /**
   * The options of inference over a Dataset rather than files ({@link TextGenerator}): the model, the generation
   * and engine options, partitions and dedup; input and output are the caller's Datasets.
   */
  static JobOptions forDataset(OptionValues values) {
    return new JobOptions(values, false);
  }

  /** Parses a command line and resolves it against {@code conf} (Spark conf lookups by key, null when absent). */
  public static JobOptions parse(String[] args, Function<String, String> conf) {
    return new JobOptions(TABLE.resolve(TABLE.parse(args), conf));
  }

  /** Parses a command line resolved against {@code conf} and {@code environment} (tests pin both). */
  public static JobOptions parse(String[] args, Function<String, String> conf, Function<String, String> environment) {
    return new JobOptions(TABLE.resolve(TABLE.parse(args), conf, environment));
  }

  /** Whether {@code args} ask for the help (checked before anything else is resolved). */
  public static boolean wantsHelp(String[] args) {
    CliArgs parsed = TABLE.parse(args);
    return parsed.flag(HELP);
  }

  /** The usage text, generated from {@link #TABLE}. */
  public static String usage() {
    return TABLE.usage("BatchInferenceJob --model DIR --input PATH --output PATH [options]",
        "Completes every prompt of --input with the model and writes one row per input id to --output.");
  }

  private void require(Option<String> o) {
    String v = values.get(o);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(o + " is required (" + o.help() + ")");
    }
  }

  /** Every option's value. */
  public OptionValues values() {
    return values;
  }

  public <T> T get(Option<T> option) {
    return values.get(option);
  }


  /**
   * The engine options for a task: the model's local directory on the executor and the device the task
   * runs on ({@link DeviceBinding}).
   */
  public EngineOptions engineOptions(String localModelDir, String device) {
    return new EngineOptions(localModelDir, values.with(EngineOptions.DEVICE_OPTION, device));
  }

  /** The request for one row: the prompt (already tokenized, or null) with this job's generation options. */
  public GenerationRequest request(String id, String prompt, long[] promptTokenIds) {
    return RequestOptions.request(values, id, prompt, promptTokenIds);
  }

  /** The sampling settings of a request whose seed is {@code seed}. */
  public SamplingParams sampling(long requestSeed) {
    return RequestOptions.sampling(values, requestSeed);
  }

  /** Whether every request decodes greedily (then identical prompts give identical completions). */
  public boolean isGreedy() {
    return RequestOptions.isGreedy(values);
  }

  public String model() {
    return values.get(MODEL);
  }

  public String input() {
    return values.get(INPUT);
  }

  public String output() {
    return values.get(OUTPUT);
  }

  public OutputFormat format() {
    return values.get(FORMAT);
  }

  public InputFormat inputFormat() {
    return values.get(INPUT_FORMAT);
  }

  public String idColumn() {
    return values.get(ID_COLUMN);
  }

  public String promptColumn() {
    return values.get(PROMPT_COLUMN);
  }

  /** GPUs per inference task through a stage-level profile: 0 none, {@link #AUTO_GPUS} auto. */
  public int inferenceGpus() {
    return values.get(INFERENCE_GPUS);
  }

  private static int parseInferenceGpus(String text) {
    String s = text.trim();
    if (s.equalsIgnoreCase("auto")) {
      return AUTO_GPUS;
    }
    try {
      int n = Integer.parseInt(s);
      if (n >= 0) {
        return n;
      }
    } catch (NumberFormatException e) {
      // the message below
    }
    throw new IllegalArgumentException("must be a number of GPUs (0 for none) or auto");
  }

  /** Inference partitions per commit; 0 to derive from the cluster and the input. */
  public int partitions() {
    return values.get(PARTITIONS);
  }

  /** Rows per output commit; 0 for a single commit. */
  public long commitEvery() {
    return values.get(COMMIT_EVERY);
  }

  public boolean dedup() {
    return values.get(DEDUP);
  }

  public boolean resume() {
    return values.get(RESUME);
  }

  public boolean overwrite() {
    return values.get(OVERWRITE);
  }

  public int progressSeconds() {
    return values.get(PROGRESS_SECONDS);
  }

  /** The run's id as given; null to generate one. */
  public String runId() {
    return values.get(RUN_ID);
  }

  private static String trimSlashes(String path) {
    return path.replaceAll("/+$", "");
  }

  /** The result cache's location ({@code --cache}); null for none. */
  public String cache() {
    String c = values.has(CACHE) ? values.get(CACHE) : null; // TextGenerator's options have no cache
    return c == null || c.isBlank() ? null : c;
  }

  /**
   * Whether the run's requests are deterministic enough to cache: greedy, or sampled with a seed that was given
   * ({@code --seed}, its conf key or environment variable), not the default one.
   */
  public boolean isCacheable() {
    return isGreedy() || values.isGiven(RequestOptions.SEED);
  }

  /** The executors' local cache of remote models; null for java.io.tmpdir. */
  public String modelCache() {
    return values.get(MODEL_CACHE);
  }

  public int maxNewTokens() {
    return values.get(RequestOptions.MAX_NEW_TOKENS);
  }

  /** The engine's prompt limit; 0 for the model's context less one. */
  public int maxPromptTokens() {
    return values.get(GeneratorOptions.MAX_PROMPT_TOKENS);
  }

  /** Sequences per batch; 0 for auto. */
  public int batchSize() {
    return values.get(GeneratorOptions.BATCH_SIZE);
  }

  /** The precision asked for; null for auto. */
  public Precision precision() {
    return values.get(EngineOptions.PRECISION);
  }

  /** {@code auto}, {@code cpu}, {@code gpu} or {@code gpu:N}. */
  public String device() {
    return values.get(EngineOptions.DEVICE_OPTION);
  }

  /** The job_runs table's location. */
  public String runsTablePath() {
    String t = values.get(RUNS_TABLE);
    return t != null ? t : output().replaceAll("/+$", "") + "/_job_runs";
  }

  /** The value of {@code option} as it would be written on a command line. */
  public String text(Option<?> option) {
    return values.text(option);
  }
}
