package io.sparkinfer.engine;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.inference.Predictor;
import ai.djl.nn.LambdaBlock;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.fused.FusedOptions;
import io.sparkinfer.backend.scripted.ScriptedOptions;
import io.sparkinfer.backend.sharded.ShardedCausalLm;
import io.sparkinfer.cuda.CubinCache;
import io.sparkinfer.cuda.CublasOverride;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationConfig;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.model.RotaryEmbedding;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.safetensors.Checkpoint;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * A loaded model ready to generate: config, weights on the device, tokenizer and generation loop. Load
 * once per process (per executor in Spark) and share; close it to free the device memory.
 */
public final class LlmEngine implements AutoCloseable {

  private final EngineOptions options;
  private final Layout layout;
  private final List<Device> devices;
  private final ModelConfig config;
  private final ModelWeights weights;
  private final TextTokenizer tokenizer;
  private final Generator generator;
  private final GenerationConfig generation;
  private final Model djlModel;
  private final double loadSeconds;
  private final String loadPhases;

  private LlmEngine(EngineOptions options, Layout layout, List<Device> devices, ModelConfig config,
      ModelWeights weights, TextTokenizer tokenizer, Generator generator, GenerationConfig generation, Model djlModel,
      double loadSeconds, String loadPhases) {
    this.options = options;
    this.layout = layout;
    this.devices = List.copyOf(devices);
    this.config = config;
    this.weights = weights;
    this.tokenizer = tokenizer;
    this.generator = generator;
    this.generation = generation;
    this.djlModel = djlModel;
    this.loadSeconds = loadSeconds;
    this.loadPhases = loadPhases;
  }

  /**
   * Loads a checkpoint directory as {@code options} say: on one device, or split over the devices of one replica
   * of the layout (tp and pp; the whole weights are read into host memory once, and each shard copies its slice
   * to its device). Replicas and threads are the caller's: one engine per replica, a generator per thread.
   *
   * @throws IllegalArgumentException for a layout the model or the devices do not allow, before any weight loads
   */
  public static LlmEngine load(EngineOptions options) {
    long start = System.nanoTime();
    Path dir = Path.of(options.modelDir());
    ModelConfig config = ModelConfig.load(dir);
    GenerationConfig generation = GenerationConfig.load(dir, config);
    Checkpoint checkpoint = Checkpoint.open(dir);
    ModelWeights.check(checkpoint, config); // headers against config.json, before anything is allocated
    Layout layout = options.layout();
    List<Device> devices = options.resolveDevices(layout.auto() ? 1 : layout.devicesPerReplica());
    boolean gpu = devices.get(0).isGpu();
    Precision precision = options.resolvePrecision(devices.get(0));
    if (layout.auto()) {
      long weightBytes = (long) config.parameterCount() * precision.dataType().getNumOfBytes();
      layout = layout.resolve(config, devices.size(), weightBytes, gpu ? deviceBytes(devices.get(0)) : 0);
    }
    layout.perReplica().validate(config, gpu ? devices.size() : 1, gpu);
    if (options.get(ScriptedOptions.KV_CACHE_DTYPE) == ScriptedOptions.KvCacheDtype.FP8
        && (layout.isSharded() || options.resolveBackend(devices.get(0)) != BackendKind.SCRIPTED)) {
      throw new IllegalArgumentException("--kv-cache-dtype fp8 runs on the scripted backend on one device, not "
          + (layout.isSharded() ? "sharded (tp/pp)" : "on the " + options.resolveBackend(devices.get(0)).label()
          + " backend"));
    }
    TextTokenizer tokenizer = TextTokenizer.load(dir);
    LoadPhases phases = new LoadPhases(start);
    phases.done("config and tokenizer");
    ModelWeights weights = null;
    CausalLmBackend backend = null;
    try {
      RotaryEmbedding rope = new RotaryEmbedding(config, options.get(EngineOptions.ROPE_IN_CHECKPOINT_DTYPE));
      if (layout.isSharded()) {
        weights = ModelWeights.load(checkpoint, config, precision, Device.cpu());
        backend = new ShardedCausalLm(weights, rope, layout, devices);
      } else {
        weights = ModelWeights.load(checkpoint, config, precision, devices.get(0),
            CubinCache.of(options.get(FusedOptions.KERNEL_CACHE)));
        phases.done("weights");
        backend = options.resolveBackend(devices.get(0)).create(weights, rope, options.values());
      }
      phases.done("backend");
      Generator generator = new Generator(config, devices.get(0), precision, backend, tokenizer, generation,
          options.values());
      Model model = Model.newInstance("sparkinfer-" + config.modelType(), devices.get(0), "PyTorch");
      model.setBlock(new LambdaBlock(list -> list));
      phases.done("generator");
      return new LlmEngine(options, layout, devices, config, weights, tokenizer, generator, generation, model,
          (System.nanoTime() - start) / 1e9, phases.toString());
    } catch (RuntimeException e) {
      try (TextTokenizer t = tokenizer; ModelWeights w = weights; CausalLmBackend b = backend) {
        // closes what was made, in reverse order
      } catch (Exception closing) {
        e.addSuppressed(closing);
      }
      throw e;
    }
  }

