package io.sparkinfer.jobs.sweep;

import ai.djl.engine.Engine;
import io.sparkinfer.base.OutOfMemory;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.EnginePool;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReplicaPlan;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.GenerationStats;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.jobs.DeviceBinding;
import io.sparkinfer.jobs.ExecutorEngines;
import io.sparkinfer.jobs.ModelLocation;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.tune.Pareto;
import io.sparkinfer.tune.Summary;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.Function;

/**
 * Runs one trial where the GPU is (a Spark task): takes the executor's engine for the trial's load options
 * ({@link ExecutorEngines}: trials that differ only in batch size, threads or other generation options share
 * one loaded engine), times the workload once untimed (graph capture, allocator warm-up) and then
 * {@link TrialSpec#repeats()} times, and reports throughput per repeat, latency percentiles over every request,
 * and the GPU's utilization and memory sampled meanwhile ({@link GpuMonitor}). Out of memory is a result
 * ({@link SweepTables#OOM}), as is any other failure ({@link SweepTables#FAILED}); neither stops the study.
 */
final class TrialRunner implements Function<TrialSpec, TrialResult>, Serializable {

  private static final long serialVersionUID = 1L;

  /** How much better a finished trial must be in both objectives for a new one to be pruned. */
  static final double PRUNE_MARGIN = 0.10;
  /** New tokens of the untimed warm-up. */
  static final int WARMUP_TOKENS = 4;

  private static final Map<Path, String> MODEL_HASHES = new ConcurrentHashMap<>();

  private final ModelLocation model;
  private final Workload workload;

  TrialRunner(ModelLocation model, Workload workload) {
    this.model = model;
    this.workload = workload;
  }

  @Override
  public TrialResult call(TrialSpec spec) {
    long started = System.currentTimeMillis();
    long t0 = System.nanoTime();
    String executorId = SparkEnv.get() == null ? "driver" : SparkEnv.get().executorId();
    String device = DeviceBinding.forTask(spec.engine().get(EngineOptions.DEVICE_OPTION), TaskContext.get());
    try {
      Path dir = model.localDir();
      EngineOptions options = new EngineOptions(dir.toString(), spec.engine()).with(EngineOptions.DEVICE_OPTION, device);
      ReplicaPlan plan = ReplicaPlan.of(options);
      List<LlmEngine> engines = new ArrayList<>();
      for (EngineOptions replica : plan.replicas()) {
        engines.add(ExecutorEngines.engine(new ExecutorEngines.Key(model.uri(), replica), (k, e, s) -> { }));
      }
      return measure(spec, plan, engines, options.values(), started, t0, executorId, modelHash(dir));
    } catch (RuntimeException | IOException e) {
      String status = OutOfMemory.causedBy(e) ? SweepTables.OOM : SweepTables.FAILED;
      return TrialResult.notRun(spec, status, String.valueOf(e), started, (System.nanoTime() - t0) / 1e9, executorId,
          device);
    }
  }

  private TrialResult measure(TrialSpec spec, ReplicaPlan plan, List<LlmEngine> engines, OptionValues values,
      long started, long t0, String executorId, String modelHash) {
    LlmEngine engine = engines.get(0);
    List<long[]> prompts = workload.promptIds(engine.tokenizer(), engine.config().vocabSize(), spec.promptLen(),
        spec.isReference() ? spec.agreementPrompts() : spec.prompts()); // the reference: only their tokens count
    int batch = values.get(GeneratorOptions.BATCH_SIZE);
    boolean gpu = engine.device().isGpu();
    TrialResult.Gpu gpuInfo = gpu ? GpuMonitor.describe(engine.device().getDeviceId()) : null;
    String failure = null;
    if (!spec.isReference()) {
      Run warmup = run(plan, engines, values, prompts.subList(0, Math.min(prompts.size(),
          Math.max(1, batch) * plan.generators())), WARMUP_TOKENS);
      failure = warmup.firstError();
    }
    List<Run> timed = new ArrayList<>();
    String status = SweepTables.OK;
    try (GpuMonitor monitor = gpu ? GpuMonitor.start(engine.device().getDeviceId()) : null) {
      for (int r = 0; r < spec.repeats() && failure == null; r++) {
        Run run = run(plan, engines, values, prompts, spec.maxNewTokens());
        failure = run.firstError();
        if (failure == null) {
          timed.add(run);
          if (r == 0 && dominated(run, spec.pruneAgainst())) {
            status = SweepTables.PRUNED;
            break;
          }
        }
      }
      if (failure != null) {
        status = OutOfMemory.says(failure) ? SweepTables.OOM : SweepTables.FAILED;
      }
      double[] tokensPerS = timed.stream().mapToDouble(Run::tokensPerSecond).toArray();
      List<Completion> all = timed.stream().flatMap(r -> r.completions().stream()).toList();
      double prefillSeconds = timed.stream().mapToDouble(Run::prefillSeconds).sum();
      long promptTokens = timed.stream().mapToLong(Run::promptTokens).sum();
      List<long[]> agreement = new ArrayList<>();
      if (!timed.isEmpty()) {
        for (int i = 0; i < Math.min(spec.agreementPrompts(), timed.get(0).completions().size()); i++) {
          agreement.add(timed.get(0).completions().get(i).outputTokenIds());
        }
      }
      return new TrialResult(spec.trial(), spec.params(), status, failure, started, (System.nanoTime() - t0) / 1e9,
          executorId, label(engine.device()), engine.precision().label(), engine.backendName(),
          engine.backend().describe(), values.texts(EngineOptions.ALL), spec.threads(), batch == 0 ? null : batch,
          workload.isSynthetic() ? spec.promptLen() : null, spec.maxNewTokens(), tokensPerS,
          prefillSeconds > 0 ? promptTokens / prefillSeconds : null,
          percentiles(all, c -> c.timeToFirstTokenMs()), percentiles(all, TrialRunner::tokenLatencyMs),
          percentiles(all, Completion::latencyMs), gpuInfo,
          monitor == null ? null : monitor.peakMemoryMb(), monitor == null ? null : monitor.meanUtilization(),
          monitor == null ? null : monitor.meanMemoryMb(), modelHash, Engine.getDjlVersion(),
          Engine.getEngine("PyTorch").getVersion(), agreement);
    }
  }

