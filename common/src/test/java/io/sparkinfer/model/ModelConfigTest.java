package io.sparkinfer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {

  @TempDir Path dir;

  /** Meta-Llama-3.1-8B-Instruct's config.json, verbatim. */
  static final String LLAMA_31_8B = """
      {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": false,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009],
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 131072,
        "mlp_bias": false,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
          "factor": 8.0,
          "low_freq_factor": 1.0,
          "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192,
          "rope_type": "llama3"
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.42.3",
        "use_cache": true,
        "vocab_size": 128256
      }
      """;

  /** Qwen2.5-0.5B-Instruct's config.json, verbatim. */
  static final String QWEN25_05B = """
      {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "hidden_size": 896,
        "initializer_range": 0.02,
        "intermediate_size": 4864,
        "max_position_embeddings": 32768,
        "max_window_layers": 21,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": true,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.43.1",
        "use_cache": true,
        "use_sliding_window": false,
        "vocab_size": 151936
      }
      """;

  /** A small llama config with every required field. */
  private static JsonObject tiny(String modelType) {
    JsonObject c = new JsonObject();
    c.addProperty("model_type", modelType);
    c.addProperty("vocab_size", 256);
    c.addProperty("hidden_size", 64);
    c.addProperty("intermediate_size", 128);
    c.addProperty("num_hidden_layers", 3);
    c.addProperty("num_attention_heads", 4);
    c.addProperty("max_position_embeddings", 512);
    return c;
  }

  private static ModelConfig parse(String modelType, Consumer<JsonObject> edit) {
    JsonObject c = tiny(modelType);
    edit.accept(c);
    return ModelConfig.parse(c.toString());
  }

  private static JsonElement json(String text) {
    return JsonParser.parseString(text);
  }

  // ---- real configs ----

  @Test
  void llama31ConfigParsesWithGqaLlama3RopeAndSeveralEosIds() {
    ModelConfig c = ModelConfig.parse(LLAMA_31_8B);

    assertThat(c.modelType()).isEqualTo("llama");
    assertThat(c.vocabSize()).isEqualTo(128256);
    assertThat(c.hiddenSize()).isEqualTo(4096);
    assertThat(c.intermediateSize()).isEqualTo(14336);
    assertThat(c.numHiddenLayers()).isEqualTo(32);
    assertThat(c.numAttentionHeads()).isEqualTo(32);
    assertThat(c.numKeyValueHeads()).isEqualTo(8);
    assertThat(c.groupSize()).isEqualTo(4);
    assertThat(c.headDim()).isEqualTo(128);
    assertThat(c.rmsNormEps()).isEqualTo(1e-5);
    assertThat(c.ropeTheta()).isEqualTo(500000.0);
    assertThat(c.ropeScaling()).isEqualTo(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192));
    assertThat(c.maxPositionEmbeddings()).isEqualTo(131072);
    assertThat(c.tieWordEmbeddings()).isFalse();
    assertThat(c.qkvBias()).isFalse();
    assertThat(c.oProjBias()).isFalse();
    assertThat(c.mlpBias()).isFalse();
    assertThat(c.slidingWindows()).hasSize(32).containsOnly(0);
    assertThat(c.torchDtype()).isEqualTo("bfloat16");
    assertThat(c.eosTokenIds()).containsExactly(128001L, 128008L, 128009L);
    assertThat(c.toString()).isEqualTo("llama: 32 layers, hidden 4096, 32 heads / 8 kv heads (head_dim 128), "
        + "ffn 14336, vocab 128256, context 131072");
  }

  @Test
  void qwen25ConfigParsesWithQkvBiasTiedEmbeddingsAndNoSlidingWindow() {
    ModelConfig c = ModelConfig.parse(QWEN25_05B);

    assertThat(c.modelType()).isEqualTo("qwen2");
    assertThat(c.headDim()).isEqualTo(64);
    assertThat(c.numKeyValueHeads()).isEqualTo(2);
    assertThat(c.groupSize()).isEqualTo(7);
    assertThat(c.qkvBias()).as("qwen2 always has q/k/v biases").isTrue();
    assertThat(c.oProjBias()).isFalse();
    assertThat(c.tieWordEmbeddings()).isTrue();
    assertThat(c.ropeTheta()).isEqualTo(1e6);
    assertThat(c.ropeScaling()).isEqualTo(RopeScaling.NONE);
    assertThat(c.slidingWindows()).as("use_sliding_window is false").hasSize(24).containsOnly(0);
    assertThat(c.eosTokenIds()).containsExactly(151645L);
    assertThat(c.rmsNormEps()).isEqualTo(1e-6);
  }

  @Test
  void fixtureConfigLoadsFromItsDirectoryWithRopeParametersAndDtype() {
    ModelConfig c = ModelConfig.load(Fixtures.model("qwen2-tiny"));

    assertThat(c.modelType()).isEqualTo("qwen2");
    assertThat(c.vocabSize()).isEqualTo(512);
    assertThat(c.hiddenSize()).isEqualTo(64);
    assertThat(c.intermediateSize()).isEqualTo(160);
    assertThat(c.numHiddenLayers()).isEqualTo(2);
    assertThat(c.numAttentionHeads()).isEqualTo(4);
    assertThat(c.numKeyValueHeads()).isEqualTo(2);
    assertThat(c.headDim()).isEqualTo(16);
    assertThat(c.ropeTheta()).as("from rope_parameters").isEqualTo(10000.0);
    assertThat(c.ropeScaling().type()).isEqualTo("default");
    assertThat(c.tieWordEmbeddings()).isTrue();
    assertThat(c.qkvBias()).isTrue();
    assertThat(c.torchDtype()).as("transformers 5 writes dtype").isEqualTo("bfloat16");
    assertThat(c.slidingWindows()).containsExactly(0, 0);
    assertThat(c.eosTokenIds()).containsExactly(0L);
  }

  // ---- defaults and derived values ----

  @Test
  void absentOptionalFieldsTakeTransformersDefaults() {
    ModelConfig c = ModelConfig.parse(tiny("llama").toString());

    assertThat(c.numKeyValueHeads()).as("defaults to the attention heads").isEqualTo(4);
    assertThat(c.headDim()).as("hidden / heads").isEqualTo(16);
    assertThat(c.rmsNormEps()).isEqualTo(1e-6);
    assertThat(c.ropeTheta()).isEqualTo(10000.0);
    assertThat(c.ropeScaling()).isEqualTo(RopeScaling.NONE);
    assertThat(c.tieWordEmbeddings()).isFalse();
    assertThat(c.qkvBias()).isFalse();
    assertThat(c.torchDtype()).isNull();
    assertThat(c.eosTokenIds()).isEmpty();
    assertThat(c.slidingWindows()).containsExactly(0, 0, 0);
  }

  @Test
  void explicitHeadDimIsKeptEvenWhenItDiffersFromHiddenOverHeads() {
    ModelConfig c = parse("llama", o -> o.addProperty("head_dim", 32));
    assertThat(c.headDim()).isEqualTo(32);
  }

  @Test
  void explicitNullFieldsCountAsAbsent() {
    ModelConfig c = parse("llama", o -> {
      o.add("head_dim", JsonNull.INSTANCE);
      o.add("num_key_value_heads", JsonNull.INSTANCE);
      o.add("rope_scaling", JsonNull.INSTANCE);
      o.add("eos_token_id", JsonNull.INSTANCE);
    });
    assertThat(c.headDim()).isEqualTo(16);
    assertThat(c.numKeyValueHeads()).isEqualTo(4);
    assertThat(c.ropeScaling()).isEqualTo(RopeScaling.NONE);
    assertThat(c.eosTokenIds()).isEmpty();
  }

  @Test
  void llamaAttentionBiasAddsBiasToAllFourProjectionsAndMlpBiasToTheMlp() {
    ModelConfig c = parse("llama", o -> {
      o.addProperty("attention_bias", true);
      o.addProperty("mlp_bias", true);
    });
    assertThat(c.qkvBias()).isTrue();
    assertThat(c.oProjBias()).isTrue();
    assertThat(c.mlpBias()).isTrue();
  }

  @Test
  void qwen2HasQkvBiasButNoOutputBiasWhateverAttentionBiasSays() {
    assertThat(parse("qwen2", o -> { }).qkvBias()).isTrue();
    ModelConfig withFlag = parse("qwen2", o -> o.addProperty("attention_bias", true));
    assertThat(withFlag.qkvBias()).isTrue();
    assertThat(withFlag.oProjBias()).isFalse();
  }

  @Test
  void torchDtypeIsPreferredOverDtype() {
    assertThat(parse("llama", o -> o.addProperty("dtype", "float16")).torchDtype()).isEqualTo("float16");
    assertThat(parse("llama", o -> {
      o.addProperty("torch_dtype", "float32");
      o.addProperty("dtype", "float16");
    }).torchDtype()).isEqualTo("float32");
  }

  // ---- rope ----

  @Test
  void ropeThetaIsReadFromRopeParametersWhenNotTopLevel() {
    ModelConfig c = parse("llama", o -> o.add("rope_parameters",
        json("{\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0,"
            + " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}")));
    assertThat(c.ropeTheta()).isEqualTo(500000.0);
    assertThat(c.ropeScaling()).isEqualTo(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192));
  }

  @Test
  void topLevelRopeThetaWinsOverRopeParameters() {
    ModelConfig c = parse("llama", o -> {
      o.addProperty("rope_theta", 1e6);
      o.add("rope_parameters", json("{\"rope_type\": \"default\", \"rope_theta\": 10000.0}"));
    });
    assertThat(c.ropeTheta()).isEqualTo(1e6);
  }

  @Test
  void legacyTypeKeyOfRopeScalingIsRead() {
    ModelConfig c = parse("llama", o -> o.add("rope_scaling", json("{\"type\": \"linear\", \"factor\": 2.0}")));
    assertThat(c.ropeScaling()).isEqualTo(new RopeScaling("linear", 2.0, 0, 0, 0));
  }

  @Test
  void unsupportedRopeTypeIsRejectedListingTheSupportedOnes() {
    assertThatThrownBy(() -> parse("llama", o -> o.add("rope_scaling", json("{\"rope_type\": \"yarn\", \"factor\": 4.0}"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rope type 'yarn' is not supported (supported: default, linear, llama3)");
  }

  @Test
  void ropeScalingThatIsNotAnObjectIsRejectedNamingTheField() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("rope_scaling", "linear")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rope_scaling must be an object, got \"linear\"");
  }

  @Test
  void llama3RopeScalingMissingItsParametersIsRejected() {
    assertThatThrownBy(() -> parse("llama", o -> o.add("rope_scaling", json("{\"rope_type\": \"llama3\", \"factor\": 8.0}"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("llama3 rope_scaling needs");
  }

  @Test
  void nonPositiveRopeThetaIsRejected() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("rope_theta", 0)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rope_theta must be > 0, got 0.0");
  }

  // ---- sliding windows ----

  @Test
  void mistralSlidesEveryLayer() {
    ModelConfig c = parse("mistral", o -> o.addProperty("sliding_window", 4096));
    assertThat(c.slidingWindows()).containsExactly(4096, 4096, 4096);
  }

  @Test
  void mistralWithNullSlidingWindowAttendsFully() {
    ModelConfig c = parse("mistral", o -> o.add("sliding_window", JsonNull.INSTANCE));
    assertThat(c.slidingWindows()).containsExactly(0, 0, 0);
  }

  /** transformers' MistralConfig defaults sliding_window to 4096 when config.json leaves the key out. */
  @Test
  void mistralWithoutTheKeyTakesTransformersDefaultWindow() {
    ModelConfig c = parse("mistral", o -> o.remove("sliding_window"));
    assertThat(c.slidingWindows()).containsExactly(4096, 4096, 4096);
    assertThat(parse("llama", o -> o.remove("sliding_window")).slidingWindows()).as("llama has none").containsOnly(0);
  }

  /** Qwen2Config's defaults: sliding_window 4096 from layer max_window_layers = 28 on, when enabled. */
  @Test
  void qwen2WithoutTheKeysTakesTransformersDefaults() {
    ModelConfig c = parse("qwen2", o -> {
      o.remove("sliding_window");
      o.remove("max_window_layers");
      o.addProperty("use_sliding_window", true);
      o.addProperty("num_hidden_layers", 30);
    });
    int[] expected = new int[30];
    expected[28] = 4096;
    expected[29] = 4096;
    assertThat(c.slidingWindows()).containsExactly(expected);
    assertThat(parse("qwen2", o -> o.remove("sliding_window")).slidingWindows()).as("off unless enabled").containsOnly(0);
  }

  @Test
  void qwen2SlidesOnlyFromMaxWindowLayersAndOnlyWhenEnabled() {
    ModelConfig on = parse("qwen2", o -> {
      o.addProperty("use_sliding_window", true);
      o.addProperty("sliding_window", 1024);
      o.addProperty("max_window_layers", 1);
    });
    ModelConfig off = parse("qwen2", o -> {
      o.addProperty("use_sliding_window", false);
      o.addProperty("sliding_window", 1024);
      o.addProperty("max_window_layers", 1);
    });
    assertThat(on.slidingWindows()).containsExactly(0, 1024, 1024);
    assertThat(off.slidingWindows()).containsExactly(0, 0, 0);
  }

  @Test
  void layerTypesDecideWhichLayersSlide() {
    JsonArray types = new JsonArray();
    types.add("full_attention");
    types.add("sliding_attention");
    types.add("sliding_attention");
    ModelConfig mistral = parse("mistral", o -> {
      o.addProperty("sliding_window", 256);
      o.add("layer_types", types);
    });
    ModelConfig qwenOff = parse("qwen2", o -> {
      o.addProperty("sliding_window", 256);
      o.add("layer_types", types);
    });
    ModelConfig qwenOn = parse("qwen2", o -> {
      o.addProperty("sliding_window", 256);
      o.addProperty("use_sliding_window", true);
      o.add("layer_types", types);
    });
    assertThat(mistral.slidingWindows()).containsExactly(0, 256, 256);
    assertThat(qwenOff.slidingWindows()).as("qwen2 drops the window unless use_sliding_window").containsExactly(0, 0, 0);
    assertThat(qwenOn.slidingWindows()).containsExactly(0, 256, 256);
  }

  @Test
  void llamaIgnoresSlidingWindow() {
    assertThat(parse("llama", o -> o.addProperty("sliding_window", 128)).slidingWindows()).containsExactly(0, 0, 0);
  }

  @Test
  void layerTypesOfTheWrongLengthAreRejected() {
    JsonArray types = new JsonArray();
    types.add("sliding_attention");
    assertThatThrownBy(() -> parse("mistral", o -> {
      o.addProperty("sliding_window", 256);
      o.add("layer_types", types);
    }))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("layer_types has 1 entries for 3 layers");
  }

  @Test
  void nonPositiveSlidingWindowIsRejected() {
    assertThatThrownBy(() -> parse("mistral", o -> o.addProperty("sliding_window", 0)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("sliding_window must be > 0 or null, got 0");
  }

  // ---- validation naming the bad value ----

  @Test
  void hiddenSizeNotDivisibleByHeadsIsRejectedNamingBoth() {
    assertThatThrownBy(() -> parse("llama", o -> {
      o.addProperty("hidden_size", 100);
      o.addProperty("num_attention_heads", 3);
      o.addProperty("num_key_value_heads", 3);
    }))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("hidden_size 100 is not divisible by num_attention_heads 3");
  }

  @Test
  void headsNotDivisibleByKeyValueHeadsIsRejectedNamingBoth() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("num_key_value_heads", 3)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_attention_heads 4 is not divisible by num_key_value_heads 3");
  }

  @Test
  void oddHeadDimIsRejected() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("head_dim", 15)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("head_dim 15 must be even for rotary embeddings");
  }

  @Test
  void zeroAttentionHeadsIsReportedAsSuchNotAsADivisibilityError() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("num_attention_heads", 0)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_attention_heads must be > 0, got 0");
  }

  @Test
  void nonPositiveSizesAreRejectedNamingTheField() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("num_hidden_layers", -1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_hidden_layers must be > 0, got -1");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("vocab_size", 0)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("vocab_size must be > 0, got 0");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("rms_norm_eps", 0)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rms_norm_eps must be > 0, got 0.0");
  }

  @Test
  void absurdSizesAreRejectedNamingTheFieldBeforeAnythingIsSizedByThem() {
    // 2^31 - 1 layers would size a per-layer array of 8 GiB while parsing; the bound comes first
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("num_hidden_layers", Integer.MAX_VALUE)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_hidden_layers 2147483647 is over 4096");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("num_hidden_layers", 1_000_000)))
        .hasMessageContaining("num_hidden_layers 1000000 is over 4096");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("vocab_size", 1_000_000_000)))
        .hasMessageContaining("vocab_size 1000000000 is over 16777216");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("hidden_size", 1 << 20)))
        .hasMessageContaining("hidden_size 1048576 is over 262144");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("intermediate_size", 1 << 30)))
        .hasMessageContaining("intermediate_size 1073741824 is over 1048576");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("head_dim", 1 << 14)))
        .hasMessageContaining("head_dim 16384 is over 4096");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("num_key_value_heads", 1 << 13)))
        .hasMessageContaining("num_key_value_heads 8192 is over 4096");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("max_position_embeddings", Integer.MAX_VALUE)))
        .hasMessageContaining("max_position_embeddings 2147483647 is over 134217728");
    assertThat(parse("llama", o -> o.addProperty("num_hidden_layers", 4096)).numHiddenLayers())
        .as("the bound itself is accepted").isEqualTo(4096);
  }

  @Test
  void fractionalOrOverflowingIntegersAreRejectedNotTruncated() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("hidden_size", 64.5)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("hidden_size must be an integer, got 64.5");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("vocab_size", 5_000_000_000L)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("vocab_size must be an integer, got 5000000000");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("num_key_value_heads", 2.5)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("num_key_value_heads must be an integer, got 2.5");
    assertThat(parse("llama", o -> o.addProperty("hidden_size", 64.0)).hiddenSize()).isEqualTo(64);
  }

  @Test
  void fieldsOfTheWrongJsonTypeAreRejectedNamingTheField() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("hidden_size", "sixty-four")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("hidden_size must be an integer, got \"sixty-four\"");
    assertThatThrownBy(() -> parse("llama", o -> o.add("head_dim", new JsonArray())))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("head_dim must be an integer, got []");
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("tie_word_embeddings", "yes")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("tie_word_embeddings must be true or false, got \"yes\"");
    assertThatThrownBy(() -> parse("llama", o -> o.add("rms_norm_eps", new JsonObject())))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rms_norm_eps must be a number, got {}");
    assertThatThrownBy(() -> parse("llama", o -> o.add("eos_token_id", json("[1, \"two\"]"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("eos_token_id must be a token id or a list of them, got [1,\"two\"]");
    assertThatThrownBy(() -> parse("llama", o -> o.add("model_type", json("[\"llama\"]"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("model_type must be a string, got [\"llama\"]");
  }

  @Test
  void unknownModelTypeIsRejectedListingTheSupportedOnes() {
    assertThatThrownBy(() -> parse("gpt2", o -> { }))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("model_type 'gpt2' is not supported (supported: llama, mistral, qwen2)");
    assertThatThrownBy(() -> parse("llama", o -> o.remove("model_type")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("model_type 'null' is not supported");
  }

  @Test
  void otherActivationsAreRejected() {
    assertThatThrownBy(() -> parse("llama", o -> o.addProperty("hidden_act", "gelu")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("hidden_act 'gelu' is not supported (supported: silu)");
  }

  @Test
  void missingRequiredFieldIsNamed() {
    assertThatThrownBy(() -> parse("llama", o -> o.remove("intermediate_size")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("missing required field intermediate_size");
  }

  @Test
  void textThatIsNotJsonIsRejected() {
    assertThatThrownBy(() -> ModelConfig.parse("{\"model_type\": \"llama\",,}"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("config.json is not valid JSON");
    assertThatThrownBy(() -> ModelConfig.parse("[1, 2]"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("config.json must hold a JSON object");
  }

  @Test
  void configIsImmutable() {
    ModelConfig c = parse("mistral", o -> o.addProperty("sliding_window", 4096));
    assertThatThrownBy(() -> c.eosTokenIds().add(1L)).isInstanceOf(UnsupportedOperationException.class);
    c.slidingWindows()[0] = 1;
    assertThat(c.slidingWindows()).containsExactly(4096, 4096, 4096);
  }

  @Test
  void configsWithEqualValuesAreEqualAndDifferentOnesAreNot() {
    ModelConfig a = parse("mistral", o -> o.addProperty("sliding_window", 4096));
    ModelConfig b = parse("mistral", o -> o.addProperty("sliding_window", 4096));
    ModelConfig other = parse("mistral", o -> o.addProperty("sliding_window", 2048));
    assertThat(a).isEqualTo(b).hasSameHashCodeAs(b).isNotEqualTo(other);
  }

  // ---- load(dir) ----

  @Test
  void loadReadsConfigJsonFromTheDirectory() throws IOException {
    Files.writeString(dir.resolve("config.json"), LLAMA_31_8B);
    ModelConfig loaded = ModelConfig.load(dir);
    assertThat(loaded).isEqualTo(ModelConfig.parse(LLAMA_31_8B));
    assertThat(loaded.hashCode()).isEqualTo(ModelConfig.parse(LLAMA_31_8B).hashCode());
  }

  @Test
  void loadOfADirectoryWithoutConfigJsonSaysSo() {
    assertThatThrownBy(() -> ModelConfig.load(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("no config.json in " + dir + ": not a Hugging Face checkpoint directory");
  }

  @Test
  void loadWrapsValidationErrorsWithTheFileAndCause() throws IOException {
    Path file = Files.writeString(dir.resolve("config.json"), tiny("gpt_neox").toString());
    assertThatThrownBy(() -> ModelConfig.load(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(file + ": model_type 'gpt_neox' is not supported")
        .hasCauseInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void loadWrapsBadJsonWithTheFile() throws IOException {
    Path file = Files.writeString(dir.resolve("config.json"), "not json at all {");
    assertThatThrownBy(() -> ModelConfig.load(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(file + ": config.json is not valid JSON");
  }

  @Test
  void loadRefusesAnOversizedConfig() throws IOException {
    Files.write(dir.resolve("config.json"), new byte[(int) ModelConfig.MAX_CONFIG_BYTES + 1]);
    assertThatThrownBy(() -> ModelConfig.load(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("is larger than 4194304 bytes; not a model config");
  }
}
