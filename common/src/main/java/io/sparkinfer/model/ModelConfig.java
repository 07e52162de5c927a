package io.sparkinfer.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.sparkinfer.base.ModelFiles;
import io.sparkinfer.base.ModelLoadException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

/**
 * A Llama-family model's shape and numerics, parsed from a Hugging Face {@code config.json}.
 *
 * <p>One record covers {@code llama}, {@code qwen2} and {@code mistral}: their differences are flags
 * (attention biases, tied embeddings, sliding windows), never separate classes.
 *
 * @param modelType {@code model_type}
 * @param vocabSize {@code vocab_size}
 * @param hiddenSize {@code hidden_size}
 * @param intermediateSize {@code intermediate_size} (the MLP's inner width)
 * @param numHiddenLayers {@code num_hidden_layers}
 * @param numAttentionHeads {@code num_attention_heads}
 * @param numKeyValueHeads {@code num_key_value_heads} (GQA; defaults to the attention heads)
 * @param headDim {@code head_dim} (defaults to hidden / heads)
 * @param rmsNormEps {@code rms_norm_eps}
 * @param ropeTheta the rope base, top-level {@code rope_theta} or {@code rope_parameters.rope_theta}
 * @param ropeScaling the rope type and its parameters
 * @param maxPositionEmbeddings {@code max_position_embeddings}: the context length
 * @param tieWordEmbeddings whether the LM head reuses {@code embed_tokens}
 * @param qkvBias whether q/k/v projections have a bias (always for Qwen2, {@code attention_bias} for Llama)
 * @param oProjBias whether the output projection has a bias ({@code attention_bias} for Llama)
 * @param mlpBias {@code mlp_bias} (Llama)
 * @param slidingWindows per layer, the attention window in tokens, 0 for full attention
 * @param torchDtype the checkpoint's {@code torch_dtype} / {@code dtype}, or null
 * @param eosTokenIds {@code eos_token_id}, one or several
 */
