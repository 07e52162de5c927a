package io.sparkinfer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.safetensors.Checkpoint;
import io.sparkinfer.safetensors.SafetensorsException;
import io.sparkinfer.safetensors.SafetensorsFile;
import io.sparkinfer.safetensors.SafetensorsWriter;
import io.sparkinfer.safetensors.TensorInfo;
import io.sparkinfer.testing.Fixtures;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading a whole model: tiny random llama / qwen2 checkpoints written here, and the qwen2-tiny fixture.
 * Tiny shapes: V 32, H 16, I 24, N 4 query heads and K 2 key/value heads of D 4, so q is 16 wide and k/v 8.
 */
class ModelWeightsTest {

  @TempDir Path dir;

  private static ModelConfig config(String modelType, String extra) {
    return ModelConfig.parse("""
        {"model_type": "%s", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 64 %s}
        """.formatted(modelType, extra));
  }

  private static final ModelConfig LLAMA = config("llama", "");
  private static final ModelConfig QWEN2_TIED = config("qwen2", ", \"tie_word_embeddings\": true");

  /** Every tensor a Hugging Face checkpoint of {@code c} holds, with its shape, in file order. */
  private static Map<String, long[]> tensorsOf(ModelConfig c) {
    long h = c.hiddenSize();
    long q = (long) c.numAttentionHeads() * c.headDim();
    long kv = (long) c.numKeyValueHeads() * c.headDim();
    long inter = c.intermediateSize();
    Map<String, long[]> t = new LinkedHashMap<>();
    t.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
    for (int i = 0; i < c.numHiddenLayers(); i++) {
      String p = "model.layers." + i + ".";
      t.put(p + "input_layernorm.weight", new long[] {h});
      t.put(p + "self_attn.q_proj.weight", new long[] {q, h});
      t.put(p + "self_attn.k_proj.weight", new long[] {kv, h});
      t.put(p + "self_attn.v_proj.weight", new long[] {kv, h});
      t.put(p + "self_attn.o_proj.weight", new long[] {h, q});
      if (c.qkvBias()) {
        t.put(p + "self_attn.q_proj.bias", new long[] {q});
        t.put(p + "self_attn.k_proj.bias", new long[] {kv});
        t.put(p + "self_attn.v_proj.bias", new long[] {kv});
      }
      if (c.oProjBias()) {
        t.put(p + "self_attn.o_proj.bias", new long[] {h});
      }
      t.put(p + "post_attention_layernorm.weight", new long[] {h});
      t.put(p + "mlp.gate_proj.weight", new long[] {inter, h});
      t.put(p + "mlp.up_proj.weight", new long[] {inter, h});
      t.put(p + "mlp.down_proj.weight", new long[] {h, inter});
      if (c.mlpBias()) {
        t.put(p + "mlp.gate_proj.bias", new long[] {inter});
        t.put(p + "mlp.up_proj.bias", new long[] {inter});
        t.put(p + "mlp.down_proj.bias", new long[] {h});
      }
    }
    t.put("model.norm.weight", new long[] {h});
    if (!c.tieWordEmbeddings()) {
      t.put("lm_head.weight", new long[] {c.vocabSize(), h});
    }
    return t;
  }

  /** The values written for a tensor: exact in bf16 and fp16, different for each name. */
  private static float[] valuesOf(String name, long[] shape) {
    return SafetensorsWriter.exactValues((int) Arrays.stream(shape).reduce(1, (a, b) -> a * b), name.hashCode());
  }

  /** Writes {@code tensors} as {@code model.safetensors} in {@code dtype} (F32 or BF16) and opens the checkpoint. */
  private Checkpoint write(Map<String, long[]> tensors, String dtype) {
    SafetensorsWriter w = new SafetensorsWriter();
    tensors.forEach((name, shape) -> {
      if (dtype.equals("BF16")) {
        w.bf16(name, shape, valuesOf(name, shape));
      } else {
        w.f32(name, shape, valuesOf(name, shape));
      }
    });
    w.write(dir.resolve("model.safetensors"));
    return Checkpoint.open(dir);
  }

  private static void assertTensor(NDArray actual, String name, long[] shape, DataType dtype) {
    assertThat(actual.getShape()).as(name).isEqualTo(new Shape(shape));
    assertThat(actual.getDataType()).as(name).isEqualTo(dtype);
    assertThat(floats(actual)).as(name).containsExactly(valuesOf(name, shape));
  }

