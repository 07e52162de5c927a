package io.sparkinfer.predict;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.inference.Predictor;
import ai.djl.nn.LambdaBlock;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationConfig;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.kernels.ScriptedCausalLm;
import io.sparkinfer.model.CausalLm;
import io.sparkinfer.model.CausalLmBackend;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.model.RotaryEmbedding;
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
  private final ModelConfig config;
  private final ModelWeights weights;
  private final TextTokenizer tokenizer;
  private final Generator generator;
  private final GenerationConfig generation;
  private final Model djlModel;
  private final double loadSeconds;

  private LlmEngine(EngineOptions options, ModelConfig config, ModelWeights weights, TextTokenizer tokenizer,
      Generator generator, GenerationConfig generation, Model djlModel, double loadSeconds) {
    this.options = options;
    this.config = config;
    this.weights = weights;
    this.tokenizer = tokenizer;
    this.generator = generator;
    this.generation = generation;
    this.djlModel = djlModel;
    this.loadSeconds = loadSeconds;
  }

  /** Loads a checkpoint directory as {@code options} say. */
  public static LlmEngine load(EngineOptions options) {
    long start = System.nanoTime();
    Path dir = Path.of(options.modelDir());
    ModelConfig config = ModelConfig.load(dir);
    GenerationConfig generation = GenerationConfig.load(dir, config);
    Checkpoint checkpoint = Checkpoint.open(dir);
    Device device = options.resolveDevice();
    Precision precision = options.resolvePrecision(device);
    TextTokenizer tokenizer = TextTokenizer.load(dir);
    ModelWeights weights = null;
    try {
      weights = ModelWeights.load(checkpoint, config, precision, device);
      RotaryEmbedding rope = new RotaryEmbedding(config, options.ropeInCheckpointDtype());
      CausalLmBackend backend = switch (options.resolveBackend(device)) {
        case EngineOptions.SCRIPTED -> new ScriptedCausalLm(weights, rope, options.cudaGraphs());
        default -> new CausalLm(weights, rope);
      };
      Generator generator = new Generator(weights, backend, tokenizer, generation);
      Model model = Model.newInstance("sparkinfer-" + config.modelType(), device, "PyTorch");
      model.setBlock(new LambdaBlock(list -> list));
      return new LlmEngine(options, config, weights, tokenizer, generator, generation, model,
          (System.nanoTime() - start) / 1e9);
    } catch (RuntimeException e) {
      if (weights != null) {
        weights.close();
      }
      tokenizer.close();
      throw e;
    }
  }

  /** Completes requests in batches of {@code batchSize}; see {@link Generator#generate}. */
  public List<Completion> generate(List<GenerationRequest> requests, int batchSize) {
    return generator.generate(requests, batchSize);
  }

  /**
   * The largest batch of sequences of this length that fits the device's free memory now
   * ({@code --batch-size auto}).
   */
  public int autoBatchSize(int promptTokens, int newTokens) {
    return BatchSizer.fit(device(), config, precision().dataType(), promptTokens, newTokens);
  }

  /**
   * A DJL predictor over this engine: {@code predict(requests)} returns their completions in order. Close
   * it after use; the engine stays loaded.
   */
  public Predictor<List<GenerationRequest>, List<Completion>> newPredictor(int batchSize) {
    return djlModel.newPredictor(new GenerationTranslator(generator, batchSize));
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
    Generator g = new Generator(weights, generator.backend(), tokenizer, generation);
    g.setMaxPromptTokens(generator.maxPromptTokens());
    return g;
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
    return generator.backend() instanceof ScriptedCausalLm s && s.usesCudaGraphs();
  }

  /** The backend that runs the model: {@code eager} or {@code scripted}. */
  public String backendName() {
    return generator.backend().name();
  }

  public Precision precision() {
    return weights.precision();
  }

  public Device device() {
    return weights.device();
  }

  /** Seconds spent in {@link #load}. */
  public double loadSeconds() {
    return loadSeconds;
  }

  /** One line for logs: model, precision, device, backend (and whether it replays CUDA graphs, on a GPU). */
  public String describe() {
    String graphs = "";
    if (generator.backend() instanceof ScriptedCausalLm s && weights.device().isGpu()) {
      graphs = s.usesCudaGraphs() ? ", CUDA graphs" : ", no CUDA graphs: " + s.cudaGraphsOffReason();
      if (s.usesCudaGraphs()) {
        graphs += s.fusedDecodeOffReason() == null ? " of fused decode kernels"
            : " of the scripted step (not fused: " + s.fusedDecodeOffReason() + ")";
      }
    }
    return String.format(Locale.ROOT, "%s [%s, %s, %s backend%s]", config, weights.precision().label(),
        weights.device(), generator.backend().name(), graphs);
  }

  @Override
  public void close() {
    try (Model m = djlModel; ModelWeights w = weights; TextTokenizer t = tokenizer; CausalLmBackend b = generator.backend();
        Generator g = generator) {
      // closes in reverse order: generator, backend, tokenizer, weights, the DJL model
    }
  }
}
