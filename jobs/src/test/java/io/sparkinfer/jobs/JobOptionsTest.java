package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The options table, parsing, precedence and validation; no Spark. */
class JobOptionsTest {

  static final String[] REQUIRED = {"--model", "/m", "--input", "/in.jsonl", "--output", "/out"};

  static JobOptions parse(Map<String, String> conf, String... extra) {
    String[] args = new String[REQUIRED.length + extra.length];
    System.arraycopy(REQUIRED, 0, args, 0, REQUIRED.length);
    System.arraycopy(extra, 0, args, REQUIRED.length, extra.length);
    return JobOptions.resolve(JobOptions.parseArgs(args), conf::get);
  }

  @Test
  void defaultsComeFromTheTable() {
    JobOptions o = parse(Map.of());
    assertThat(o.format()).isEqualTo(JobOptions.OutputFormat.PARQUET);
    assertThat(o.maxNewTokens()).isEqualTo(64);
    assertThat(o.batchSize()).as("auto").isZero();
    assertThat(o.precision()).as("auto").isNull();
    assertThat(o.device()).isEqualTo("auto");
    assertThat(o.isGreedy()).isTrue();
    assertThat(o.dedup()).isTrue();
    assertThat(o.runsTablePath()).isEqualTo("/out/_job_runs");
    assertThat(o.stop()).isEmpty();
    assertThat(o.cudaGraphs()).as("on by default").isTrue();
  }

  @Test
  void cudaGraphsIsAFlagOnByDefault() {
    assertThat(JobOption.CUDA_GRAPHS.isFlag()).isTrue();
    assertThat(parse(Map.of()).cudaGraphs()).as("default").isTrue();
    assertThat(parse(Map.of(), "--cuda-graphs").cudaGraphs()).as("given alone").isTrue();
    assertThat(parse(Map.of(), "--cuda-graphs=true").cudaGraphs()).isTrue();
    assertThat(parse(Map.of(), "--cuda-graphs=false").cudaGraphs()).as("turned off").isFalse();
    Map<String, String> off = Map.of("spark.sparkinfer.cuda-graphs", "false");
    assertThat(parse(off).cudaGraphs()).as("Spark conf when the flag is absent").isFalse();
    assertThat(parse(off, "--cuda-graphs").cudaGraphs()).as("command line beats the conf").isTrue();
    assertThat(parse(off, "--cuda-graphs=true").cudaGraphs()).as("command line beats the conf").isTrue();
    assertThat(parse(Map.of("spark.sparkinfer.cuda-graphs", "true"), "--cuda-graphs=false").cudaGraphs())
        .as("command line beats the conf").isFalse();
    assertThatThrownBy(() -> JobOptions.parseArgs(new String[] {"--cuda-graphs=maybe"}))
        .hasMessageContaining("--cuda-graphs is a flag");
    assertThatThrownBy(() -> parse(Map.of("spark.sparkinfer.cuda-graphs", "maybe")))
        .hasMessageContaining("--cuda-graphs must be true or false, got 'maybe'");
  }

  @Test
  void enginesLoadedWithAndWithoutCudaGraphsAreDifferentKeys() {
    io.sparkinfer.predict.EngineOptions graphs =
        new io.sparkinfer.predict.EngineOptions("/m", io.sparkinfer.model.Precision.FP16, "gpu:0", "scripted", false, true);
    var on = new ExecutorEngines.Key("hdfs:///m", graphs);
    var off = new ExecutorEngines.Key("hdfs:///m", graphs.withCudaGraphs(false));
    assertThat(on).isNotEqualTo(off);
    assertThat(on).isEqualTo(new ExecutorEngines.Key("hdfs:///m", graphs.withCudaGraphs(true)));
  }

  @Test
  void commandLineBeatsSparkConfWhichBeatsTheDefault() {
    Map<String, String> conf = Map.of("spark.sparkinfer.max-new-tokens", "12", "spark.sparkinfer.top-k", "5");
    JobOptions o = parse(conf, "--max-new-tokens=20", "--temperature", "0.5");
    assertThat(o.maxNewTokens()).as("command line").isEqualTo(20);
    assertThat(o.topK()).as("Spark conf").isEqualTo(5);
    assertThat(o.topP()).as("default").isEqualTo(1.0);
    assertThat(o.isGreedy()).isFalse();
  }

  @Test
  void flagsRepeatableStopsAndFormats() {
    JobOptions o = parse(Map.of(), "--resume", "--stop", "\n\n", "--stop", "###", "--format", "JSONL",
        "--precision", "fp16", "--batch-size", "16", "--device", "GPU:1", "--ignore-eos", "--dedup=false");
    assertThat(o.resume()).isTrue();
    assertThat(o.stop()).containsExactly("\n\n", "###");
    assertThat(o.format()).isEqualTo(JobOptions.OutputFormat.JSONL);
    assertThat(o.precision().label()).isEqualTo("fp16");
    assertThat(o.batchSize()).isEqualTo(16);
    assertThat(o.device()).isEqualTo("gpu:1");
    assertThat(o.ignoreEos()).isTrue();
    assertThat(o.dedup()).isFalse();
  }

