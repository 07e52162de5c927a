package io.sparkinfer.jobs;

import io.sparkinfer.cli.CliOption;
import java.util.Locale;

/**
 * The options of {@link BatchInferenceJob}, in one table: the name on the command line, its argument, its
 * default and its help line. Usage text is generated from this table.
 *
 * <p>Precedence: a command-line argument, else the Spark conf key {@code spark.sparkinfer.<name>} (so
 * {@code conf/*.properties} or {@code --conf} can set defaults for a cluster), else the default here.
 */
public enum JobOption {
  MODEL("model", "DIR|URI", null,
      "Hugging Face checkpoint directory: a local path, or an hdfs:/s3a: URI (copied once to each executor)"),
  INPUT("input", "PATH", null, "prompts: a Parquet, JSONL or CSV file or directory (file:, hdfs:, s3a:)"),
  OUTPUT("output", "PATH", null, "where the completions table is written (a directory; file:, hdfs:, s3a:)"),
  FORMAT("format", "parquet|jsonl", "parquet", "format of the completions table"),
  INPUT_FORMAT("input-format", "auto|parquet|jsonl|csv", "auto",
      "format of the input; auto goes by the file extension (.parquet, .jsonl/.json, .csv)"),
  ID_COLUMN("id-column", "NAME", "id",
      "input column with each row's stable id; when the input has no such column, ids are row-<position>"),
  PROMPT_COLUMN("prompt-column", "NAME", "prompt", "input column with the prompt text"),
  MAX_NEW_TOKENS("max-new-tokens", "N", "64", "most tokens generated per prompt"),
  TEMPERATURE("temperature", "T", "0", "0 for greedy decoding; above 0 samples"),
  TOP_K("top-k", "K", "0", "sample among the K most likely tokens (0: all)"),
  TOP_P("top-p", "P", "1.0", "sample among the most likely tokens whose probability reaches P"),
  SEED("seed", "S", "0",
      "job seed; each row samples from its own stream, seeded by S and its id (SamplingParams.requestSeed)"),
  STOP("stop", "TEXT", null, "stop string, repeatable: the completion ends before its first occurrence"),
  IGNORE_EOS("ignore-eos", null, "false", "keep generating past end-of-sequence tokens (benchmarks)"),
  PRECISION("precision", "auto|fp32|fp16|bf16", "auto", "weights and activations dtype; auto: fp32 on CPU, fp16 on GPU; bf16 runs on the scripted backend"),
  DEVICE("device", "auto|cpu|gpu|gpu:N", "auto",
      "auto: the GPU Spark assigned to the task (spark.task.resource.gpu.amount), else the CPU"),
  BACKEND("backend", "auto|eager|scripted", "auto", "engine backend; auto: scripted on GPU, eager on CPU"),
  CUDA_GRAPHS("cuda-graphs", null, "true",
      "scripted backend on a GPU: replay decode steps as CUDA graphs (--cuda-graphs=false turns them off)"),
  BATCH_SIZE("batch-size", "N|auto", "auto",
      "sequences generated together; auto sizes batches from the device's free memory"),
  MAX_PROMPT_TOKENS("max-prompt-tokens", "N", "0",
      "longer prompts become prompt_too_long error rows (0: the model's context less one)"),
  PARTITIONS("partitions", "N", "0",
      "inference partitions per commit, range-partitioned by prompt length (0: the cluster's parallelism, more for big inputs)"),
  COMMIT_EVERY("commit-every", "ROWS", "0",
      "commit the output in waves of about ROWS rows, so a failed run keeps what it finished (0: one commit)"),
  DEDUP("dedup", "true|false", "true", "with greedy decoding, compute identical prompts once"),
  RESUME("resume", null, "false", "skip ids already in --output and append the rest"),
  OVERWRITE("overwrite", null, "false", "replace --output if it exists"),
  RUNS_TABLE("runs-table", "PATH", null, "where the job_runs metrics row is appended (default: OUTPUT/_job_runs)"),
  PROGRESS_SECONDS("progress-seconds", "N", "5", "seconds between driver progress lines (0: none)"),
  RUN_ID("run-id", "ID", null, "identifier of this run in both tables (default: a timestamp and random suffix)"),
  HELP("help", null, "false", "print this help and exit");

  /** Prefix of the Spark conf keys that set defaults for these options. */
  public static final String CONF_PREFIX = "spark.sparkinfer.";

  private final String name;
  private final String argument;
  private final String defaultValue;
  private final String help;

  JobOption(String name, String argument, String defaultValue, String help) {
    this.name = name;
    this.argument = argument;
    this.defaultValue = defaultValue;
    this.help = help;
  }

  /** The name without dashes, e.g. {@code max-new-tokens}. */
  public String optionName() {
    return name;
  }

  /** The Spark conf key that sets this option's default, e.g. {@code spark.sparkinfer.max-new-tokens}. */
  public String confKey() {
    return CONF_PREFIX + name;
  }

  /** Whether the option is a flag (no argument). */
  public boolean isFlag() {
    return argument == null;
  }

  public boolean isRepeatable() {
    return this == STOP;
  }

  public String argument() {
    return argument;
  }

  public String defaultValue() {
    return defaultValue;
  }

  public String help() {
    return help;
  }

  /** This option as a row of the command-line parser's table. */
  public CliOption toCliOption() {
    return new CliOption(name, argument, defaultValue, help, isRepeatable());
  }

  /** The option called {@code name} (without dashes), or null. */
  public static JobOption byName(String name) {
    for (JobOption o : values()) {
      if (o.name.equals(name)) {
        return o;
      }
    }
    return null;
  }

  /** Usage text, generated from this table. */
  public static String usage() {
    StringBuilder sb = new StringBuilder();
    sb.append("Usage: BatchInferenceJob --model DIR --input PATH --output PATH [options]\n\n");
    sb.append("Completes every prompt of --input with the model and writes one row per input id to --output.\n\n");
    sb.append("Options (command line > Spark conf spark.sparkinfer.<name> > default):\n");
    int width = 0;
    for (JobOption o : values()) {
      width = Math.max(width, o.signature().length());
    }
    for (JobOption o : values()) {
      sb.append(String.format(Locale.ROOT, "  %-" + width + "s  %s", o.signature(), o.help));
      if (o.defaultValue != null && !o.isFlag()) {
        sb.append(" [").append(o.defaultValue).append(']');
      }
      sb.append('\n');
    }
    return sb.toString();
  }

  private String signature() {
    return "--" + name + (argument == null ? "" : " " + argument);
  }
}
