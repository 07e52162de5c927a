package io.sparkinfer.jobs.sweep;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.CliArgs;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.tune.Axis;
import io.sparkinfer.tune.Samplers;
import io.sparkinfer.tune.Space;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The options of {@link SweepJob}: the study's own (model, workload, space, sampler, repeats, constraints,
 * tables) and the engine's ({@link EngineOptions}: the values every trial starts from). The search space comes
 * from the axis flags ({@code --batch-sizes}, {@code --precisions}, {@code --threads}, {@code --prompt-lens},
 * {@code --output-lens}, and {@code --axis NAME=VALUES} for any engine option), or from a space file
 * ({@code --space}); flags add to or replace the file's axes.
 */
public final class SweepOptions implements Serializable {

  private static final long serialVersionUID = 1L;

  /** Axes that are not engine options: they shape the workload or the trial. */
  public static final String THREADS = "threads";
  public static final String PROMPT_LEN = "prompt-len";
  public static final String OUTPUT_LEN = "output-len";

  public static final Option<String> MODEL = Option.text("model", "DIR|URI", null,
      "Hugging Face checkpoint directory: a local path, or an hdfs:/s3a: URI").describedDefault("required");
  public static final Option<String> OUTPUT = Option.text("output", "PATH", null,
      "the sweep_trials table (a directory, appended; file:, hdfs:, s3a:); studies land in OUTPUT/_sweep_runs and "
          + "their reports in OUTPUT/_report/RUN_ID").describedDefault("required");
  public static final Option<String> INPUT = Option.text("input", "PATH", null,
      "prompts to time the trials on, a sample of this table (Parquet, JSONL or CSV; column prompt); without it, "
          + "synthetic prompts of --prompt-lens tokens").describedDefault("synthetic prompts");
  public static final Option<Integer> SAMPLE = Option.integerOrAuto("sample", "N|auto", 1,
      "prompts per trial repeat (a seeded sample of --input, or synthetic prompts); auto: two full batches, "
          + "2 x batch size x threads (64 prompts per thread for batch size auto)");
  public static final Option<String> SPACE = Option.text("space", "FILE", null,
      "a space file (JSON or YAML, see conf/sweep/): axis name -> values");
  public static final Option<String> BATCH_SIZES = axisFlag("batch-sizes", "the batch-size axis, e.g. 1,4,16 or 1..1024:log");
  public static final Option<String> PRECISIONS = axisFlag("precisions", "the precision axis, e.g. fp16,bf16");
  public static final Option<String> THREADS_AXIS = axisFlag("threads", "the decode-threads axis: threads, each with its own batch, e.g. 1,2");
  public static final Option<String> LAYOUTS = axisFlag("layouts", "the layout axis, layouts separated by ';', e.g. "
      + "'threads=1;threads=2;tp=2' (a threads axis overrides each layout's threads)");
  public static final Option<String> PROMPT_LENS = axisFlag("prompt-lens",
      "the synthetic prompt length axis (tokens), e.g. 128,512 (default 128 without --input)");
  public static final Option<String> OUTPUT_LENS = axisFlag("output-lens",
      "the output length axis: tokens generated per prompt, e.g. 64,256 (default --max-new-tokens)");
  public static final Option<List<String>> AXIS = Option.repeated("axis", "NAME=VALUES",
      "an axis over any engine option, e.g. --axis cuda-graphs=true,false --axis fused-attention=kernels,flash");
  public static final Option<String> SAMPLER = Option.text("sampler", "NAME", "grid",
      "grid (every combination), random, sobol (Commons Math's Sobol sequence), cmaes (CMA-ES on the numeric "
          + "axes, maximizing tokens/s)").matching(String.join("|", Samplers.NAMES), "one of " + Samplers.NAMES);
  public static final Option<Integer> TRIALS = Option.integer("trials", "N", 0,
      "most trials (0: the whole grid; random, sobol and cmaes need it)").atLeast(0);
  public static final Option<Long> SEED = Option.longInteger("seed", "S", 0,
      "seed of the sampler, the synthetic prompts and the --input sample");
  public static final Option<Integer> REPEATS = Option.integer("repeats", "N", 3,
      "timed repeats per trial, after an untimed warm-up; mean, standard deviation and 95% CI over them").atLeast(3);
  public static final Option<Integer> MAX_NEW_TOKENS = Option.integer("max-new-tokens", "N", 64,
      "tokens generated per prompt when there is no --output-lens axis (eos ignored)").atLeast(1);
  public static final Option<String> REFERENCE_PRECISION = Option.text("reference-precision", "fp32|fp16|bf16|none",
      "fp32", "run once to compare each trial's greedy tokens with (quality drift); none to skip")
      .matching("fp32|fp16|bf16|none", "one of fp32, fp16, bf16, none");
  public static final Option<Integer> AGREEMENT_PROMPTS = Option.integer("agreement-prompts", "N", 8,
      "first prompts whose greedy tokens are compared with the reference").atLeast(1);
  public static final Option<Double> LATENCY_BUDGET_MS = Option.number("latency-budget-ms", "MS", 0,
      "constraint: per-token latency p99 at most MS (0: none)").atLeast(0);
  public static final Option<Double> REQUEST_BUDGET_MS = Option.number("request-budget-ms", "MS", 0,
      "constraint: request latency p99 at most MS (0: none)").atLeast(0);
  public static final Option<Double> MEMORY_CAP_GB = Option.number("memory-cap-gb", "GB", 0,
      "constraint: peak GPU memory at most GB (0: none)").atLeast(0);
  public static final Option<Boolean> PRUNE = Option.flag("prune", false,
      "stop a trial after its first repeat when a finished trial is over 10% better in tokens/s and in p99 "
          + "token latency (status pruned): big studies finish sooner, at the price of fewer full measurements");
  public static final Option<Integer> PARALLEL = Option.integerOrAuto("parallel", "N|auto", 1,
      "trials at once; auto: one per GPU slot when Spark schedules GPUs, else 1 (trials on a CPU would share it)");
  public static final Option<String> RUN_ID = Option.text("run-id", "ID", null, "identifier of the study")
      .describedDefault("a timestamp and random suffix");
  public static final Option<Boolean> HELP = Option.flag("help", false, "print this help and exit");