  /** The values of a FLOAT32 or FLOAT16 array, read without creating arrays (the weights' manager is capped). */
  private static float[] floats(NDArray a) {
    if (a.getDataType() == DataType.FLOAT32) {
      return a.toFloatArray();
    }
    ByteBuffer bytes = a.toByteBuffer().order(ByteOrder.nativeOrder());
    float[] out = new float[(int) a.size()];
    for (int i = 0; i < out.length; i++) {
      int h = bytes.getShort(2 * i) & 0xFFFF;
      int exponent = (h >>> 10) & 0x1F;
      int mantissa = h & 0x3FF;
      float v = exponent == 0 ? mantissa * 0x1p-24f : Math.scalb(1 + mantissa / 1024f, exponent - 15);
      out[i] = (h & 0x8000) != 0 ? -v : v; // the test values are finite: no inf/NaN case
    }
    return out;
  }

  @Test
  void untiedLlamaLoadsEveryTensorWithItsValuesAndASeparateLmHead() {
    Map<String, long[]> tensors = tensorsOf(LLAMA);
    try (ModelWeights w = ModelWeights.load(write(tensors, "F32"), LLAMA, Precision.FP32, Device.cpu())) {
      assertThat(w.config()).isSameAs(LLAMA);
      assertThat(w.precision()).isEqualTo(Precision.FP32);
      assertThat(w.device()).isEqualTo(Device.cpu());
      assertThat(w.layers()).hasSize(2);
      assertTensor(w.embedTokens(), "model.embed_tokens.weight", new long[] {32, 16}, DataType.FLOAT32);
      assertTensor(w.norm(), "model.norm.weight", new long[] {16}, DataType.FLOAT32);
      assertTensor(w.lmHead(), "lm_head.weight", new long[] {32, 16}, DataType.FLOAT32);
      assertThat(w.lmHead()).isNotSameAs(w.embedTokens());
      for (int i = 0; i < 2; i++) {
        String p = "model.layers." + i + ".";
        LayerWeights l = w.layers().get(i);
        assertTensor(l.inputLayernorm(), p + "input_layernorm.weight", new long[] {16}, DataType.FLOAT32);
        assertTensor(l.qProj().weight(), p + "self_attn.q_proj.weight", new long[] {16, 16}, DataType.FLOAT32);
        assertTensor(l.kProj().weight(), p + "self_attn.k_proj.weight", new long[] {8, 16}, DataType.FLOAT32);
        assertTensor(l.vProj().weight(), p + "self_attn.v_proj.weight", new long[] {8, 16}, DataType.FLOAT32);
        assertTensor(l.oProj().weight(), p + "self_attn.o_proj.weight", new long[] {16, 16}, DataType.FLOAT32);
        assertTensor(l.postAttentionLayernorm(), p + "post_attention_layernorm.weight", new long[] {16}, DataType.FLOAT32);
        assertTensor(l.gateProj().weight(), p + "mlp.gate_proj.weight", new long[] {24, 16}, DataType.FLOAT32);
        assertTensor(l.upProj().weight(), p + "mlp.up_proj.weight", new long[] {24, 16}, DataType.FLOAT32);
        assertTensor(l.downProj().weight(), p + "mlp.down_proj.weight", new long[] {16, 24}, DataType.FLOAT32);
        assertThat(l.qProj().bias()).isNull();
        assertThat(l.oProj().bias()).isNull();
        assertThat(l.gateProj().bias()).isNull();
      }
    }
  }

  @Test
  void tiedQwen2UsesEmbedTokensAsLmHeadAndLoadsQkvBiasesOnly() {
    try (ModelWeights w = ModelWeights.load(write(tensorsOf(QWEN2_TIED), "F32"), QWEN2_TIED, Precision.FP32,
        Device.cpu())) {
      assertThat(w.lmHead()).isSameAs(w.embedTokens());
      LayerWeights l = w.layers().get(1);
      assertTensor(l.qProj().bias(), "model.layers.1.self_attn.q_proj.bias", new long[] {16}, DataType.FLOAT32);
      assertTensor(l.kProj().bias(), "model.layers.1.self_attn.k_proj.bias", new long[] {8}, DataType.FLOAT32);
      assertTensor(l.vProj().bias(), "model.layers.1.self_attn.v_proj.bias", new long[] {8}, DataType.FLOAT32);
      assertThat(l.oProj().bias()).isNull();
      assertThat(l.downProj().bias()).isNull();
    }
  }

  @Test
  void tiedConfigIgnoresAStoredLmHeadAsTransformersDoes() {
    Map<String, long[]> tensors = tensorsOf(QWEN2_TIED);
    tensors.put("lm_head.weight", new long[] {32, 16});
    try (ModelWeights w = ModelWeights.load(write(tensors, "F32"), QWEN2_TIED, Precision.FP32, Device.cpu())) {
      assertThat(w.lmHead()).isSameAs(w.embedTokens());
    }
  }