  @Test
  void badOptionsNameTheOptionAndTheValue() {
    assertThatThrownBy(() -> JobOptions.parseArgs(new String[] {"--modle", "x"}))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unknown option --modle");
    assertThatThrownBy(() -> JobOptions.parseArgs(new String[] {"--model"}))
        .hasMessageContaining("--model needs a value");
    assertThatThrownBy(() -> JobOptions.parseArgs(new String[] {"stray"}))
        .hasMessageContaining("unexpected argument 'stray'");
    assertThatThrownBy(() -> JobOptions.resolve(JobOptions.parseArgs(new String[] {"--input", "i", "--output", "o"}),
        k -> null)).hasMessageContaining("--model is required");
    assertThatThrownBy(() -> parse(Map.of(), "--max-new-tokens", "0")).hasMessageContaining("--max-new-tokens must be > 0");
    assertThatThrownBy(() -> parse(Map.of(), "--max-new-tokens", "ten")).hasMessageContaining("must be an integer, got 'ten'");
    assertThatThrownBy(() -> parse(Map.of(), "--top-p", "1.5")).hasMessageContaining("top-p must be in (0, 1]");
    assertThatThrownBy(() -> parse(Map.of(), "--temperature", "-1")).hasMessageContaining("temperature must be >= 0");
    assertThatThrownBy(() -> parse(Map.of(), "--format", "csv")).hasMessageContaining("--format 'csv'");
    assertThatThrownBy(() -> parse(Map.of(), "--precision", "fp8")).hasMessageContaining("precision 'fp8'");
    assertThat(parse(Map.of(), "--precision", "bf16").precision()).isEqualTo(io.sparkinfer.model.Precision.BF16);
    assertThatThrownBy(() -> parse(Map.of(), "--device", "tpu"))
        .hasMessageContaining("--device: device 'tpu' is not one of cpu, gpu, gpu:N, auto");
    assertThatThrownBy(() -> parse(Map.of(), "--device", "gpu:one")).hasMessageContaining("device 'gpu:one'");
    assertThatThrownBy(() -> parse(Map.of(), "--batch-size", "-3")).hasMessageContaining("--batch-size must be > 0");
    assertThatThrownBy(() -> parse(Map.of(), "--resume", "--overwrite")).hasMessageContaining("exclude each other");
    assertThatThrownBy(() -> parse(Map.of(), "--input-format", "xml")).hasMessageContaining("--input-format 'xml'");
    assertThatThrownBy(() -> parse(Map.of(), "--resume=maybe")).hasMessageContaining("true or false");
  }

  @Test
  void usageListsEveryOptionWithItsDefault() {
    String usage = JobOption.usage();
    for (JobOption o : JobOption.values()) {
      assertThat(usage).contains("--" + o.optionName());
    }
    assertThat(usage).contains("--max-new-tokens N").contains("[64]").contains("spark.sparkinfer.<name>");
    assertThat(usage).contains("--cuda-graphs ").contains("--cuda-graphs=false turns them off");
  }

  @Test
  void helpAndBadOptionsFromTheCommandLineNeedNoSpark() {
    var out = new java.io.ByteArrayOutputStream();
    var err = new java.io.ByteArrayOutputStream();
    assertThat(BatchInferenceJob.run(new String[] {"--help"}, new java.io.PrintStream(out), new java.io.PrintStream(err)))
        .isZero();
    assertThat(out.toString()).contains("Usage: BatchInferenceJob").contains("--cuda-graphs");
    assertThat(BatchInferenceJob.run(new String[] {"--model", "/no/such/model", "--input", "x", "--output", "y"},
        new java.io.PrintStream(out), new java.io.PrintStream(err))).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(err.toString()).contains("--model /no/such/model: no such directory");
  }

  @Test
  void devicesBindToTheGpuSparkAssigned() {
    var gpu = new org.apache.spark.resource.ResourceInformation("gpu", new String[] {"3", "4"});
    assertThat(DeviceBinding.assignedGpu(Map.of("gpu", gpu))).isEqualTo("3");
    assertThat(DeviceBinding.assignedGpu(Map.of())).isNull();
    assertThat(DeviceBinding.forTask("auto", null)).isEqualTo("cpu");
    assertThat(DeviceBinding.forTask("gpu:1", null)).isEqualTo("gpu:1");
    assertThat(BatchInferenceJob.defaultPartitions(10, 4)).isEqualTo(4);
    assertThat(BatchInferenceJob.defaultPartitions(3, 4)).as("no empty partitions").isEqualTo(3);
    assertThat(BatchInferenceJob.defaultPartitions(100_000, 4)).isEqualTo(49);
    assertThat(List.of(SqlRunner.format(null), SqlRunner.format("a\tb\nc"))).containsExactly("NULL", "a\\tb\\nc");
  }
}