  public static final OptionTable.Group SWEEP_GROUP = new OptionTable.Group("sweep options", List.of(MODEL, OUTPUT,
      INPUT, SAMPLE, SPACE, BATCH_SIZES, PRECISIONS, THREADS_AXIS, LAYOUTS, PROMPT_LENS, OUTPUT_LENS, AXIS, SAMPLER, TRIALS,
      SEED, REPEATS, MAX_NEW_TOKENS, REFERENCE_PRECISION, AGREEMENT_PROMPTS, LATENCY_BUDGET_MS, REQUEST_BUDGET_MS,
      MEMORY_CAP_GB, PRUNE, PARALLEL, RUN_ID, HELP));

  /** Everything {@code sweep.sh} takes: the sweep's options, then the engine's (each trial's starting values). */
  public static final OptionTable TABLE = new OptionTable(SWEEP_GROUP, EngineOptions.GROUP);

  private static Option<String> axisFlag(String name, String help) {
    return Option.text(name, "VALUES", null, help);
  }

  private final OptionValues values;
  private final Space space;

  /**
   * @throws IllegalArgumentException for a missing model or output, an empty space, or an axis that names no
   *     option
   */
  public SweepOptions(OptionValues values) {
    this.values = values;
    if (values.get(MODEL) == null || values.get(MODEL).isBlank()) {
      throw new IllegalArgumentException("--model is required");
    }
    if (values.get(OUTPUT) == null || values.get(OUTPUT).isBlank()) {
      throw new IllegalArgumentException("--output is required");
    }
    this.space = buildSpace();
    if (!"grid".equals(values.get(SAMPLER)) && values.get(TRIALS) == 0) {
      throw new IllegalArgumentException("--sampler " + values.get(SAMPLER) + " needs --trials N");
    }
  }

  /** Parses a command line resolved against {@code conf} and {@code environment}. */
  public static SweepOptions parse(String[] args, Function<String, String> conf, Function<String, String> environment) {
    return new SweepOptions(TABLE.resolve(TABLE.parse(args), conf, environment));
  }

  /** Whether {@code args} ask for the help (checked before anything else is resolved). */
  public static boolean wantsHelp(String[] args) {
    CliArgs parsed = TABLE.parse(args);
    return parsed.flag(HELP);
  }

  public static String usage() {
    return TABLE.usage("submit/sweep.sh --model DIR --output DIR [axes] [options]   |   submit/sweep.sh compare ...",
        "Times configurations of the engine (trials) on a workload and appends one row per trial to the sweep_trials\n"
            + "table at --output: tokens/s with a 95% CI over repeats, latency percentiles, GPU memory, agreement with\n"
            + "a reference precision, Pareto front and constraints; writes OUTPUT/_report/RUN_ID/ (charts, index.html,\n"
            + "best.properties for submit/infer.sh --properties-file).");
  }

