package io.sparkinfer.jobs;

import ai.djl.Device;
import com.google.gson.Gson;
import io.sparkinfer.cuda.CublasOverride;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.generate.RequestOptions;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionValues;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;

/**
 * The result cache's key of a request: SHA-256 (hex) of a canonical text of everything that decides its answer,
 * one component per line, the prompt last (so no prompt can be mistaken for another component):
 *
 * <pre>
 * sparkinfer-result-cache 1
 * sparkinfer 0.1.0                   the project version: a new engine may compute otherwise
 * model 3f2a...                      ModelFingerprint: weights, config, generation config, tokenizer, by content
 * precision fp32                     as the engine will resolve it (auto: fp16 on a GPU, fp32 on a CPU)
 * device cpu                         the device kind the inference tasks get: cpu or gpu
 * backend eager                      as the engine will resolve it (auto: scripted on GPUs and for bf16)
 * layout tp=1,pp=1                   how a replica is split (replicas and threads do not change tokens); or auto
 * engine cuda-graphs=true;...        every other engine option but those that cannot change tokens (below)
 * max-new-tokens 8
 * stop []                            JSON
 * ignore-eos false
 * sampling greedy                    or: sampling temperature=0.9 top-k=20 top-p=1.0 seed=-71...
 * prompt def f(x):...
 * </pre>
 *
 * <p>The prompt is its text: with the tokenizer's files in the model fingerprint, the text decides its token ids.
 * Greedy requests leave sampling settings and seeds out (greedy is greedy whatever the temperature's spelling),
 * so equal prompts hit whatever their ids. A sampled request's line holds its own derived seed
 * ({@link SamplingParams#requestSeed}: the run's {@code --seed} and the row's id), so it hits only for the same
 * id and run seed. Left out as unable to change a token: {@code --batch-size} (the engine's greedy tokens are
 * the same alone and in padded batches), {@code --max-prompt-tokens} (it only decides which rows are errors, and
 * errors are never cached), {@code --oom-retry}, {@code --profile-steps}, {@code --graph-timing}, {@code --kernel-cache}
 * (where compiled kernels are kept), and the device's index ({@code gpu:0} and {@code gpu:1} are one kind).
 * {@code --cublas} is named only where it is not {@code bundled} (another cuBLAS may round otherwise), so the keys of
 * runs that never set it stay what they were before the option.
 */
final class CacheKey implements Serializable {

  private static final long serialVersionUID = 1L;

  /**
   * The canonical text's format; a new one makes every old entry a miss. Raise it with any change that makes the
   * engine give other tokens for the same request within one project version (a SNAPSHOT keeps its version). 2: fp8
   * adds the q/k/v bias inside the float8 product (its tokens may differ from format 1's).
   */
  static final int FORMAT = 2;

  /** Engine options whose value cannot change a token, or that the key holds resolved (precision, device, ...). */
  static final Set<Option<?>> NOT_IN_KEY = Set.of(EngineOptions.PRECISION, EngineOptions.DEVICE_OPTION,
      EngineOptions.BACKEND, EngineOptions.LAYOUT, GeneratorOptions.BATCH_SIZE, GeneratorOptions.MAX_PROMPT_TOKENS,
      GeneratorOptions.OOM_RETRY, GeneratorOptions.PROFILE_STEPS, io.sparkinfer.backend.scripted.ScriptedOptions.GRAPH_TIMING,
      io.sparkinfer.backend.fused.FusedOptions.KERNEL_CACHE);

  private final String settings;
  private final String modelFingerprint;
  private final boolean greedy;
  private final long runSeed;

  private CacheKey(String settings, String modelFingerprint, boolean greedy, long runSeed) {
    this.settings = settings;
    this.modelFingerprint = modelFingerprint;
    this.greedy = greedy;
    this.runSeed = runSeed;
  }

