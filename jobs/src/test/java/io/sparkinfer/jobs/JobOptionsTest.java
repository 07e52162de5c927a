package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.backend.scripted.ScriptedOptions;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.generate.RequestOptions;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.Option;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The options table, parsing, precedence and validation; no Spark. */
class JobOptionsTest {

  static final String[] REQUIRED = {"--model", "/m", "--input", "/in.jsonl", "--output", "/out"};

  static JobOptions parse(Map<String, String> conf, String... extra) {
    return parse(conf, Map.of(), extra);
  }

  static JobOptions parse(Map<String, String> conf, Map<String, String> env, String... extra) {
    String[] args = new String[REQUIRED.length + extra.length];
    System.arraycopy(REQUIRED, 0, args, 0, REQUIRED.length);
    System.arraycopy(extra, 0, args, REQUIRED.length, extra.length);
    return JobOptions.parse(args, conf::get, env::get);
  }

  @Test
  void defaultsComeFromTheTable() {
    JobOptions o = parse(Map.of());
    assertThat(o.format()).isEqualTo(JobOptions.OutputFormat.PARQUET);
    assertThat(o.maxNewTokens()).isEqualTo(64);
    assertThat(o.batchSize()).as("auto").isZero();
    assertThat(o.text(GeneratorOptions.BATCH_SIZE)).isEqualTo("auto");
    assertThat(o.precision()).as("auto").isNull();
    assertThat(o.text(EngineOptions.PRECISION)).isEqualTo("auto");
    assertThat(o.device()).isEqualTo("auto");
    assertThat(o.isGreedy()).isTrue();
    assertThat(o.dedup()).isTrue();
    assertThat(o.runsTablePath()).isEqualTo("/out/_job_runs");
    assertThat(o.get(RequestOptions.STOP)).isEmpty();
    assertThat(o.get(ScriptedOptions.CUDA_GRAPHS)).as("on by default").isTrue();
    assertThat(o.modelCache()).as("java.io.tmpdir").isNull();
  }

  @Test
  void cudaGraphsIsAFlagOnByDefault() {
    Option<Boolean> graphs = ScriptedOptions.CUDA_GRAPHS;
    assertThat(graphs.isFlag()).isTrue();
    assertThat(parse(Map.of()).get(graphs)).as("default").isTrue();
    assertThat(parse(Map.of(), "--cuda-graphs").get(graphs)).as("given alone").isTrue();
    assertThat(parse(Map.of(), "--cuda-graphs=true").get(graphs)).isTrue();
    assertThat(parse(Map.of(), "--cuda-graphs=false").get(graphs)).as("turned off").isFalse();
    Map<String, String> off = Map.of("spark.sparkinfer.cuda-graphs", "false");
    assertThat(parse(off).get(graphs)).as("Spark conf when the flag is absent").isFalse();
    assertThat(parse(off, "--cuda-graphs").get(graphs)).as("command line beats the conf").isTrue();
    assertThat(parse(Map.of("spark.sparkinfer.cuda-graphs", "true"), "--cuda-graphs=false").get(graphs))
        .as("command line beats the conf").isFalse();
    assertThatThrownBy(() -> parse(Map.of(), "--cuda-graphs=maybe")).hasMessageContaining("--cuda-graphs is a flag");
    assertThatThrownBy(() -> parse(Map.of("spark.sparkinfer.cuda-graphs", "maybe")))
        .hasMessageContaining("--cuda-graphs (from spark.sparkinfer.cuda-graphs) must be true or false, got 'maybe'");
  }

  @Test
  void enginesLoadedWithDifferentOptionsAreDifferentKeys() {
    EngineOptions graphs = parse(Map.of(), "--precision", "fp16", "--backend", "scripted").engineOptions("/local/m", "gpu:0");
    assertThat(graphs.backend()).isEqualTo(BackendKind.SCRIPTED);
    assertThat(graphs.device()).as("the task's device").isEqualTo("gpu:0");
    var on = new ExecutorEngines.Key("hdfs:///m", graphs);
    var off = new ExecutorEngines.Key("hdfs:///m", graphs.with(ScriptedOptions.CUDA_GRAPHS, false));
    assertThat(on).isNotEqualTo(off);
    assertThat(on).isEqualTo(new ExecutorEngines.Key("hdfs:///m", graphs.with(ScriptedOptions.CUDA_GRAPHS, true)));
    assertThat(new ExecutorEngines.Key("hdfs:///m", graphs.with(GeneratorOptions.DECODE_CHUNK, 4)))
        .as("the generation loop's options are each caller's: one engine serves them all").isEqualTo(on);
    EngineOptions otherJob = parse(Map.of(), "--precision", "fp16", "--backend", "scripted", "--format", "jsonl",
        "--run-id", "x").engineOptions("/local/m", "gpu:0");
    assertThat(new ExecutorEngines.Key("hdfs:///m", otherJob)).as("the job's own options are not the engine's")
        .isEqualTo(on);
  }

