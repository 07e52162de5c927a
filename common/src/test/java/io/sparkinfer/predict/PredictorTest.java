package io.sparkinfer.predict;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.inference.Predictor;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.FinishReason;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.ModelLoadException;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PredictorTest {

  @Test
  void djlPredictorReturnsReferenceCompletionsInRequestOrder() throws Exception {
    Path dir = Fixtures.model("qwen2-tiny");
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(GenerationRequest.greedy("id-" + i, cases.get(i).prompt(), 16));
    }
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(dir, Precision.FP32, "cpu"));
        Predictor<List<GenerationRequest>, List<Completion>> predictor = engine.newPredictor(3)) {
      List<Completion> out = predictor.predict(requests);
      assertThat(out).hasSize(cases.size());
      for (int i = 0; i < cases.size(); i++) {
        Completion c = out.get(i);
        assertThat(c.id()).isEqualTo("id-" + i);
        assertThat(c.outputTokenIds()).containsExactly(cases.get(i).greedyIds());
        assertThat(c.promptTokens()).isEqualTo(cases.get(i).inputIds().length);
        assertThat(c.completionTokens()).isEqualTo(16);
        assertThat(c.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(c.latencyMs()).isPositive();
        assertThat(c.timeToFirstTokenMs()).isPositive().isLessThanOrEqualTo(c.latencyMs());
      }
      // the same predictor serves another call
      assertThat(predictor.predict(requests.subList(0, 1)).get(0).outputTokenIds())
          .containsExactly(cases.get(0).greedyIds());
    }
  }

  @Test
  void engineDescribesWhatItLoaded() {
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(Fixtures.model("qwen2-tiny"), null, "cpu"))) {
      assertThat(engine.precision()).as("default precision on CPU").isEqualTo(Precision.FP32);
      assertThat(engine.describe()).contains("qwen2").contains("2 layers").contains("fp32").contains("eager");
      assertThat(engine.autoBatchSize(100, 16)).isBetween(1, 1024);
    }
  }

  @Test
  void loadingFailsClearlyForAMissingDirectory(@TempDir Path tmp) {
    assertThatThrownBy(() -> LlmEngine.load(EngineOptions.of(tmp.resolve("nope"), null, "cpu")))
        .isInstanceOf(ModelLoadException.class).hasMessageContaining("no config.json");
  }

  @Test
  void optionsRejectUnknownDevicesBackendsAndMissingGpus() {
    assertThatThrownBy(() -> new EngineOptions("m", null, "tpu", null, false)).hasMessageContaining("device 'tpu'");
    assertThatThrownBy(() -> new EngineOptions("m", null, "cpu", "onnx", false)).hasMessageContaining("backend 'onnx'");
    assertThatThrownBy(() -> EngineOptions.parseDevice("gpu:1", 1)).hasMessageContaining("GPU 1 requested");
    assertThatThrownBy(() -> new EngineOptions(" ", null, "cpu", null, false)).hasMessageContaining("model directory");
    assertThat(EngineOptions.parseDevice("auto", 0).isGpu()).isFalse();
    assertThat(EngineOptions.parseDevice("gpu:1", 2).getDeviceId()).isEqualTo(1);
    assertThat(new EngineOptions("m", null, "gpu:3", null, false).device()).as("checked where the model loads").isEqualTo("gpu:3");
    assertThatThrownBy(() -> new EngineOptions("m", null, "gpu:x", null, false)).hasMessageContaining("gpu:N");
    assertThatThrownBy(() -> new EngineOptions("m", null, "gpu:-1", null, false)).hasMessageContaining("device 'gpu:-1'");
    assertThatThrownBy(() -> new EngineOptions("m", null, "gpu:+1", null, false)).hasMessageContaining("device 'gpu:+1'");
    assertThatThrownBy(() -> Precision.parse("bf8")).hasMessageContaining("supported: fp32, fp16");
  }

  /** Each captured decode graph keeps a float32 logits row per sequence: one more per 128 slots of length. */
  @Test
  void batchSizingCountsALogitsRowPerDecodeGraph() throws Exception {
    io.sparkinfer.model.ModelConfig c = io.sparkinfer.model.ModelConfig.load(Fixtures.model("qwen2-tiny"));
    ai.djl.ndarray.types.DataType f16 = ai.djl.ndarray.types.DataType.FLOAT16;
    long kvPerToken = io.sparkinfer.model.KvCache.bytesPerToken(c, f16);
    long within = BatchSizer.bytesPerSequence(c, f16, 10, 117); // 127 slots: one bucket
    long full = BatchSizer.bytesPerSequence(c, f16, 10, 118); // 128 slots: still one
    long next = BatchSizer.bytesPerSequence(c, f16, 10, 119); // 129 slots: a second graph
    assertThat(full - within).isEqualTo(kvPerToken);
    assertThat(next - full).isEqualTo(kvPerToken + 4L * c.vocabSize());
  }
}
