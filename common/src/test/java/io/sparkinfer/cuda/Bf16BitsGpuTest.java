package io.sparkinfer.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.safetensors.Checkpoint;
import io.sparkinfer.testing.Fixtures;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * bf16 weights widened on the GPU from their bits: every one of the 65,536 patterns becomes the float32 with those top
 * 16 bits, and a bf16 checkpoint loads on the GPU to the same values as on the CPU (widened on the host). Skipped
 * without a GPU.
 */
@Tag("gpu")
class Bf16BitsGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: the widening kernel runs on the GPU machine");
  }

  @Test
  void everyBitPatternBecomesTheFloatWithThoseTopBits() {
    assertThat(Bf16Bits.available(Device.gpu(), CubinCache.of("none"))).isTrue();
    ByteBuffer patterns = ByteBuffer.allocateDirect(65536 * 2).order(ByteOrder.nativeOrder());
    for (int b = 0; b < 65536; b++) {
      patterns.putShort((short) b);
    }
    patterns.flip();
    try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
      NDArray bits = m.create(patterns, new Shape(256, 256), DataType.FLOAT16); // the bits, carried
      float[] wide = Bf16Bits.toFloat32(bits).toFloatArray();
      for (int b = 0; b < 65536; b++) {
        assertThat(Float.floatToRawIntBits(wide[b])).as("pattern %04x", b).isEqualTo(b << 16);
      }
    }
  }

  @Test
  void aBf16CheckpointLoadsOnTheGpuToTheValuesItHasOnTheCpu() {
    Path dir = Fixtures.bundled("llama-bias-tiny"); // a bf16 checkpoint
    ModelConfig config = ModelConfig.load(dir);
    Checkpoint checkpoint = Checkpoint.open(dir);
    try (ModelWeights gpu = ModelWeights.load(checkpoint, config, Precision.FP32, Device.gpu());
        ModelWeights cpu = ModelWeights.load(checkpoint, config, Precision.FP32, Device.cpu())) {
      Map<String, NDArray> onGpu = gpu.stepParameters();
      Map<String, NDArray> onCpu = cpu.stepParameters();
      assertThat(onGpu.keySet()).isEqualTo(onCpu.keySet());
      for (Map.Entry<String, NDArray> e : onCpu.entrySet()) {
        assertThat(onGpu.get(e.getKey()).toFloatArray()).as(e.getKey()).containsExactly(e.getValue().toFloatArray());
      }
    }
  }
}