  @Test
  void commandLineBeatsSparkConfWhichBeatsTheEnvironmentWhichBeatsTheDefault() {
    Map<String, String> conf = Map.of("spark.sparkinfer.max-new-tokens", "12", "spark.sparkinfer.top-k", "5");
    Map<String, String> env = Map.of("SPARKINFER_TOP_K", "7", "SPARKINFER_SEED", "9", "SPARKINFER_MAX_NEW_TOKENS", "3");
    JobOptions o = parse(conf, env, "--max-new-tokens=20", "--temperature", "0.5");
    assertThat(o.maxNewTokens()).as("command line").isEqualTo(20);
    assertThat(o.get(RequestOptions.TOP_K)).as("Spark conf over the environment").isEqualTo(5);
    assertThat(o.get(RequestOptions.SEED)).as("environment").isEqualTo(9L);
    assertThat(o.get(RequestOptions.TOP_P)).as("default").isEqualTo(1.0);
    assertThat(o.isGreedy()).isFalse();
    assertThatThrownBy(() -> parse(Map.of(), Map.of("SPARKINFER_SEED", "x")))
        .hasMessageContaining("--seed (from $SPARKINFER_SEED) must be an integer, got 'x'");
  }

  @Test
  void flagsRepeatableStopsAndFormats() {
    JobOptions o = parse(Map.of(), "--resume", "--stop", "\n\n", "--stop", "###", "--format", "JSONL",
        "--precision", "fp16", "--batch-size", "16", "--device", "GPU:1", "--ignore-eos", "--dedup=false",
        "--model-cache", "/fast/disk");
    assertThat(o.resume()).isTrue();
    assertThat(o.get(RequestOptions.STOP)).containsExactly("\n\n", "###");
    assertThat(o.format()).isEqualTo(JobOptions.OutputFormat.JSONL);
    assertThat(o.precision()).isEqualTo(Precision.FP16);
    assertThat(o.batchSize()).isEqualTo(16);
    assertThat(o.device()).isEqualTo("gpu:1");
    assertThat(o.get(RequestOptions.IGNORE_EOS)).isTrue();
    assertThat(o.dedup()).isFalse();
    assertThat(o.modelCache()).isEqualTo("/fast/disk");
    var request = o.request("r1", "hi", null);
    assertThat(request.stopStrings()).containsExactly("\n\n", "###");
    assertThat(request.ignoreEos()).isTrue();
  }

  @Test
  void badOptionsNameTheOptionAndTheValue() {
    assertThatThrownBy(() -> JobOptions.parse(new String[] {"--modle", "x"}, k -> null))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unknown option --modle");
    assertThatThrownBy(() -> JobOptions.parse(new String[] {"--model"}, k -> null))
        .hasMessageContaining("--model needs a value");
    assertThatThrownBy(() -> JobOptions.parse(new String[] {"stray"}, k -> null))
        .hasMessageContaining("unexpected argument 'stray'");
    assertThatThrownBy(() -> JobOptions.parse(new String[] {"--input", "i", "--output", "o"}, k -> null, k -> null))
        .hasMessageContaining("--model is required");
    assertThatThrownBy(() -> parse(Map.of(), "--max-new-tokens", "0")).hasMessageContaining("--max-new-tokens must be >= 1");
    assertThatThrownBy(() -> parse(Map.of(), "--max-new-tokens", "ten")).hasMessageContaining("must be an integer, got 'ten'");
    assertThatThrownBy(() -> parse(Map.of(), "--top-p", "1.5")).hasMessageContaining("top-p must be in (0, 1]");
    assertThatThrownBy(() -> parse(Map.of(), "--temperature", "-1")).hasMessageContaining("temperature must be >= 0");
    assertThatThrownBy(() -> parse(Map.of(), "--format", "csv")).hasMessageContaining("--format must be one of parquet, jsonl");
    assertThatThrownBy(() -> parse(Map.of(), "--precision", "int4")).hasMessageContaining("--precision must be one of")
        .hasMessageContaining("got 'int4'");
    assertThat(parse(Map.of(), "--precision", "bf16").precision()).isEqualTo(Precision.BF16);
    assertThatThrownBy(() -> parse(Map.of(), "--device", "tpu"))
        .hasMessageContaining("--device must be one of auto, cpu, gpu, gpu:N, gpu:N,M,..., got 'tpu'");
    assertThatThrownBy(() -> parse(Map.of(), "--layout", "tp=0")).hasMessageContaining("--layout")
        .hasMessageContaining("tp must be in [1, 64], got 0");
    assertThatThrownBy(() -> parse(Map.of(), "--layout", "gpus=2"))
        .hasMessageContaining("must be auto or replicas=R,tp=T,pp=P,threads=N");
    assertThat(parse(Map.of(), "--layout", "threads=2,replicas=2").get(EngineOptions.LAYOUT).label())
        .isEqualTo("replicas=2,tp=1,pp=1,threads=2");
    assertThatThrownBy(() -> parse(Map.of(), "--device", "gpu:one")).hasMessageContaining("got 'gpu:one'");
    assertThatThrownBy(() -> parse(Map.of(), "--batch-size", "-3")).hasMessageContaining("--batch-size must be >= 1 or auto");
    assertThatThrownBy(() -> parse(Map.of(), "--resume", "--overwrite")).hasMessageContaining("exclude each other");
    assertThatThrownBy(() -> parse(Map.of(), "--input-format", "xml")).hasMessageContaining("--input-format must be one of");
    assertThatThrownBy(() -> parse(Map.of(), "--resume=maybe")).hasMessageContaining("true or false");
    assertThatThrownBy(() -> parse(Map.of(), "--stop", "")).hasMessageContaining("--stop must be non-empty");
  }