  /**
   * The key of a run's requests.
   *
   * @param modelFingerprint {@link ModelFingerprint} of the checkpoint
   * @param gpu whether the inference tasks run on GPUs ({@link ResultCache#tasksUseGpus})
   * @param projectVersion the project's version (a new one computes afresh)
   * @throws IllegalArgumentException when the run's requests are not cacheable ({@link JobOptions#isCacheable()})
   */
  static CacheKey of(JobOptions o, String modelFingerprint, boolean gpu, String projectVersion) {
    if (!o.isCacheable()) {
      throw new IllegalArgumentException("sampled requests without a given --seed are not cacheable");
    }
    OptionValues v = o.values();
    EngineOptions engine = o.engineOptions("model", gpu ? "gpu" : "cpu");
    Device device = gpu ? Device.gpu(0) : Device.cpu();
    Precision precision = engine.resolvePrecision(device);
    BackendKind backend = engine.resolveBackend(device);
    Layout layout = engine.layout();
    List<String> engineOptions = new ArrayList<>();
    for (Option<?> option : EngineOptions.ALL.stream().sorted(Comparator.comparing(Option::name)).toList()) {
      boolean bundledCublas = option == CublasOverride.CUBLAS && v.get(CublasOverride.CUBLAS).equals(
          CublasOverride.BUNDLED);
      if (!NOT_IN_KEY.contains(option) && !bundledCublas) {
        engineOptions.add(option.name() + "=" + v.text(option));
      }
    }
    boolean greedy = o.isGreedy();
    String sampling;
    if (greedy) {
      sampling = "sampling greedy";
    } else {
      SamplingParams s = o.sampling(0);
      sampling = "sampling temperature=" + s.temperature() + " top-k=" + s.topK() + " top-p=" + s.topP();
    }
    String settings = String.join("\n",
        "sparkinfer-result-cache " + FORMAT,
        "sparkinfer " + projectVersion,
        "model " + modelFingerprint,
        "precision " + precision.label(),
        "device " + (gpu ? "gpu" : "cpu"),
        "backend " + backend.label(),
        "layout " + (layout.auto() ? "auto" : "tp=" + layout.tp() + ",pp=" + layout.pp()),
        "engine " + String.join(";", engineOptions),
        "max-new-tokens " + o.maxNewTokens(),
        "stop " + new Gson().toJson(v.get(RequestOptions.STOP)),
        "ignore-eos " + v.get(RequestOptions.IGNORE_EOS),
        sampling);
    return new CacheKey(settings, modelFingerprint, greedy, v.get(RequestOptions.SEED));
  }

  /** Everything in the key but the prompt and a sampled request's seed: the same for every request of the run. */
  String settings() {
    return settings;
  }

  String modelFingerprint() {
    return modelFingerprint;
  }

  /** The precision the key holds ({@code fp32}, ...). */
  String precision() {
    return settingsLine("precision ");
  }

  /** The device kind the key holds: {@code cpu} or {@code gpu}. */
  String deviceKind() {
    return settingsLine("device ");
  }

  /** The backend the key holds ({@code eager}, {@code scripted}). */
  String backend() {
    return settingsLine("backend ");
  }

  private String settingsLine(String prefix) {
    for (String line : settings.split("\n")) {
      if (line.startsWith(prefix)) {
        return line.substring(prefix.length());
      }
    }
    throw new IllegalStateException("no '" + prefix.trim() + "' line in the key's settings");
  }

  /** The seed a request with this id samples with; null for greedy requests, whose key has none. */
  Long seed(String id) {
    return greedy ? null : SamplingParams.requestSeed(runSeed, id);
  }

  /** The key of the request for {@code prompt} under {@code id} (the id only matters to sampled requests). */
  String key(String prompt, String id) {
    String text = text(prompt, id);
    return text == null ? null
        : ModelFingerprint.hex(ModelFingerprint.digest().digest(text.getBytes(StandardCharsets.UTF_8)));
  }

  /** The canonical text the key hashes; null for a null prompt. */
  String text(String prompt, String id) {
    if (prompt == null) {
      return null;
    }
    return settings + (greedy ? "" : " seed=" + seed(id)) + "\nprompt " + prompt;
  }
}