  /**
   * The space: the file's axes, then the flags' (a flag replaces the file's axis of the same name). Every axis
   * names an engine option or one of {@link #THREADS}, {@link #PROMPT_LEN}, {@link #OUTPUT_LEN}, and its values
   * parse as that option's.
   */
  private Space buildSpace() {
    Map<String, Axis> axes = new LinkedHashMap<>();
    if (values.get(SPACE) != null) {
      for (Axis a : Space.load(Path.of(values.get(SPACE))).axes()) {
        axes.put(a.name(), a);
      }
    }
    addFlag(axes, "batch-size", BATCH_SIZES);
    addFlag(axes, "precision", PRECISIONS);
    addFlag(axes, THREADS, THREADS_AXIS);
    if (values.get(LAYOUTS) != null) { // layouts hold commas: ';' separates them
      axes.put(EngineOptions.LAYOUT.name(), Axis.of(EngineOptions.LAYOUT.name(),
          java.util.Arrays.stream(values.get(LAYOUTS).split(";")).map(String::trim).filter(v -> !v.isEmpty()).toList()));
    }
    addFlag(axes, PROMPT_LEN, PROMPT_LENS);
    addFlag(axes, OUTPUT_LEN, OUTPUT_LENS);
    for (String a : values.get(AXIS)) {
      int eq = a.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("--axis takes NAME=VALUES, got '" + a + "'");
      }
      String name = a.substring(0, eq).trim();
      axes.put(name, Axis.parse(name, a.substring(eq + 1)));
    }
    if (axes.isEmpty()) {
      throw new IllegalArgumentException("the search space is empty: give axes (--batch-sizes 1,4,16 --precisions "
          + "fp16,bf16 ...) or a --space file");
    }
    for (Axis a : axes.values()) {
      check(a);
    }
    return new Space(new ArrayList<>(axes.values()));
  }

  private void addFlag(Map<String, Axis> axes, String name, Option<String> flag) {
    String spec = values.get(flag);
    if (spec != null) {
      axes.put(name, Axis.parse(name, spec));
    }
  }

  /** The axis names an option or a workload axis, and each of its grid values parses as that option's. */
  private static void check(Axis a) {
    Option<?> option = EngineOptions.GROUP.options().stream().filter(o -> o.name().equals(a.name())).findFirst()
        .orElse(null);
    boolean workload = a.name().equals(THREADS) || a.name().equals(PROMPT_LEN) || a.name().equals(OUTPUT_LEN);
    if (option == null && !workload) {
      throw new IllegalArgumentException("axis '" + a.name() + "' is not an engine option nor one of threads, "
          + "prompt-len, output-len (engine options: see --help)");
    }
    List<String> sample = a.isRange() ? List.of(Long.toString(a.lo()), Long.toString(a.hi())) : a.values();
    for (String v : sample) {
      if (option != null) {
        try {
          option.parse(v);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException("axis " + a.name() + ": " + e.getMessage(), e);
        }
      } else {
        int n;
        try {
          n = Integer.parseInt(v);
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("axis " + a.name() + " takes positive integers, got '" + v + "'");
        }
        if (n < 1) {
          throw new IllegalArgumentException("axis " + a.name() + " takes positive integers, got '" + v + "'");
        }
      }
    }
  }

  public OptionValues values() {
    return values;
  }

  public <T> T get(Option<T> option) {
    return values.get(option);
  }

  public Space space() {
    return space;
  }

  public String model() {
    return values.get(MODEL);
  }

  public String output() {
    return values.get(OUTPUT).replaceAll("/+$", "");
  }

  /** The reference precision, or null for none. */
  public Precision referencePrecision() {
    String p = values.get(REFERENCE_PRECISION);
    return p.equals("none") ? null : Precision.parse(p);
  }

  /** The constraints in words, for the study's row; null when there are none. */
  public String constraintsText() {
    List<String> c = new ArrayList<>();
    if (values.get(LATENCY_BUDGET_MS) > 0) {
      c.add("token_latency_p99_ms <= " + values.get(LATENCY_BUDGET_MS));
    }
    if (values.get(REQUEST_BUDGET_MS) > 0) {
      c.add("latency_p99_ms <= " + values.get(REQUEST_BUDGET_MS));
    }
    if (values.get(MEMORY_CAP_GB) > 0) {
      c.add("peak_gpu_mem_mb <= " + values.get(MEMORY_CAP_GB) * 1024);
    }
    return c.isEmpty() ? null : String.join(" and ", c);
  }
}