  @Test
  void llamaAttentionAndMlpBiasesAreLoaded() {
    ModelConfig c = config("llama", ", \"attention_bias\": true, \"mlp_bias\": true");
    try (ModelWeights w = ModelWeights.load(write(tensorsOf(c), "F32"), c, Precision.FP32, Device.cpu())) {
      LayerWeights l = w.layers().get(0);
      assertTensor(l.oProj().bias(), "model.layers.0.self_attn.o_proj.bias", new long[] {16}, DataType.FLOAT32);
      assertTensor(l.kProj().bias(), "model.layers.0.self_attn.k_proj.bias", new long[] {8}, DataType.FLOAT32);
      assertTensor(l.gateProj().bias(), "model.layers.0.mlp.gate_proj.bias", new long[] {24}, DataType.FLOAT32);
      assertTensor(l.downProj().bias(), "model.layers.0.mlp.down_proj.bias", new long[] {16}, DataType.FLOAT32);
    }
  }

  @Test
  void stackedProjectionsHoldEachPartsRowsInOrder() {
    try (ModelWeights w = ModelWeights.load(write(tensorsOf(QWEN2_TIED), "F32"), QWEN2_TIED, Precision.FP32,
        Device.cpu())) {
      for (LayerWeights l : w.layers()) {
        float[] qkv = l.qkvProj().weight().toFloatArray();
        float[] parts = concat(l.qProj().weight().toFloatArray(), l.kProj().weight().toFloatArray(),
            l.vProj().weight().toFloatArray());
        assertThat(qkv).containsExactly(parts);
        assertThat(l.qkvProj().bias().toFloatArray()).containsExactly(concat(l.qProj().bias().toFloatArray(),
            l.kProj().bias().toFloatArray(), l.vProj().bias().toFloatArray()));
        assertThat(l.gateUpProj().weight().toFloatArray()).containsExactly(
            concat(l.gateProj().weight().toFloatArray(), l.upProj().weight().toFloatArray()));
        assertThat(l.gateUpProj().bias()).isNull();
      }
    }
  }

  private static float[] concat(float[]... parts) {
    int n = 0;
    for (float[] p : parts) {
      n += p.length;
    }
    float[] out = new float[n];
    int at = 0;
    for (float[] p : parts) {
      System.arraycopy(p, 0, out, at, p.length);
      at += p.length;
    }
    return out;
  }

  @Test
  void fp16PrecisionHoldsEveryWeightInFloat16() {
    try (ModelWeights w = ModelWeights.load(write(tensorsOf(LLAMA), "F32"), LLAMA, Precision.FP16, Device.cpu())) {
      assertThat(w.precision()).isEqualTo(Precision.FP16);
      assertTensor(w.embedTokens(), "model.embed_tokens.weight", new long[] {32, 16}, DataType.FLOAT16);
      assertTensor(w.lmHead(), "lm_head.weight", new long[] {32, 16}, DataType.FLOAT16);
      assertTensor(w.layers().get(1).downProj().weight(), "model.layers.1.mlp.down_proj.weight", new long[] {16, 24},
          DataType.FLOAT16);
      assertTensor(w.layers().get(0).inputLayernorm(), "model.layers.0.input_layernorm.weight", new long[] {16},
          DataType.FLOAT16);
    }
  }

  @Test
  void bf16CheckpointLoadsAsExactFloat32() {
    try (ModelWeights w = ModelWeights.load(write(tensorsOf(QWEN2_TIED), "BF16"), QWEN2_TIED, Precision.FP32,
        Device.cpu())) {
      assertTensor(w.embedTokens(), "model.embed_tokens.weight", new long[] {32, 16}, DataType.FLOAT32);
      assertTensor(w.layers().get(0).qProj().bias(), "model.layers.0.self_attn.q_proj.bias", new long[] {16},
          DataType.FLOAT32);
    }
  }

  @Test
  void weightsManagerIsCappedSoNothingAttachesToItLater() {
    try (ModelWeights w = ModelWeights.load(write(tensorsOf(LLAMA), "F32"), LLAMA, Precision.FP32, Device.cpu())) {
      assertThatThrownBy(() -> w.manager().create(1f))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("capped");
    }
  }

