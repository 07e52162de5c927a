package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.coalesce;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.monotonically_increasing_id;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.generate.RequestOptions;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.param.StringArrayParam;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Batch inference as a Spark ML stage: {@code transform} returns the input rows with the completion columns of the
 * {@code completions} table added ({@link Tables#COMPLETIONS}: the text under {@code outputCol}, the others under
 * their table names after {@code columnPrefix}), computed by the batch job's own path ({@link Completions}: one
 * engine per executor, the GPU Spark assigned, continuous batching, error values for prompts that cannot run). Lazy
 * like any transformation: nothing is planned or loaded until an action. Saved and loaded with its pipeline
 * ({@link DefaultParamsWritable}, {@link #read()}).
 *
 * <pre>{@code
 * TextGenerator g = new TextGenerator().setModel("/models/m").setInputCol("question").setOutputCol("answer")
 *     .setOption("max-new-tokens", "64").setOption("temperature", "0");
 * Dataset<Row> answered = g.transform(questions);
 * }</pre>
 *
 * <p>Options ({@link #setOption}) are the job's generation and engine options ({@code submit/infer.sh --help}),
 * checked when set; those not set come from Spark conf {@code spark.sparkinfer.<name>}, then their defaults. The
 * input is read twice (to plan and to join the answers back to their rows), so it must give the same rows in the same
 * partitions both times, as Spark's retries need anyway (files and tables do).
 */
public class TextGenerator extends Transformer implements DefaultParamsWritable {

  private static final long serialVersionUID = 1L;

  /** What {@link #setOption} takes: the generation and engine options, and the job's that apply to a Dataset. */
  static final OptionTable OPTIONS = new OptionTable(new OptionTable.Group("dataset options", List.of(
      JobOptions.DEDUP, JobOptions.MODEL_CACHE, JobOptions.INFERENCE_GPUS, JobOptions.PRELOAD_ENGINES)),
      RequestOptions.GROUP, EngineOptions.GROUP);

  /** The completion columns besides the id, the prompt and the text (which goes under {@code outputCol}). */
  static final List<String> DETAIL_COLUMNS = List.of(Tables.OUTPUT_TOKEN_IDS, Tables.PROMPT_TOKENS,
      Tables.COMPLETION_TOKENS, Tables.FINISH_REASON, Tables.ERROR_CODE, Tables.ERROR_MESSAGE, Tables.MODEL,
      Tables.PRECISION, Tables.LAYOUT, Tables.DEVICE, Tables.EXECUTOR_ID, Tables.LATENCY_MS, Tables.TTFT_MS,
      Tables.RUN_ID);

  private static final String ROW = "__sparkinfer_row";

  private final String uid;
  private final Param<String> model;
  private final Param<String> inputCol;
  private final Param<String> idCol;
  private final Param<String> outputCol;
  private final Param<String> columnPrefix;
  private final IntParam partitions;
  private final StringArrayParam options;

  public TextGenerator() {
    this(Identifiable.randomUID("textGenerator"));
  }

  /** With a given uid (pipelines load stages through this constructor). */
  public TextGenerator(String uid) {
    this.uid = uid;
    model = new Param<>(this, "model", "Hugging Face checkpoint directory: a local path, or an hdfs:/s3a: URI");
    inputCol = new Param<>(this, "inputCol", "the prompt column (a string)");
    idCol = new Param<>(this, "idCol", "a column of unique row ids (as the job's id column): sampled requests derive "
        + "their seeds from them, as the job does; empty: rows are numbered");
    outputCol = new Param<>(this, "outputCol", "the column of the completion text");
    columnPrefix = new Param<>(this, "columnPrefix", "prefix of the other completion columns (output_token_ids, "
        + "finish_reason, error_code, ...)");
    partitions = new IntParam(this, "partitions", "inference partitions (0: Spark's default parallelism)",
        ParamValidators.gtEq(0));
    options = new StringArrayParam(this, "options", "generation and engine options as name=value (see setOption)");
    setDefault(inputCol, "prompt");
    setDefault(idCol, "");
    setDefault(outputCol, "completion");
    setDefault(columnPrefix, "");
    setDefault(partitions, 0);
    setDefault(options, new String[0]);
  }

  @Override
  public String uid() {
    return uid;
  }

  public Param<String> model() {
    return model;
  }

  public Param<String> inputCol() {
    return inputCol;
  }

  public Param<String> idCol() {
    return idCol;
  }

  public Param<String> outputCol() {
    return outputCol;
  }

  public Param<String> columnPrefix() {
    return columnPrefix;
  }

  public IntParam partitions() {
    return partitions;
  }

  public StringArrayParam options() {
    return options;
  }

  public TextGenerator setModel(String value) {
    set(model, value);
    return this;
  }

  public TextGenerator setInputCol(String value) {
    set(inputCol, value);
    return this;
  }

  /**
   * Names a column of unique row ids, for sampled requests to derive their seeds from as the job does
   * ({@code --seed} and the id): the same rows then get the job's completions. Ids must be unique.
   */
  public TextGenerator setIdCol(String value) {
    set(idCol, value);
    return this;
  }

  public TextGenerator setOutputCol(String value) {
    set(outputCol, value);
    return this;
  }

  public TextGenerator setColumnPrefix(String value) {
    set(columnPrefix, value);
    return this;
  }

  public TextGenerator setPartitions(int value) {
    set(partitions, value);
    return this;
  }

  /**
   * Sets a generation or engine option by its command-line name, e.g. {@code setOption("max-new-tokens", "64")},
   * {@code setOption("precision", "fp16")}; a repeatable option ({@code stop}) adds a value each time.
   *
   * @throws IllegalArgumentException for an unknown option or a bad value, saying why
   */
  public TextGenerator setOption(String name, String value) {
    Option<?> o = OPTIONS.option(name);
    if (o == null) {
      throw new IllegalArgumentException("unknown option '" + name + "': " + optionNames());
    }
    if (o.name().equals("help")) {
      throw new IllegalArgumentException("option 'help' does not apply here");
    }
    try {
      o.parse(value);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("option " + name + ": " + e.getMessage(), e);
    }
    List<String> kept = new ArrayList<>();
    boolean repeatable = o.kind() == Option.Kind.REPEATED;
    for (String entry : $(options)) {
      if (repeatable || !entry.startsWith(name + "=")) {
        kept.add(entry);
      }
    }
    kept.add(name + "=" + value);
    set(options, kept.toArray(new String[0]));
    return this;
  }

  private static String optionNames() {
    Set<String> names = new LinkedHashSet<>();
    OPTIONS.options().forEach(o -> names.add(o.name()));
    names.remove("help");
    return "one of " + String.join(", ", names);
  }

  /** The options as the job resolves them: those set here, then Spark conf, then the defaults. */
  JobOptions jobOptions(SparkSession spark) {
    if (!isDefined(model) || $(model) == null || $(model).isBlank()) {
      throw new IllegalArgumentException("TextGenerator needs a model: setModel(DIR or URI)");
    }
    List<String> args = new ArrayList<>(List.of("--model=" + $(model)));
    for (String entry : $(options)) {
      args.add("--" + entry);
    }
    return JobOptions.forDataset(JobOptions.TABLE.resolve(JobOptions.TABLE.parse(args.toArray(new String[0])),
        key -> spark.conf().contains(key) ? spark.conf().get(key) : null));
  }

  @Override
  public StructType transformSchema(StructType schema) {
    String in = $(inputCol);
    if (!Arrays.asList(schema.fieldNames()).contains(in)) {
      throw new IllegalArgumentException("input column '" + in + "' is not among " + Arrays.toString(schema.fieldNames()));
    }
    if (!$(idCol).isEmpty() && !Arrays.asList(schema.fieldNames()).contains($(idCol))) {
      throw new IllegalArgumentException("id column '" + $(idCol) + "' is not among "
          + Arrays.toString(schema.fieldNames()));
    }
    if (!schema.apply(in).dataType().equals(DataTypes.StringType)) {
      throw new IllegalArgumentException("input column '" + in + "' must be a string, not "
          + schema.apply(in).dataType().simpleString());
    }
    StructType out = schema;
    for (StructField f : outputFields()) {
      if (Arrays.asList(out.fieldNames()).contains(f.name())) {
        throw new IllegalArgumentException("output column '" + f.name() + "' is already a column of the input: "
            + "choose another outputCol or columnPrefix");
      }
      out = out.add(f);
    }
    return out;
  }

  /** The added columns: the completion text, then the other completion columns, as the completions table has them. */
  private List<StructField> outputFields() {
    List<StructField> out = new ArrayList<>();
    StructField text = Tables.COMPLETIONS.apply(Tables.COMPLETION);
    out.add(new StructField($(outputCol), text.dataType(), true, text.metadata()));
    for (String c : DETAIL_COLUMNS) {
      StructField f = Tables.COMPLETIONS.apply(c);
      // every column may be null: a row whose prompt is null gets no answer row of its own
      out.add(new StructField($(columnPrefix) + c, f.dataType(), true, f.metadata()));
    }
    return out;
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType schema = transformSchema(dataset.schema());
    SparkSession spark = dataset.sparkSession();
    JobOptions o = jobOptions(spark);
    ModelLocation location = ModelLocation.check(o.model(), spark.sparkContext().hadoopConfiguration(),
        o.modelCache());
    Column numberedKey = monotonically_increasing_id().cast(DataTypes.StringType);
    Column key = $(idCol).isEmpty() ? numberedKey
        : coalesce(col("`" + $(idCol) + "`").cast(DataTypes.StringType), concat(lit("_row:"), numberedKey));
    Dataset<Row> numbered = dataset.toDF().withColumn(ROW, key);
    Column nullString = lit(null).cast(DataTypes.StringType);
    Dataset<Row> input = numbered.select(col(ROW).as(Tables.ID), col($(inputCol)).as(Tables.PROMPT),
        nullString.as(Tables.ERROR_CODE), nullString.as(Tables.ERROR_MESSAGE), nullString.as(Tables.SOURCE));
    int set = (Integer) $(partitions);
    int parts = set > 0 ? set : spark.sparkContext().defaultParallelism();
    String runId = uid + "-" + Instant.now().toEpochMilli();
    Dataset<Row> completions = Completions.generate(input, o, location, runId, parts,
        JobMetrics.register(spark.sparkContext()));
    List<Column> answer = new ArrayList<>();
    answer.add(col(Tables.ID).as(ROW));
    answer.add(col(Tables.COMPLETION).as($(outputCol)));
    for (String c : DETAIL_COLUMNS) {
      answer.add(col(c).as($(columnPrefix) + c));
    }
    List<Column> result = new ArrayList<>();
    for (String f : schema.fieldNames()) {
      result.add(col("`" + f + "`"));
    }
    return numbered.join(completions.select(answer.toArray(new Column[0])), ROW, "left")
        .select(result.toArray(new Column[0]));
  }

  @Override
  public TextGenerator copy(ParamMap extra) {
    return (TextGenerator) defaultCopy(extra);
  }

  /**
   * The plain form: {@code prompts} with the completion columns added, the prompts in column {@code prompt}, under
   * {@code options} ({@code infer.sh} names: {@code max-new-tokens}, {@code precision}, ...). The same as
   * {@code new TextGenerator().setModel(model).setOption(...).transform(prompts)}.
   */
  public static Dataset<Row> generate(Dataset<?> prompts, String model, java.util.Map<String, String> options) {
    TextGenerator g = new TextGenerator().setModel(model);
    options.forEach(g::setOption);
    return g.transform(prompts);
  }

  /** Reads a saved stage (pipelines call it when they load). */
  public static MLReader<TextGenerator> read() {
    return new DefaultParamsReader<>();
  }

  public static TextGenerator load(String path) {
    return read().load(path);
  }
}