  private static long deviceBytes(Device d) {
    return ai.djl.util.cuda.CudaUtils.getGpuMemory(d).getMax();
  }

  /** Completes requests in batches of the engine's {@code --batch-size} (auto: as many as fit). */
  public List<Completion> generate(List<GenerationRequest> requests) {
    return generator.generate(requests, options.get(GeneratorOptions.BATCH_SIZE));
  }

  /** Completes requests in batches of {@code batchSize} (0: auto); see {@link Generator#generate}. */
  public List<Completion> generate(List<GenerationRequest> requests, int batchSize) {
    return generator.generate(requests, batchSize);
  }

  /**
   * The largest batch of sequences of this length that fits the device's free memory now
   * ({@code --batch-size auto}).
   */
  public int autoBatchSize(int promptTokens, int newTokens) {
    return generator.autoBatchSize(promptTokens, newTokens);
  }

  /**
   * A DJL predictor over this engine: {@code predict(requests)} returns their completions in order. Close
   * it after use; the engine stays loaded.
   *
   * @param batchSize sequences decoding together; 0 for auto
   */
  public Predictor<List<GenerationRequest>, List<Completion>> newPredictor(int batchSize) {
    return newPredictor(generator, batchSize);
  }

  /** A DJL predictor over one of this engine's generators ({@link #newGenerator(OptionValues)}). */
  public Predictor<List<GenerationRequest>, List<Completion>> newPredictor(Generator over, int batchSize) {
    return djlModel.newPredictor(new GenerationTranslator(over, batchSize));
  }

  public ModelConfig config() {
    return config;
  }

  public Generator generator() {
    return generator;
  }

  /**
   * Another generation loop over the same weights and backend, with counters of its own: several threads
   * decoding separate batches on one GPU keep it busy while each waits on the host. Close it after use.
   */
  public Generator newGenerator() {
    return newGenerator(options.values());
  }

  /**
   * A generation loop over the same weights and backend with other {@link GeneratorOptions} (prompt limit,
   * prefill pass size, greedy chunk); the backend's own options are those it was loaded with.
   */
  public Generator newGenerator(OptionValues generatorOptions) {
    return new Generator(config, devices.get(0), weights.precision(), generator.backend(), tokenizer, generation,
        generatorOptions);
  }

  /** The backend that runs the model steps. */
  public CausalLmBackend backend() {
    return generator.backend();
  }

  public TextTokenizer tokenizer() {
    return tokenizer;
  }

  public ModelWeights weights() {
    return weights;
  }

  public EngineOptions options() {
    return options;
  }

  /** Whether decode steps replay CUDA graphs (the scripted backend on a GPU with the graphs library). */
  public boolean usesCudaGraphs() {
    return generator.backend().usesCudaGraphs();
  }

  /** The backend that runs the model: {@code eager} or {@code scripted}. */
  public String backendName() {
    return generator.backend().name();
  }

  public Precision precision() {
    return weights.precision();
  }

  /** The replica's first device: where requests enter and logits land. */
  public Device device() {
    return devices.get(0);
  }

  /** The replica's devices, one per shard (or the one device). */
  public List<Device> devices() {
    return devices;
  }

  /** The layout the engine runs, {@code auto} resolved. */
  public Layout layout() {
    return layout;
  }

  /** Seconds spent in {@link #load}. */
  public double loadSeconds() {
    return loadSeconds;
  }

  /**
   * Where {@link #load}'s time went, for logs: {@code "config and tokenizer 0.2 s, weights 3.1 s, backend 1.9 s,
   * generator 0.0 s"} (a sharded layout's weights are part of its backend).
   */
  public String loadPhases() {
    return loadPhases;
  }

  /** The seconds of each phase of a load, in order. */
  private static final class LoadPhases {
    private final StringBuilder text = new StringBuilder();
    private long last;

    LoadPhases(long start) {
      this.last = start;
    }

    void done(String phase) {
      long now = System.nanoTime();
      text.append(text.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%s %.1f s", phase,
          (now - last) / 1e9));
      last = now;
    }

    @Override
    public String toString() {
      return text.toString();
    }
  }

  /**
   * One line for logs: model, precision, device, how the backend runs (CUDA graphs, fused kernels), and the cuBLAS
   * where it is not the bundled one ({@code --cublas}).
   */
  public String describe() {
    return String.format(Locale.ROOT, "%s [%s, %s, %s%s%s]", config, weights.precision().label(), devices.size() == 1
        ? devices.get(0) : devices, generator.backend().describe(), layout.equals(Layout.SINGLE) ? ""
        : ", layout " + layout.label(), CublasOverride.applied().map(c -> ", " + c).orElse(""));
  }

  @Override
  public void close() {
    try (Model m = djlModel; ModelWeights w = weights; TextTokenizer t = tokenizer; CausalLmBackend b = generator.backend();
        Generator g = generator) {
      // closes in reverse order: generator, backend, tokenizer, weights, the DJL model
    }
  }
}
