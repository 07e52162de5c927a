package io.sparkinfer.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kernels compiled by NVRTC once and loaded from the cache after: the cached module's kernel computes what the
 * compiled one does, a damaged file is compiled again, and a CUBIN the driver refuses is replaced. Skipped without a
 * GPU.
 */
@Tag("gpu")
class CubinCacheGpuTest {

  private static final String SOURCE = """
      extern "C" __global__ void scale(const float* x, float* out, long long n, long long factor) {
        long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x;
        if (i < n) {
          out[i] = x[i] * (float) (factor + OFFSET);
        }
      }
      """;

  @TempDir
  Path tmp;

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: NVRTC and the driver run on the GPU machine");
    assumeTrue(CudaKernels.unavailableReason().isEmpty(), () -> "kernels off: " + CudaKernels.unavailableReason());
  }

  @Test
  void theSecondModuleComesFromTheCacheAndRunsTheSame() throws IOException {
    CubinCache cache = CubinCache.in(tmp);
    try (CudaKernels.Module compiled = new CudaKernels.Module(SOURCE, List.of("-DOFFSET=1"), Device.gpu(), cache);
        CudaKernels.Module cached = new CudaKernels.Module(SOURCE, List.of("-DOFFSET=1"), Device.gpu(), cache);
        CudaKernels.Module other = new CudaKernels.Module(SOURCE, List.of("-DOFFSET=2"), Device.gpu(), cache)) {
      assertThat(compiled.fromCache()).isFalse();
      assertThat(cached.fromCache()).isTrue();
      assertThat(other.fromCache()).as("other options, another CUBIN").isFalse();
      assertThat(run(cached, 3)).containsExactly(0f, 4f, 8f, 12f);
      assertThat(run(compiled, 3)).containsExactly(run(cached, 3));
      assertThat(run(other, 3)).containsExactly(0f, 5f, 10f, 15f);
    }
    try (var files = Files.list(tmp)) {
      assertThat(files).hasSize(2);
    }
  }

  @Test
  void aCubinTheDriverRefusesIsCompiledAgain() throws IOException {
    CubinCache cache = CubinCache.in(tmp);
    CubinCache.Key key = CubinCache.Key.of(SOURCE, List.of("-DOFFSET=1"), CudaKernels.architecture(0),
        CudaKernels.compilerVersion());
    cache.replace(key, () -> new byte[] {1, 2, 3, 4}); // intact as a file, not a CUBIN
    try (CudaKernels.Module m = new CudaKernels.Module(SOURCE, List.of("-DOFFSET=1"), Device.gpu(), cache)) {
      assertThat(m.fromCache()).isFalse();
      assertThat(run(m, 1)).containsExactly(0f, 2f, 4f, 6f);
    }
    try (CudaKernels.Module m = new CudaKernels.Module(SOURCE, List.of("-DOFFSET=1"), Device.gpu(), cache)) {
      assertThat(m.fromCache()).as("the refused file was replaced").isTrue();
    }
  }

  private static float[] run(CudaKernels.Module module, long factor) {
    try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
      NDArray x = m.arange(0f, 4f, 1f, DataType.FLOAT32);
      NDArray out = m.zeros(new Shape(4), DataType.FLOAT32);
      module.kernel("scale").launch(new int[] {1, 1, 1}, new int[] {32, 1, 1}, CudaKernels.dataPtr(x),
          CudaKernels.dataPtr(out), 4, factor);
      return out.toFloatArray();
    }
  }
}
