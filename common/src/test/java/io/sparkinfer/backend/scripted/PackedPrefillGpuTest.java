package io.sparkinfer.backend.scripted;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import io.sparkinfer.model.Precision;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Packed prefill through variable-length flash attention (fp16 on a GPU, causal from the bottom right over each
 * row's written slots) against the padded, masked SDPA step: same logits within fp16 rounding, same next tokens,
 * same keys and values, for fresh rows and rows after written slots. Skipped without a GPU.
 */
@Tag("gpu")
class PackedPrefillGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: flash prefill is checked on the GPU machine");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("io.sparkinfer.backend.scripted.PackedPrefillTest#models")
  void flashPackedStepsGiveThePaddedStepsLogitsAndCache(String name, Path dir) {
    PackedPrefillTest.compare(dir, Precision.FP16, Device.gpu(), 5e-2f);
  }
}