  @Test
  void usageListsEveryOptionWithItsDefault() {
    String usage = JobOptions.usage();
    for (Option<?> o : JobOptions.TABLE.options()) {
      assertThat(usage).contains("--" + o.name());
    }
    assertThat(usage).contains("--max-new-tokens N").contains("(default: 64)").contains("spark.sparkinfer.<name>")
        .contains("SPARKINFER_<NAME>");
    assertThat(usage).contains("--cuda-graphs ").contains("(=false: one TorchScript call per step)");
    assertThat(usage).contains("engine options, developers' diagnostics:").contains("--profile-steps");
  }

  @Test
  void helpAndBadOptionsFromTheCommandLineNeedNoSpark() {
    var out = new java.io.ByteArrayOutputStream();
    var err = new java.io.ByteArrayOutputStream();
    assertThat(BatchInferenceJob.run(new String[] {"--help"}, new java.io.PrintStream(out), new java.io.PrintStream(err)))
        .isZero();
    assertThat(out.toString()).contains("usage: BatchInferenceJob").contains("--cuda-graphs");
    assertThat(BatchInferenceJob.run(new String[] {"--model", "/no/such/model", "--input", "x", "--output", "y"},
        new java.io.PrintStream(out), new java.io.PrintStream(err))).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    assertThat(err.toString()).contains("--model /no/such/model: no such directory");
  }

  @Test
  void devicesBindToTheGpuSparkAssigned() {
    var gpu = new org.apache.spark.resource.ResourceInformation("gpu", new String[] {"3", "4"});
    assertThat(DeviceBinding.assignedGpus(Map.of("gpu", gpu))).as("every GPU of the task, for its layout")
        .containsExactly("3", "4");
    assertThat(DeviceBinding.assignedGpus(Map.of())).isEmpty();
    assertThat(JobMetrics.deviceLabel(List.of(ai.djl.Device.gpu(2), ai.djl.Device.gpu(3))))
        .as("a replica split over two GPUs, as the rows name it").isEqualTo("gpu:2+gpu:3");
    var named = new org.apache.spark.resource.ResourceInformation("gpu", new String[] {"GPU-5d3a"});
    assertThatThrownBy(() -> DeviceBinding.assignedGpus(Map.of("gpu", named))).hasMessageContaining("CUDA device ordinals");
    assertThat(DeviceBinding.forTask("auto", null)).isEqualTo("cpu");
    assertThat(DeviceBinding.forTask("gpu:1", null)).isEqualTo("gpu:1");
    assertThat(RunPlan.defaultPartitions(10, 4)).isEqualTo(4);
    assertThat(RunPlan.defaultPartitions(3, 4)).as("no empty partitions").isEqualTo(3);
    assertThat(RunPlan.defaultPartitions(100_000, 4)).isEqualTo(49);
    assertThat(List.of(SqlRunner.format(null), SqlRunner.format("a\tb\nc"))).containsExactly("NULL", "a\\tb\\nc");
  }
}
