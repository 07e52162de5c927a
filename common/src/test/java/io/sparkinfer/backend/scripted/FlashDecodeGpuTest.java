package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.testing.PrefilledBatch;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Decode attention through variable-length flash attention (fp16 on a GPU) against the masked SDPA path
 * on the same cache: same logits within fp16 rounding, same next tokens. Rows have different lengths, and
 * mistral-tiny's sliding window is shorter than its prompts. Skipped without a GPU.
 */
@Tag("gpu")
class FlashDecodeGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: flash decode is checked on the GPU machine");
  }

  static Stream<Arguments> models() {
    return Stream.of(Arguments.of("qwen2-code-demo", Fixtures.demoModel()),
        Arguments.of("mistral-tiny (sliding window 8)", Fixtures.bundled("mistral-tiny")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("models")
  void flashDecodeGivesTheMaskedAttentionLogits(String name, Path dir) {
    EngineOptions options = EngineOptions.of(dir, Precision.FP16, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED).with(ScriptedOptions.CUDA_GRAPHS, false);
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(ai.djl.Device.gpu())) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      ModelConfig config = ModelConfig.load(dir);
      PrefilledBatch batch = PrefilledBatch.of(engine, backend, m, 8);
      ForwardBatch decode = batch.decodeBatch(m, batch.longest() + 1);
      backend.useFlashDecode(true);
      NDArray flash = backend.forward(m, decode, batch.cache());
      backend.useFlashDecode(false);
      NDArray masked = backend.forward(m, decode, batch.cache()); // rewrites the same keys and values
      float[] a = flash.toFloatArray();
      float[] b = masked.toFloatArray();
      assertThat(ReferenceConformanceTest.maxAbsDiff(a, b)).as("fp16 rounding only").isLessThan(5e-2f);
      assertThat(flash.argMax(-1).toLongArray()).containsExactly(masked.argMax(-1).toLongArray());
      batch.cache().close();
    }
  }
}