public record ModelConfig(
    String modelType,
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int headDim,
    double rmsNormEps,
    double ropeTheta,
    RopeScaling ropeScaling,
    int maxPositionEmbeddings,
    boolean tieWordEmbeddings,
    boolean qkvBias,
    boolean oProjBias,
    boolean mlpBias,
    int[] slidingWindows,
    String torchDtype,
    List<Long> eosTokenIds) {

  /** The {@code model_type} values this engine runs. */
  public static final Set<String> SUPPORTED_MODEL_TYPES = Set.of("llama", "qwen2", "mistral");

  /** Upper bound on {@code config.json}'s size: real configs are a few KiB. */
  static final long MAX_CONFIG_BYTES = 4L << 20;

  // Upper bounds on the sizes config.json gives, far above any published model (Llama 3.1 405B: 126 layers,
  // hidden 16,384, MLP 53,248, 128 heads, vocabulary 128,256): arrays and products are sized by these numbers
  // before any checkpoint header can contradict them, so an absurd value is refused before anything is allocated.
  static final int MAX_VOCAB_SIZE = 1 << 24;
  static final int MAX_HIDDEN_SIZE = 1 << 18;
  static final int MAX_INTERMEDIATE_SIZE = 1 << 20;
  static final int MAX_LAYERS = 1 << 12;
  static final int MAX_HEADS = 1 << 12;
  static final int MAX_HEAD_DIM = 1 << 12;
  static final int MAX_POSITION_EMBEDDINGS = 1 << 27;

  public ModelConfig {
    positive("vocab_size", vocabSize);
    positive("hidden_size", hiddenSize);
    positive("intermediate_size", intermediateSize);
    positive("num_hidden_layers", numHiddenLayers);
    positive("num_attention_heads", numAttentionHeads);
    positive("num_key_value_heads", numKeyValueHeads);
    positive("head_dim", headDim);
    positive("max_position_embeddings", maxPositionEmbeddings);
    atMost("vocab_size", vocabSize, MAX_VOCAB_SIZE);
    atMost("hidden_size", hiddenSize, MAX_HIDDEN_SIZE);
    atMost("intermediate_size", intermediateSize, MAX_INTERMEDIATE_SIZE);
    atMost("num_hidden_layers", numHiddenLayers, MAX_LAYERS);
    atMost("num_attention_heads", numAttentionHeads, MAX_HEADS);
    atMost("num_key_value_heads", numKeyValueHeads, MAX_HEADS);
    atMost("head_dim", headDim, MAX_HEAD_DIM);
    atMost("max_position_embeddings", maxPositionEmbeddings, MAX_POSITION_EMBEDDINGS);
    if (numAttentionHeads % numKeyValueHeads != 0) {
      throw new IllegalArgumentException("num_attention_heads " + numAttentionHeads
          + " is not divisible by num_key_value_heads " + numKeyValueHeads);
    }
    if (headDim % 2 != 0) {
      throw new IllegalArgumentException("head_dim " + headDim + " must be even for rotary embeddings");
    }
    if (!(rmsNormEps > 0)) {
      throw new IllegalArgumentException("rms_norm_eps must be > 0, got " + rmsNormEps);
    }
    if (!(ropeTheta > 0)) {
      throw new IllegalArgumentException("rope_theta must be > 0, got " + ropeTheta);
    }
    if (slidingWindows.length != numHiddenLayers) {
      throw new IllegalArgumentException("one sliding window per layer expected: got " + slidingWindows.length
          + " for " + numHiddenLayers + " layers");
    }
    slidingWindows = slidingWindows.clone();
    eosTokenIds = List.copyOf(eosTokenIds);
  }

  /** The number of weights: embedding, every layer's projections, norms and biases, the final norm and the LM head. */
  public long parameterCount() {
    long h = hiddenSize;
    long qkv = (long) (numAttentionHeads + 2 * numKeyValueHeads) * headDim;
    long q = (long) numAttentionHeads * headDim;
    long layer = 2 * h + qkv * h + q * h + 3L * intermediateSize * h
        + (qkvBias ? qkv : 0) + (oProjBias ? h : 0) + (mlpBias ? 2L * intermediateSize + h : 0);
    return vocabSize * h * (tieWordEmbeddings ? 1 : 2) + numHiddenLayers * layer + h;
  }

  /** Per layer, the attention window in tokens, 0 for full attention (a copy). */
  @Override
  public int[] slidingWindows() {
    return slidingWindows.clone();
  }

  /** Value equality, the sliding windows compared element by element (a record compares arrays by identity). */
  @Override
  public boolean equals(Object o) {
    return o instanceof ModelConfig c
        && Objects.equals(modelType, c.modelType) && vocabSize == c.vocabSize && hiddenSize == c.hiddenSize
        && intermediateSize == c.intermediateSize && numHiddenLayers == c.numHiddenLayers
        && numAttentionHeads == c.numAttentionHeads && numKeyValueHeads == c.numKeyValueHeads
        && headDim == c.headDim && Double.compare(rmsNormEps, c.rmsNormEps) == 0
        && Double.compare(ropeTheta, c.ropeTheta) == 0 && ropeScaling.equals(c.ropeScaling)
        && maxPositionEmbeddings == c.maxPositionEmbeddings && tieWordEmbeddings == c.tieWordEmbeddings
        && qkvBias == c.qkvBias && oProjBias == c.oProjBias && mlpBias == c.mlpBias
        && Arrays.equals(slidingWindows, c.slidingWindows) && Objects.equals(torchDtype, c.torchDtype)
        && eosTokenIds.equals(c.eosTokenIds);
  }

  @Override
  public int hashCode() {
    return Objects.hash(modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
        numKeyValueHeads, headDim, rmsNormEps, ropeTheta, ropeScaling, maxPositionEmbeddings, tieWordEmbeddings,
        qkvBias, oProjBias, mlpBias, Arrays.hashCode(slidingWindows), torchDtype, eosTokenIds);
  }

  /** Query heads per key/value head. */
  public int groupSize() {
    return numAttentionHeads / numKeyValueHeads;
  }

  /** Reads and validates {@code config.json} in a checkpoint directory. */
  public static ModelConfig load(Path modelDir) {
    Path file = modelDir.resolve("config.json");
    ModelFiles.checkInside(modelDir, file);
    try {
      if (Files.size(file) > MAX_CONFIG_BYTES) {
        throw new ModelLoadException(file + " is larger than " + MAX_CONFIG_BYTES + " bytes; not a model config");
      }
      return parse(Files.readString(file, StandardCharsets.UTF_8));
    } catch (NoSuchFileException e) {
      throw new ModelLoadException("no config.json in " + modelDir + ": not a Hugging Face checkpoint directory", e);
    } catch (IOException e) {
      throw new ModelLoadException("cannot read " + file + ": " + e.getMessage(), e);
    } catch (IllegalArgumentException e) {
      throw new ModelLoadException(file + ": " + e.getMessage(), e);
    }
  }

  /** Parses the text of a {@code config.json}. */
  public static ModelConfig parse(String json) {
    JsonObject c;
    try {
      JsonElement root = JsonParser.parseString(json);
      if (!root.isJsonObject()) {
        throw new IllegalArgumentException("config.json must hold a JSON object");
      }
      c = root.getAsJsonObject();
    } catch (JsonParseException e) {
      throw new IllegalArgumentException("config.json is not valid JSON: " + e.getMessage(), e);
    }
    String modelType = string(c, "model_type", null);
    if (modelType == null || !SUPPORTED_MODEL_TYPES.contains(modelType)) {
      throw new IllegalArgumentException("model_type '" + modelType + "' is not supported (supported: "
          + String.join(", ", SUPPORTED_MODEL_TYPES.stream().sorted().toList()) + ")");
    }
    String act = string(c, "hidden_act", "silu");
    if (!act.equals("silu")) {
      throw new IllegalArgumentException("hidden_act '" + act + "' is not supported (supported: silu)");
    }
    int hidden = requiredInt(c, "hidden_size");
    int heads = requiredInt(c, "num_attention_heads");
    int layers = requiredInt(c, "num_hidden_layers");
    atMost("num_hidden_layers", layers, MAX_LAYERS); // before the per-layer windows are sized by it
    int headDim;
    if (present(c, "head_dim")) {
      headDim = integer(c, "head_dim", 0);
    } else if (hidden > 0 && heads > 0) {
      if (hidden % heads != 0) {
        throw new IllegalArgumentException("hidden_size " + hidden + " is not divisible by num_attention_heads " + heads);
      }
      headDim = hidden / heads;
    } else {
      headDim = 0; // the constructor names the non-positive size
    }
    boolean isQwen2 = modelType.equals("qwen2");
    boolean attentionBias = bool(c, "attention_bias", false);

    JsonObject ropeParams = present(c, "rope_parameters") ? object(c, "rope_parameters")
        : present(c, "rope_scaling") ? object(c, "rope_scaling") : new JsonObject();
    double theta = number(c, "rope_theta", number(ropeParams, "rope_theta", 10000.0));
    String ropeType = string(ropeParams, "rope_type", string(ropeParams, "type", "default"));
    RopeScaling rope = new RopeScaling(ropeType,
        number(ropeParams, "factor", 1.0),
        number(ropeParams, "low_freq_factor", 0),
        number(ropeParams, "high_freq_factor", 0),
        integer(ropeParams, "original_max_position_embeddings", 0));

    String dtype = string(c, "torch_dtype", string(c, "dtype", null));
    return new ModelConfig(
        modelType,
        requiredInt(c, "vocab_size"),
        hidden,
        requiredInt(c, "intermediate_size"),
        layers,
        heads,
        integer(c, "num_key_value_heads", heads),
        headDim,
        number(c, "rms_norm_eps", 1e-6),
        theta,
        rope,
        requiredInt(c, "max_position_embeddings"),
        bool(c, "tie_word_embeddings", false),
        isQwen2 || attentionBias,
        !isQwen2 && attentionBias,
        bool(c, "mlp_bias", false),
        slidingWindows(c, modelType, layers),
        dtype,
        eosTokenIds(c));
  }

  /**
   * transformers' defaults when config.json leaves a key out (MistralConfig and Qwen2Config):
   * {@code sliding_window} 4096, {@code max_window_layers} 28. An explicit null means no window.
   */
  static final int DEFAULT_SLIDING_WINDOW = 4096;
  static final int DEFAULT_MAX_WINDOW_LAYERS = 28;

  /** The attention window of each layer, as transformers decides it for each architecture (0: full). */
  private static int[] slidingWindows(JsonObject c, String modelType, int layers) {
    int[] windows = new int[Math.max(layers, 0)];
    boolean defaulted = !c.has("sliding_window") && !modelType.equals("llama");
    if (!present(c, "sliding_window") && !defaulted) {
      return windows;
    }
    int window = defaulted ? DEFAULT_SLIDING_WINDOW : integer(c, "sliding_window", 0);
    if (window <= 0) {
      throw new IllegalArgumentException("sliding_window must be > 0 or null, got " + window);
    }
    if (present(c, "layer_types")) {
      JsonArray types = array(c, "layer_types");
      if (types.size() != layers) {
        throw new IllegalArgumentException("layer_types has " + types.size() + " entries for " + layers + " layers");
      }
      boolean qwenWithoutSwa = modelType.equals("qwen2") && !bool(c, "use_sliding_window", false);
      for (int i = 0; i < layers; i++) {
        JsonElement type = types.get(i);
        boolean sliding = type.isJsonPrimitive() && type.getAsString().equals("sliding_attention");
        windows[i] = sliding && !qwenWithoutSwa ? window : 0;
      }
      return windows;
    }
    switch (modelType) {
      case "mistral" -> Arrays.fill(windows, window);
      case "qwen2" -> {
        if (bool(c, "use_sliding_window", false)) {
          int first = integer(c, "max_window_layers", DEFAULT_MAX_WINDOW_LAYERS);
          for (int i = Math.max(first, 0); i < layers; i++) {
            windows[i] = window;
          }
        }
      }
      default -> { }
    }
    return windows;
  }

  private static List<Long> eosTokenIds(JsonObject c) {
    try {
      return tokenIds(c.get("eos_token_id"));
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("eos_token_id must be a token id or a list of them, got "
          + c.get("eos_token_id"), e);
    }
  }

  static List<Long> tokenIds(JsonElement e) {
    List<Long> ids = new ArrayList<>();
    if (e == null || e.isJsonNull()) {
      return ids;
    }
    if (e.isJsonArray()) {
      for (JsonElement x : e.getAsJsonArray()) {
        ids.add(exactLong(x));
      }
    } else {
      ids.add(exactLong(e));
    }
    return ids;
  }

  /** A JSON integer; Gson's getAsLong would read 2.5 as 2, "7" as 7 and wrap values past 2^63. */
  private static long exactLong(JsonElement e) {
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
      throw new IllegalArgumentException("not a number: " + e);
    }
    return e.getAsBigDecimal().longValueExact();
  }

  private static void positive(String name, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException(name + " must be > 0, got " + value);
    }
  }

  private static void atMost(String name, int value, int max) {
    if (value > max) {
      throw new IllegalArgumentException(name + " " + value + " is over " + max + ", the most this engine accepts "
          + "(far above any published model): a corrupt or hostile config.json");
    }
  }

  private static boolean present(JsonObject c, String key) {
    return c.has(key) && !c.get(key).isJsonNull();
  }

  private static int requiredInt(JsonObject c, String key) {
    if (!present(c, key)) {
      throw new IllegalArgumentException("missing required field " + key);
    }
    return integer(c, key, 0);
  }

  // Typed reads: a field of the wrong JSON type is an IllegalArgumentException naming it, never a Gson
  // ClassCastException or a silent truncation (getAsInt reads 64.5 as 64 and wraps 5e9).

  private static int integer(JsonObject c, String key, int fallback) {
    if (!present(c, key)) {
      return fallback;
    }
    try {
      return Math.toIntExact(exactLong(c.get(key)));
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(key + " must be an integer, got " + c.get(key), e);
    }
  }

  private static double number(JsonObject c, String key, double fallback) {
    if (!present(c, key)) {
      return fallback;
    }
    JsonElement v = c.get(key);
    if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()) {
      throw new IllegalArgumentException(key + " must be a number, got " + v);
    }
    return v.getAsDouble();
  }

  private static boolean bool(JsonObject c, String key, boolean fallback) {
    if (!present(c, key)) {
      return fallback;
    }
    JsonElement v = c.get(key);
    if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isBoolean()) {
      throw new IllegalArgumentException(key + " must be true or false, got " + v);
    }
    return v.getAsBoolean();
  }

  private static String string(JsonObject c, String key, String fallback) {
    if (!present(c, key)) {
      return fallback;
    }
    JsonElement v = c.get(key);
    if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
      throw new IllegalArgumentException(key + " must be a string, got " + v);
    }
    return v.getAsString();
  }

  private static JsonObject object(JsonObject c, String key) {
    JsonElement v = c.get(key);
    if (!v.isJsonObject()) {
      throw new IllegalArgumentException(key + " must be an object, got " + v);
    }
    return v.getAsJsonObject();
  }

  private static JsonArray array(JsonObject c, String key) {
    JsonElement v = c.get(key);
    if (!v.isJsonArray()) {
      throw new IllegalArgumentException(key + " must be an array, got " + v);
    }
    return v.getAsJsonArray();
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT,
        "%s: %d layers, hidden %d, %d heads / %d kv heads (head_dim %d), ffn %d, vocab %d, context %d",
        modelType, numHiddenLayers, hiddenSize, numAttentionHeads, numKeyValueHeads, headDim,
        intermediateSize, vocabSize, maxPositionEmbeddings);
  }
}
