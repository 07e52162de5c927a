package io.sparkinfer.jobs;

import io.sparkinfer.cli.CliArgs;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.predict.EngineOptions;
import java.io.Serializable;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * The validated settings of one {@link BatchInferenceJob} run. Built from the command line and the Spark
 * conf by {@link #resolve}; the constructor checks every value and names the bad one.
 *
 * @param batchSize sequences per batch; 0 for {@code auto}
 * @param maxPromptTokens 0 for the model's own limit
 * @param partitions inference partitions per commit; 0 to derive from the cluster and the input
 * @param commitEvery rows per output commit; 0 for a single commit
 * @param precision null for auto
 * @param cudaGraphs let the scripted backend replay decode steps as CUDA graphs on a GPU ({@code --cuda-graphs})
 * @param runsTable null for {@code OUTPUT/_job_runs}
 * @param runId null to generate one
 */
public record JobOptions(
    String model,
    String input,
    String output,
    OutputFormat format,
    String inputFormat,
    String idColumn,
    String promptColumn,
    int maxNewTokens,
    double temperature,
    int topK,
    double topP,
    long seed,
    List<String> stop,
    boolean ignoreEos,
    Precision precision,
    String device,
    String backend,
    boolean cudaGraphs,
    int batchSize,
    int maxPromptTokens,
    int partitions,
    long commitEvery,
    boolean dedup,
    boolean resume,
    boolean overwrite,
    String runsTable,
    int progressSeconds,
    String runId) implements Serializable {

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

    static OutputFormat parse(String s) {
      for (OutputFormat f : values()) {
        if (f.label().equalsIgnoreCase(s)) {
          return f;
        }
      }
      throw new IllegalArgumentException("--format '" + s + "' is not supported (supported: parquet, jsonl)");
    }
  }

  static final List<String> INPUT_FORMATS = List.of("auto", "parquet", "jsonl", "csv");

  public JobOptions {
    require(model, JobOption.MODEL);
    require(input, JobOption.INPUT);
    require(output, JobOption.OUTPUT);
    if (!INPUT_FORMATS.contains(inputFormat)) {
      throw new IllegalArgumentException("--input-format '" + inputFormat + "' is not one of " + INPUT_FORMATS);
    }
    if (idColumn == null || idColumn.isBlank() || promptColumn == null || promptColumn.isBlank()) {
      throw new IllegalArgumentException("--id-column and --prompt-column must name columns");
    }
    positive(maxNewTokens, JobOption.MAX_NEW_TOKENS);
    nonNegative(batchSize, JobOption.BATCH_SIZE);
    nonNegative(maxPromptTokens, JobOption.MAX_PROMPT_TOKENS);
    nonNegative(partitions, JobOption.PARTITIONS);
    if (commitEvery < 0) {
      throw new IllegalArgumentException("--commit-every must be >= 0, got " + commitEvery);
    }
    nonNegative(progressSeconds, JobOption.PROGRESS_SECONDS);
    stop = stop == null ? List.of() : List.copyOf(stop);
    if (stop.stream().anyMatch(String::isEmpty)) {
      throw new IllegalArgumentException("--stop must not be empty");
    }
    if (resume && overwrite) {
      throw new IllegalArgumentException("--resume and --overwrite exclude each other");
    }
    samplingParams(temperature, topK, topP, 0L); // the engine's own checks and messages
    device = device == null ? "auto" : device.trim().toLowerCase(Locale.ROOT);
    try {
      new EngineOptions(model, precision, device, null, false); // the syntax only: GPUs are counted where it loads
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--device: " + e.getMessage(), e);
    }
    backend = backend == null ? "auto" : backend.toLowerCase(Locale.ROOT);
    if (!List.of("auto", EngineOptions.EAGER, EngineOptions.SCRIPTED).contains(backend)) {
      throw new IllegalArgumentException("--backend '" + backend + "' is not one of auto, eager, scripted");
    }
  }

  /** The sampling settings of a request whose seed is {@code seed}. */
  public SamplingParams sampling(long requestSeed) {
    return samplingParams(temperature, topK, topP, requestSeed);
  }

  private static SamplingParams samplingParams(double temperature, int topK, double topP, long seed) {
    try {
      return new SamplingParams(temperature, topK, topP, seed);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("bad sampling option: " + e.getMessage(), e);
    }
  }

  /** The backend for {@link EngineOptions}: null lets the engine choose (scripted on GPU, eager on CPU). */
  public String engineBackend() {
    return "auto".equals(backend) ? null : backend;
  }

  /** Whether every request decodes greedily (then identical prompts give identical completions). */
  public boolean isGreedy() {
    return sampling(0L).isGreedy();
  }

  /** The completions' location. */
  public String outputPath() {
    return output;
  }

  /** The job_runs table's location. */
  public String runsTablePath() {
    return runsTable != null ? runsTable : output.replaceAll("/+$", "") + "/_job_runs";
  }

  /** {@code auto} or the number. */
  public String batchSizeLabel() {
    return batchSize == 0 ? "auto" : Integer.toString(batchSize);
  }

  /**
   * Options from command-line values (as {@link #parseArgs} returns them), then {@code conf} (Spark conf
   * lookups by key, null when absent), then the defaults of {@link JobOption}.
   */
  public static JobOptions resolve(Map<JobOption, List<String>> args, Function<String, String> conf) {
    Map<JobOption, String> v = new EnumMap<>(JobOption.class);
    for (JobOption o : JobOption.values()) {
      List<String> given = args.get(o);
      String value = given != null && !given.isEmpty() ? given.get(given.size() - 1) : conf.apply(o.confKey());
      v.put(o, value != null ? value : o.defaultValue());
    }
    List<String> stops = args.containsKey(JobOption.STOP) ? args.get(JobOption.STOP)
        : v.get(JobOption.STOP) == null ? List.of() : List.of(v.get(JobOption.STOP));
    return new JobOptions(
        v.get(JobOption.MODEL),
        v.get(JobOption.INPUT),
        v.get(JobOption.OUTPUT),
        OutputFormat.parse(v.get(JobOption.FORMAT)),
        v.get(JobOption.INPUT_FORMAT).toLowerCase(Locale.ROOT),
        v.get(JobOption.ID_COLUMN),
        v.get(JobOption.PROMPT_COLUMN),
        parseInt(v, JobOption.MAX_NEW_TOKENS),
        parseDouble(v, JobOption.TEMPERATURE),
        parseInt(v, JobOption.TOP_K),
        parseDouble(v, JobOption.TOP_P),
        parseLong(v, JobOption.SEED),
        stops,
        parseBoolean(v, JobOption.IGNORE_EOS),
        "auto".equalsIgnoreCase(v.get(JobOption.PRECISION)) ? null : precision(v.get(JobOption.PRECISION)),
        v.get(JobOption.DEVICE),
        v.get(JobOption.BACKEND),
        parseBoolean(v, JobOption.CUDA_GRAPHS),
        "auto".equalsIgnoreCase(v.get(JobOption.BATCH_SIZE)) ? 0 : positiveInt(v, JobOption.BATCH_SIZE),
        parseInt(v, JobOption.MAX_PROMPT_TOKENS),
        parseInt(v, JobOption.PARTITIONS),
        parseLong(v, JobOption.COMMIT_EVERY),
        parseBoolean(v, JobOption.DEDUP),
        parseBoolean(v, JobOption.RESUME),
        parseBoolean(v, JobOption.OVERWRITE),
        v.get(JobOption.RUNS_TABLE),
        parseInt(v, JobOption.PROGRESS_SECONDS),
        v.get(JobOption.RUN_ID));
  }

  /**
   * Splits a command line into option values with the project's parser ({@link CliArgs}): {@code --name value},
   * {@code --name=value}, or {@code --name} for flags (also {@code --name=false}). Unknown options, missing
   * values and single options given twice are errors.
   */
  public static Map<JobOption, List<String>> parseArgs(String[] args) {
    CliArgs parsed = CliArgs.parse(Arrays.stream(JobOption.values()).map(JobOption::toCliOption).toList(), args);
    Map<JobOption, List<String>> out = new EnumMap<>(JobOption.class);
    for (JobOption o : JobOption.values()) {
      if (parsed.has(o.optionName())) {
        out.put(o, parsed.all(o.optionName()));
      }
    }
    return out;
  }

  private static void require(String value, JobOption o) {
    if (value == null || value.isBlank()) {
      throw new IllegalArgumentException("--" + o.optionName() + " is required (" + o.help() + ")");
    }
  }

  private static void positive(int value, JobOption o) {
    if (value <= 0) {
      throw new IllegalArgumentException("--" + o.optionName() + " must be > 0, got " + value);
    }
  }

  private static void nonNegative(int value, JobOption o) {
    if (value < 0) {
      throw new IllegalArgumentException("--" + o.optionName() + " must be >= 0, got " + value);
    }
  }

  private static Precision precision(String s) {
    try {
      return Precision.parse(s);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--precision: " + e.getMessage() + " or auto", e);
    }
  }

  private static int positiveInt(Map<JobOption, String> v, JobOption o) {
    int n = parseInt(v, o);
    positive(n, o);
    return n;
  }

  private static int parseInt(Map<JobOption, String> v, JobOption o) {
    try {
      return Integer.parseInt(v.get(o).trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--" + o.optionName() + " must be an integer, got '" + v.get(o) + "'", e);
    }
  }

  private static long parseLong(Map<JobOption, String> v, JobOption o) {
    try {
      return Long.parseLong(v.get(o).trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--" + o.optionName() + " must be an integer, got '" + v.get(o) + "'", e);
    }
  }

  private static double parseDouble(Map<JobOption, String> v, JobOption o) {
    try {
      return Double.parseDouble(v.get(o).trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--" + o.optionName() + " must be a number, got '" + v.get(o) + "'", e);
    }
  }

  private static boolean parseBoolean(Map<JobOption, String> v, JobOption o) {
    String s = v.get(o).trim().toLowerCase(Locale.ROOT);
    return switch (s) {
      case "true", "yes", "1" -> true;
      case "false", "no", "0" -> false;
      default -> throw new IllegalArgumentException("--" + o.optionName() + " must be true or false, got '" + v.get(o) + "'");
    };
  }
}
