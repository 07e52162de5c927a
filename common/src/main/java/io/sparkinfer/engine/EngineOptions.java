package io.sparkinfer.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import io.sparkinfer.backend.fused.FusedOptions;
import io.sparkinfer.backend.scripted.ScriptedOptions;
import io.sparkinfer.cuda.CublasOverride;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * What to load and how to run it: a checkpoint directory and the values of the engine's option table
 * ({@link #OPTIONS}): precision, device, backend, batch size, CUDA graphs, fused kernels and the rest, each
 * declared once where the code that reads it lives ({@link GeneratorOptions}, {@link ScriptedOptions},
 * {@link FusedOptions}) or here. {@code generate.sh}, the batch job, the benchmark and the sweep all take
 * this table, so every engine setting has one name, one default and one check, and each run records them.
 *
 * <p>Equal options load equal engines: the job's per-executor cache keys on them.
 */
public final class EngineOptions implements Serializable {

  private static final long serialVersionUID = 1L;

  /** {@code gpu:N} or {@code gpu:N,M,...}; whether the GPUs exist is checked where the model loads. */
  private static final Pattern DEVICE = Pattern.compile("auto|cpu|gpu|gpu:[0-9]{1,4}(,[0-9]{1,4})*");

  public static final Option<Precision> PRECISION = Option.choice("precision", null, true, Precision::label,
      "weights, activations and KV cache dtype (norms and softmax in fp32); auto: fp32 on CPU, fp16 on GPU; bf16 "
          + "and fp8 run on the scripted backend; fp8 (experimental): bf16 with the layers' projections as float8 e4m3 "
          + "matmuls (weights per channel, activations per token; emulated off CUDA), 1.3x fp16's end-to-end "
          + "speed on an H200 and less exact (README, fp8)", Precision.values());

  public static final Option<String> DEVICE_OPTION = Option.text("device", "auto|cpu|gpu|gpu:N[,M...]", "auto",
      "where to run; auto: the GPUs Spark assigned to the task, or outside Spark the first GPUs the layout needs, "
          + "else the CPU; gpu:0,1 names a split replica's GPUs")
      .normalized(s -> s.trim().toLowerCase(Locale.ROOT))
      .matching(DEVICE.pattern(), "one of auto, cpu, gpu, gpu:N, gpu:N,M,...");

  public static final Option<Layout> LAYOUT = Option.custom("layout", "auto|replicas=R,tp=T,pp=P,threads=N",
      Layout.SINGLE, Layout::parse, Layout::label,
      "how a task spreads the model over its devices: replicas (whole copies), tp (tensor-parallel shards of each "
          + "layer), pp (pipeline stages of layers), threads (decode threads per replica, each its own batch); "
          + "auto: the fewest devices that hold the weights, replicas on the rest");

  public static final Option<BackendKind> BACKEND = Option.choice("backend", null, true, BackendKind::label,
      "eager: the model in Java, op by op; scripted: one TorchScript call per step (CUDA graphs of fused kernels "
          + "on GPUs); auto: scripted on GPU, for bf16 and for a float8 KV cache, else eager", BackendKind.values());

  public static final Option<Boolean> ROPE_IN_CHECKPOINT_DTYPE = Option.flag("rope-in-checkpoint-dtype", false,
      "round rotary frequencies to the checkpoint dtype, as a transformers model cast with .to(dtype) does");

  /** Every engine option, in the order of the usage text. */
  public static final List<Option<?>> ALL = all();

  /** The table group of the engine options, as every tool lists it. */
  public static final OptionTable.Group GROUP = new OptionTable.Group("engine options", ALL);

  private static List<Option<?>> all() {
    List<Option<?>> all = new ArrayList<>(List.of(PRECISION, DEVICE_OPTION, BACKEND, LAYOUT));
    all.addAll(GeneratorOptions.ALL);
    all.addAll(ScriptedOptions.ALL);
    all.addAll(FusedOptions.ALL);
    all.add(ROPE_IN_CHECKPOINT_DTYPE);
    all.add(CublasOverride.CUBLAS);
    return List.copyOf(all);
  }

  private final String modelDir;
  private final OptionValues values;

  /**
   * @param modelDir a Hugging Face checkpoint directory
   * @param values the values of {@link #ALL}, possibly among a tool's others, which are left out: equal engine
   *     options mean the same engine whatever else the tool was given
   */
  public EngineOptions(String modelDir, OptionValues values) {
    if (modelDir == null || modelDir.isBlank()) {
      throw new IllegalArgumentException("a model directory is required");
    }
    for (Option<?> o : ALL) {
      if (!values.has(o)) {
        throw new IllegalArgumentException("engine options lack " + o);
      }
    }
    this.modelDir = modelDir;
    this.values = values.only(ALL);
  }

  /** Every option at its default. */
  public static EngineOptions of(Path modelDir) {
    return new EngineOptions(modelDir.toString(), OptionValues.defaults(ALL));
  }

  /** Every option at its default but the precision and device. */
  public static EngineOptions of(Path modelDir, Precision precision, String device) {
    return of(modelDir).with(PRECISION, precision).with(DEVICE_OPTION, device);
  }

  /** These options with {@code option} set to {@code value} (checked as the command line would be). */
  public <T> EngineOptions with(Option<T> option, T value) {
    return new EngineOptions(modelDir, values.with(option, value));
  }

  /**
   * These options with the generation loop's ({@link GeneratorOptions}: batch size, prompt limit, greedy chunk,
   * prefill pass, profiling) at their defaults: what decides the engine that is loaded. Engines are cached under
   * it, and each caller brings its own generation options ({@link LlmEngine#newGenerator(OptionValues)}), so
   * runs that differ only in those share one loaded engine.
   */
  public EngineOptions forLoading() {
    OptionValues v = values;
    for (Option<?> o : GeneratorOptions.ALL) {
      v = reset(v, o);
    }
    return new EngineOptions(modelDir, v);
  }

  private static <T> OptionValues reset(OptionValues v, Option<T> o) {
    return v.with(o, o.defaultValue());
  }

  /** The same options for another checkpoint directory (an executor's local copy of the model). */
  public EngineOptions withModelDir(String dir) {
    return new EngineOptions(dir, values);
  }

  public String modelDir() {
    return modelDir;
  }

  /** Every option's value: backends and the generation loop read theirs from it. */
  public OptionValues values() {
    return values;
  }

  public <T> T get(Option<T> option) {
    return values.get(option);
  }

  /** The precision asked for; null for auto. */
  public Precision precision() {
    return values.get(PRECISION);
  }

  /** {@code auto}, {@code cpu}, {@code gpu} or {@code gpu:N}. */
  public String device() {
    return values.get(DEVICE_OPTION);
  }

  /** The backend asked for; null for auto. */
  public BackendKind backend() {
    return values.get(BACKEND);
  }

  /** The layout asked for ({@code auto} unresolved). */
  public Layout layout() {
    return values.get(LAYOUT);
  }

  /** The first DJL device this names, resolving {@code auto} against the GPUs the engine sees. */
  public Device resolveDevice() {
    return resolveDevices(1).get(0);
  }

  /**
   * The devices of one replica: those named ({@code gpu:0,1}), else, for {@code auto} or {@code gpu}, the first
   * {@code wanted} GPUs the engine sees (the first alone when there are fewer: its shards then share it), else the
   * CPU.
   */
  public List<Device> resolveDevices(int wanted) {
    int gpus = gpuCount();
    String d = device();
    if ((d.equals("auto") && gpus > 0) || d.equals("gpu")) {
      List<Device> out = new ArrayList<>();
      for (int i = 0; i < (gpus >= wanted ? wanted : 1); i++) {
        out.add(requireGpu(i, gpus));
      }
      return out;
    }
    if (d.startsWith("gpu:")) {
      List<Device> out = new ArrayList<>();
      for (String index : d.substring(4).split(",")) {
        out.add(requireGpu(Integer.parseInt(index), gpus));
      }
      return out;
    }
    return List.of(parseDevice(d, gpus));
  }

  /**
   * The GPUs the PyTorch engine sees. The first call in a JVM loads the engine, after pointing it at the cuBLAS of
   * {@code --cublas} ({@link CublasOverride}).
   */
  public int gpuCount() {
    CublasOverride.ensure(values.get(CublasOverride.CUBLAS));
    return Engine.getEngine("PyTorch").getGpuCount();
  }

  /** The precision to load in: the given one, else fp16 on GPU and fp32 on CPU. */
  public Precision resolvePrecision(Device d) {
    Precision p = precision();
    return p != null ? p : d.isGpu() ? Precision.FP16 : Precision.FP32;
  }

  /**
   * The backend to run: the given one, else scripted on GPU (one call per step), for bf16 and for a float8 KV cache
   * (which only it computes in and holds), eager otherwise on CPU.
   */
  public BackendKind resolveBackend(Device d) {
    BackendKind b = backend();
    boolean scripted = d.isGpu() || resolvePrecision(d).isBf16()
        || get(ScriptedOptions.KV_CACHE_DTYPE) == ScriptedOptions.KvCacheDtype.FP8; // only it runs these
    return b != null ? b : scripted ? BackendKind.SCRIPTED : BackendKind.EAGER;
  }

  static Device parseDevice(String device, int gpuCount) {
    switch (device) {
      case "cpu":
        return Device.cpu();
      case "auto":
        return gpuCount > 0 ? Device.gpu(0) : Device.cpu();
      case "gpu":
        return requireGpu(0, gpuCount);
      default:
        if (device.startsWith("gpu:") && DEVICE.matcher(device).matches()) {
          return requireGpu(Integer.parseInt(device.substring(4).split(",")[0]), gpuCount);
        }
        throw new IllegalArgumentException("device '" + device + "' is not one of cpu, gpu, gpu:N, auto");
    }
  }

  private static Device requireGpu(int index, int gpuCount) {
    if (index < 0 || index >= gpuCount) {
      throw new IllegalArgumentException("GPU " + index + " requested but the engine sees " + gpuCount + " GPU(s)");
    }
    return Device.gpu(index);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof EngineOptions other && modelDir.equals(other.modelDir) && values.equals(other.values);
  }

  @Override
  public int hashCode() {
    return 31 * modelDir.hashCode() + values.hashCode();
  }

  @Override
  public String toString() {
    return "EngineOptions[" + modelDir + ", " + values + "]";
  }
}