  @Test
  void shapeMismatchNamesTheTensorAndBothShapes() {
    Map<String, long[]> tensors = tensorsOf(LLAMA);
    tensors.put("model.layers.1.self_attn.k_proj.weight", new long[] {16, 16}); // as if num_key_value_heads were 4
    Checkpoint checkpoint = write(tensors, "F32");

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, LLAMA, Precision.FP32, Device.cpu()))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("tensor 'model.layers.1.self_attn.k_proj.weight' has shape [16, 16] "
            + "but config.json implies [8, 16]");
  }

  @Test
  void transposedProjectionIsAShapeMismatch() {
    Map<String, long[]> tensors = tensorsOf(LLAMA);
    tensors.put("model.layers.0.mlp.down_proj.weight", new long[] {24, 16});
    Checkpoint checkpoint = write(tensors, "F32");

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, LLAMA, Precision.FP32, Device.cpu()))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("tensor 'model.layers.0.mlp.down_proj.weight' has shape [24, 16] "
            + "but config.json implies [16, 24]");
  }

  @Test
  void vocabMismatchOfTheEmbeddingIsReported() {
    Map<String, long[]> tensors = tensorsOf(LLAMA);
    tensors.put("model.embed_tokens.weight", new long[] {33, 16});
    Checkpoint checkpoint = write(tensors, "F32");

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, LLAMA, Precision.FP32, Device.cpu()))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("tensor 'model.embed_tokens.weight' has shape [33, 16] but config.json implies [32, 16]");
  }

  @Test
  void missingTensorIsNamed() {
    Map<String, long[]> tensors = tensorsOf(LLAMA);
    tensors.remove("model.layers.1.mlp.up_proj.weight");
    Checkpoint checkpoint = write(tensors, "F32");

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, LLAMA, Precision.FP32, Device.cpu()))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("has no tensor 'model.layers.1.mlp.up_proj.weight'");
  }

  @Test
  void qwen2WithoutItsQkvBiasIsRejected() {
    Map<String, long[]> tensors = tensorsOf(QWEN2_TIED);
    tensors.remove("model.layers.0.self_attn.v_proj.bias");
    Checkpoint checkpoint = write(tensors, "F32");

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, QWEN2_TIED, Precision.FP32, Device.cpu()))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("has no tensor 'model.layers.0.self_attn.v_proj.bias'");
  }

  @Test
  void untiedConfigWithoutLmHeadIsRejected() {
    Map<String, long[]> tensors = tensorsOf(LLAMA);
    tensors.remove("lm_head.weight");
    Checkpoint checkpoint = write(tensors, "F32");

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, LLAMA, Precision.FP32, Device.cpu()))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("has no lm_head.weight and config.json does not set tie_word_embeddings");
  }

  @Test
  void lmHeadOfTheWrongShapeIsRejected() {
    Map<String, long[]> tensors = tensorsOf(LLAMA);
    tensors.put("lm_head.weight", new long[] {16, 32});
    Checkpoint checkpoint = write(tensors, "F32");

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, LLAMA, Precision.FP32, Device.cpu()))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("tensor 'lm_head.weight' has shape [16, 32] but config.json implies [32, 16]");
  }

  @Test
  void integerWeightIsRejectedNamingItsDtype() {
    SafetensorsWriter w = new SafetensorsWriter();
    tensorsOf(LLAMA).forEach((name, shape) -> {
      if (name.equals("model.norm.weight")) {
        w.add(name, "I32", shape, new byte[16 * 4]);
      } else {
        w.f32(name, shape, valuesOf(name, shape));
      }
    });
    w.write(dir.resolve("model.safetensors"));
    Checkpoint checkpoint = Checkpoint.open(dir);

    assertThatThrownBy(() -> ModelWeights.load(checkpoint, LLAMA, Precision.FP32, Device.cpu()))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'model.norm.weight' has dtype I32; weights must be F32, F16 or BF16");
  }

  @Test
  void qwen2TinyFixtureLoadsWithTheShapesOfItsConfig() {
    Path fixture = Fixtures.model("qwen2-tiny");
    ModelConfig c = ModelConfig.load(fixture);
    Checkpoint checkpoint = Checkpoint.open(fixture);
    assertThat(checkpoint.tensors().keySet()).containsExactlyInAnyOrderElementsOf(tensorsOf(c).keySet());

    try (ModelWeights w = ModelWeights.load(checkpoint, c, Precision.FP32, Device.cpu())) {
      assertThat(w.embedTokens().getShape()).isEqualTo(new Shape(512, 64));
      assertThat(w.lmHead()).isSameAs(w.embedTokens());
      assertThat(w.layers()).hasSize(2);
      LayerWeights l = w.layers().get(1);
      assertThat(l.qProj().weight().getShape()).isEqualTo(new Shape(64, 64));
      assertThat(l.kProj().weight().getShape()).isEqualTo(new Shape(32, 64));
      assertThat(l.kProj().bias().getShape()).isEqualTo(new Shape(32));
      assertThat(l.downProj().weight().getShape()).isEqualTo(new Shape(64, 160));
      assertThat(l.qProj().weight().getDataType()).isEqualTo(DataType.FLOAT32);
      TensorInfo embedInfo = checkpoint.tensor("model.embed_tokens.weight");
      ByteBuffer raw = SafetensorsFile.map(embedInfo, 0, embedInfo.byteLength());
      float[] expected = new float[512 * 64];
      for (int i = 0; i < expected.length; i++) {
        expected[i] = Float.intBitsToFloat((raw.getShort(2 * i) & 0xFFFF) << 16);
      }
      assertThat(w.embedTokens().toFloatArray()).as("bf16 bytes widened").containsExactly(expected);
    }
  }
}