  /** One pass over the prompts on {@code threads} generators at once, each decoding its own batches. */
  private record Run(List<Completion> completions, long nanos, long promptTokens, double prefillSeconds) {
    double tokensPerSecond() {
      long tokens = completions.stream().mapToLong(Completion::completionTokens).sum();
      return tokens / (nanos / 1e9);
    }

    String firstError() {
      return completions.stream().filter(Completion::isError).map(Completion::errorMessage).findFirst().orElse(null);
    }
  }

  /**
   * One pass over the prompts on the layout's generators at once ({@link EnginePool}: replicas times threads,
   * each decoding its own batches), made afresh so that their counters count this pass alone.
   */
  private static Run run(ReplicaPlan plan, List<LlmEngine> engines, OptionValues values, List<long[]> prompts,
      int maxNew) {
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < prompts.size(); i++) {
      requests.add(new GenerationRequest("p" + i, null, maxNew, SamplingParams.GREEDY, List.of(), true, prompts.get(i)));
    }
    try (EnginePool pool = EnginePool.over(plan, engines, values, "sparkinfer-trial")) {
      long start = System.nanoTime();
      List<Completion> out = pool.generate(requests, values.get(GeneratorOptions.BATCH_SIZE));
      long nanos = System.nanoTime() - start;
      GenerationStats s = pool.stats();
      return new Run(out, nanos, s.promptTokens(), s.prefillNanos() / 1e9 / pool.members().size());
    }
  }


  /** Whether a finished trial beats the first repeat by {@link #PRUNE_MARGIN} in tokens/s and in latency. */
  static boolean dominated(Run first, List<double[]> finished) {
    double tps = first.tokensPerSecond();
    double latency = percentiles(first.completions(), TrialRunner::tokenLatencyMs)[1];
    if (Double.isNaN(latency)) {
      latency = percentiles(first.completions(), Completion::latencyMs)[1];
    }
    return dominated(tps, latency, finished);
  }

  /** {@link #dominated(Run, List)} on the numbers: (tokens/s, latency) against finished trials'. */
  static boolean dominated(double tokensPerS, double latencyMs, List<double[]> finished) {
    double[] margined = {tokensPerS * (1 + PRUNE_MARGIN), latencyMs / (1 + PRUNE_MARGIN)};
    for (double[] f : finished) {
      if (Pareto.dominates(f, margined, Pareto.Direction.MAXIMIZE, Pareto.Direction.MINIMIZE)) {
        return true;
      }
    }
    return false;
  }

  /** Milliseconds per generated token after the first; NaN for outputs of one token. */
  static double tokenLatencyMs(Completion c) {
    return c.completionTokens() > 1 ? (c.latencyMs() - c.timeToFirstTokenMs()) / (c.completionTokens() - 1)
        : Double.NaN;
  }

  /** p50 and p99 of a metric over completions (NaN values left out); NaN when there are none. */
  static double[] percentiles(List<Completion> completions, java.util.function.ToDoubleFunction<Completion> metric) {
    double[] v = completions.stream().mapToDouble(metric).filter(x -> !Double.isNaN(x)).toArray();
    return new double[] {Summary.percentile(v, 50), Summary.percentile(v, 99)};
  }

  private static String label(ai.djl.Device d) {
    return d.isGpu() ? "gpu:" + d.getDeviceId() : "cpu";
  }

  /** sha256 of the checkpoint's safetensors files, in name order: the model's identity, whatever its path. */
  static String modelHash(Path dir) throws IOException {
    String known = MODEL_HASHES.get(dir);
    if (known != null) {
      return known;
    }
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
    }
    byte[] buffer = new byte[1 << 20];
    for (Path f : files) {
      try (InputStream in = new DigestInputStream(Files.newInputStream(f), digest)) {
        while (in.read(buffer) >= 0) {
          // the digest reads along
        }
      }
    }
    String hash = HexFormat.of().formatHex(digest.digest());
    MODEL_HASHES.put(dir, hash);
    return hash;
  }
}
