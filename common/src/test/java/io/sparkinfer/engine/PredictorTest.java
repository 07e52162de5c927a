package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.inference.Predictor;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.generate.BatchSizer;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.FinishReason;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionValues;
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
      assertThat(engine.autoBatchSize(100, 16)).isBetween(1, BatchSizer.MAX_BATCH);
    }
  }

  @Test
  void loadingFailsClearlyForAMissingDirectory(@TempDir Path tmp) {
    assertThatThrownBy(() -> LlmEngine.load(EngineOptions.of(tmp.resolve("nope"), null, "cpu")))
        .isInstanceOf(ModelLoadException.class).hasMessageContaining("no config.json");
  }

  @Test
  void optionsRejectUnknownDevicesBackendsAndMissingGpus() {
    Option<String> device = EngineOptions.DEVICE_OPTION;
    assertThatThrownBy(() -> device.parse("tpu")).hasMessageContaining("--device must be one of auto, cpu, gpu, gpu:N")
        .hasMessageContaining("got 'tpu'");
    assertThatThrownBy(() -> EngineOptions.BACKEND.parse("onnx"))
        .hasMessageContaining("--backend must be one of auto, eager, scripted, got 'onnx'");
    assertThatThrownBy(() -> EngineOptions.parseDevice("gpu:1", 1)).hasMessageContaining("GPU 1 requested");
    assertThatThrownBy(() -> new EngineOptions(" ", OptionValues.defaults(EngineOptions.ALL)))
        .hasMessageContaining("model directory");
    assertThat(EngineOptions.parseDevice("auto", 0).isGpu()).isFalse();
    assertThat(EngineOptions.parseDevice("gpu:1", 2).getDeviceId()).isEqualTo(1);
    assertThat(EngineOptions.of(Path.of("m")).with(device, "gpu:3").device()).as("checked where the model loads")
        .isEqualTo("gpu:3");
    assertThat(device.parse("GPU:1")).as("any case").isEqualTo("gpu:1");
    for (String bad : new String[] {"gpu:x", "gpu:-1", "gpu:+1"}) {
      assertThatThrownBy(() -> device.parse(bad)).hasMessageContaining("gpu:N").hasMessageContaining(bad);
    }
    assertThatThrownBy(() -> EngineOptions.PRECISION.parse("bf8")).hasMessageContaining("auto, fp32, fp16, bf16");
    assertThatThrownBy(() -> new EngineOptions("m", OptionValues.defaults(List.of(EngineOptions.PRECISION))))
        .as("every engine option needs a value").hasMessageContaining("engine options lack");
  }

  /** Batch sizing adds what the backend keeps per row to the KV cache, activations and logits of a sequence. */
  @Test
  void batchSizingCountsTheBackendsWorkspacePerSequence() throws Exception {
    io.sparkinfer.model.ModelConfig c = io.sparkinfer.model.ModelConfig.load(Fixtures.model("qwen2-tiny"));
    ai.djl.ndarray.types.DataType f16 = ai.djl.ndarray.types.DataType.FLOAT16;
    long kvPerToken = io.sparkinfer.backend.KvCache.bytesPerToken(c, f16);
    CausalLmBackend none = new Workspace(0);
    CausalLmBackend some = new Workspace(1000);
    assertThat(BatchSizer.bytesPerSequence(c, f16, none, 10, 118) - BatchSizer.bytesPerSequence(c, f16, none, 10, 117))
        .as("one more slot of keys and values").isEqualTo(kvPerToken);
    assertThat(BatchSizer.bytesPerSequence(c, f16, some, 10, 118) - BatchSizer.bytesPerSequence(c, f16, none, 10, 118))
        .as("the backend's workspace for 128 slots").isEqualTo(128_000);
  }

  /** A backend that only states its workspace: {@code perSlot} bytes per slot of a sequence. */
  private record Workspace(long perSlot) implements CausalLmBackend {
    @Override
    public ai.djl.ndarray.NDArray forward(ai.djl.ndarray.NDManager scope, io.sparkinfer.backend.ForwardBatch batch,
        io.sparkinfer.backend.BatchCache cache) {
      throw new UnsupportedOperationException();
    }

    @Override
    public io.sparkinfer.backend.BatchCache allocateCache(ai.djl.ndarray.NDManager parent, int batchSize, int capacity) {
      throw new UnsupportedOperationException();
    }

    @Override
    public String name() {
      return "workspace";
    }

    @Override
    public long workspaceBytesPerSequence(int tokens) {
      return perSlot * tokens;
    }
  }
}
