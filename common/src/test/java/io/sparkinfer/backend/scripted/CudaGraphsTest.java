package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.cuda.CudaGraphs;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * What of CUDA graphs can be checked without a GPU: the JNI library is built into the jar and loads, it
 * reports that libtorch's CUDA libraries are absent instead of failing, the engine then runs without
 * graphs and says why, and graphs attached to a KV cache close with it. {@link CudaGraphsGpuTest} checks
 * the graphs themselves on a GPU.
 */
class CudaGraphsTest {

  private static boolean gxxPresent() {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (Files.isExecutable(Path.of(dir, "g++"))) {
        return true;
      }
    }
    return false;
  }

  @Test
  void theLibraryIsInTheJarAndReportsMissingCudaLibrariesOnCpu() {
    assumeTrue(gxxPresent() && System.getProperty("os.arch").equals("amd64"), "the library is built only with g++ on x86-64");
    assertThat(CudaGraphs.class.getResource(CudaGraphs.LIBRARY)).as("built by src/main/native/build.sh").isNotNull();
    LlmEngine.load(EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu")).close(); // loads libtorch
    assertThat(CudaGraphs.unavailableReason()).as("CPU libtorch has no libc10_cuda.so")
        .hasValueSatisfying(reason -> assertThat(reason).contains("libc10_cuda.so is not loaded"));
  }

  @Test
  void theScriptedBackendOnCpuRunsWithoutGraphsAndSaysWhy() {
    EngineOptions options = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    assertThat(options.get(ScriptedOptions.CUDA_GRAPHS)).as("on unless turned off").isTrue();
    try (LlmEngine engine = LlmEngine.load(options)) {
      assertThat(engine.usesCudaGraphs()).isFalse();
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.acceleration().graphsOffReason()).isEqualTo("not on a GPU");
      assertThat(backend.acceleration().graphReplays()).isZero();
      assertThat(backend.decodeReadsWrittenSlotsOnly()).as("flash decode is CUDA only").isFalse();
    }
    try (LlmEngine engine = LlmEngine.load(options.with(ScriptedOptions.CUDA_GRAPHS, false))) {
      assertThat(((ScriptedCausalLm) engine.newGenerator().backend()).acceleration().graphsOffReason()).isEqualTo("turned off");
    }
  }

  @Test
  void keyLengthsRoundUpToBucketsWithinTheCache() {
    assertThat(DecodeGraphs.bucket(1, 1000)).isEqualTo(DecodeGraphs.KEY_BUCKET);
    assertThat(DecodeGraphs.bucket(DecodeGraphs.KEY_BUCKET, 1000)).isEqualTo(DecodeGraphs.KEY_BUCKET);
    assertThat(DecodeGraphs.bucket(DecodeGraphs.KEY_BUCKET + 1, 1000)).isEqualTo(2 * DecodeGraphs.KEY_BUCKET);
    assertThat(DecodeGraphs.bucket(999, 1000)).as("never past the cache").isEqualTo(1000);
    assertThat(DecodeGraphs.bucket(300, 300)).isEqualTo(300);
  }

  @Test
  void attachmentsAreMadeOnceAndClosedWithTheCache() throws Exception {
    ModelConfig config = ModelConfig.load(Fixtures.model("qwen2-tiny"));
    AtomicInteger made = new AtomicInteger();
    AtomicInteger closed = new AtomicInteger();
    try (NDManager m = NDManager.newBaseManager()) {
      KvCache cache = KvCache.allocate(m, config, 2, 8, DataType.FLOAT32);
      AutoCloseable first = cache.attachment(AutoCloseable.class, () -> {
        made.incrementAndGet();
        return closed::incrementAndGet;
      });
      AutoCloseable second = cache.attachment(AutoCloseable.class, () -> {
        made.incrementAndGet();
        return closed::incrementAndGet;
      });
      assertThat(second).isSameAs(first);
      assertThat(made).hasValue(1);
      assertThat(closed).hasValue(0);
      cache.close();
      assertThat(closed).hasValue(1);
    }
  }

  /** Graphs read the same tensors every step: writing a step's inputs must land in them, not in new storage. */
  @Test
  void decodeInputsAreWrittenIntoTheSameTensorsEveryStep() {
    try (NDManager m = NDManager.newBaseManager()) {
      DecodeInputs inputs = new DecodeInputs(m, 3, 15);
      io.sparkinfer.backend.ForwardBatch fixed = inputs.batch(16);
      for (long[][] step : new long[][][] {{{5, 6, 7}, {10, 11, 12}}, {{8, 9, 1}, {11, 12, 13}}}) {
        try (NDManager scope = m.newSubManager()) {
          inputs.write(scope, step[0], step[1]);
        }
        assertThat(fixed.inputIds().toLongArray()).containsExactly(step[0]);
        assertThat(fixed.positions().toLongArray()).containsExactly(step[1]);
        assertThat(fixed.inputIds().getShape().getShape()).containsExactly(3, 1);
        assertThat(fixed.lastIndex().toLongArray()).containsExactly(0, 0, 0);
      }
      assertThat(inputs.batch(16).inputIds()).as("the same tensor every step").isSameAs(fixed.inputIds());
    }
  }
}
