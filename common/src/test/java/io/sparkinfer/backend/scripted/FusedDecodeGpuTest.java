package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.eager.Attention;
import io.sparkinfer.backend.fused.FusedDecode;
import io.sparkinfer.backend.fused.FusedOptions;
import io.sparkinfer.backend.scripted.ScriptedCausalLm;
import io.sparkinfer.backend.scripted.ScriptedOptions;
import io.sparkinfer.backend.scripted.ScriptedOptions.KvCacheDtype;
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
 * The fused decode step (our kernels between TorchScript ops, in a CUDA graph) against the scripted step
 * on the same cache: same logits within fp16 rounding, same next tokens, over several steps of rows with
 * different lengths, with flash attention and with each of our attention kernels (decode_attention split
 * over the keys then combined, or one split per row writing the output itself; decode_attention_wide), and
 * through mistral-tiny's sliding window, and over a float8 cache ({@code --kv-cache-dtype fp8}: decode_attention_fp8
 * against the TorchScript step's widening of the whole cache). Skipped without a GPU.
 */
@Tag("gpu")
class FusedDecodeGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: fused decode is checked on the GPU machine");
  }

  /** How a fused step attends. */
  enum Attention { FLASH, SPLITS, ONE_SPLIT, WIDE }

  static Stream<Arguments> cases() {
    Path demo = Fixtures.demoModel();
    Path mistral = Fixtures.bundled("mistral-tiny");
    return Stream.of(
        Arguments.of("qwen2-code-demo, flash attention", demo, Precision.FP16, Attention.FLASH, false),
        Arguments.of("qwen2-code-demo, decode_attention + combine", demo, Precision.FP16, Attention.SPLITS, false),
        Arguments.of("qwen2-code-demo, decode_attention, one split", demo, Precision.FP16, Attention.ONE_SPLIT, false),
        Arguments.of("qwen2-code-demo, decode_attention_wide", demo, Precision.FP16, Attention.WIDE, false),
        Arguments.of("mistral-tiny (sliding window 8), flash attention", mistral, Precision.FP16, Attention.FLASH, false),
        Arguments.of("mistral-tiny (sliding window 8), decode_attention", mistral, Precision.FP16, Attention.SPLITS, false),
        Arguments.of("mistral-tiny (sliding window 8), one split", mistral, Precision.FP16, Attention.ONE_SPLIT, false),
        Arguments.of("mistral-tiny (sliding window 8), decode_attention_wide", mistral, Precision.FP16, Attention.WIDE, false),
        Arguments.of("qwen2-code-demo bf16, decode_attention", demo, Precision.BF16, Attention.SPLITS, false),
        Arguments.of("qwen2-code-demo bf16, decode_attention_wide", demo, Precision.BF16, Attention.WIDE, false),
        Arguments.of("qwen2-code-demo fp8, decode_attention", demo, Precision.FP8, Attention.SPLITS, false),
        Arguments.of("qwen2-code-demo, float8 cache, decode_attention + combine", demo, Precision.FP16,
            Attention.SPLITS, true),
        Arguments.of("qwen2-code-demo, float8 cache, one split", demo, Precision.FP16, Attention.ONE_SPLIT, true),
        Arguments.of("mistral-tiny (sliding window 8), float8 cache", mistral, Precision.FP16, Attention.SPLITS, true),
        Arguments.of("qwen2-code-demo bf16, float8 cache", demo, Precision.BF16, Attention.SPLITS, true),
        Arguments.of("qwen2-code-demo fp8, float8 cache", demo, Precision.FP8, Attention.SPLITS, true));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void fusedStepsGiveTheScriptedStepsLogits(String name, Path dir, Precision precision, Attention attention,
      boolean float8Cache) {
    EngineOptions options = EngineOptions.of(dir, precision, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED)
        .with(ScriptedOptions.CUDA_GRAPHS, true)
        .with(ScriptedOptions.KV_CACHE_DTYPE, float8Cache ? KvCacheDtype.FP8 : KvCacheDtype.MODEL)
        .with(FusedOptions.FUSED_ATTENTION, attention == Attention.FLASH ? FusedOptions.Attention.FLASH
            : attention == Attention.WIDE ? FusedOptions.Attention.WIDE : FusedOptions.Attention.KERNELS)
        .with(FusedOptions.FUSED_ATTENTION_BLOCKS, attention == Attention.ONE_SPLIT ? 1
            : FusedOptions.FUSED_ATTENTION_BLOCKS.defaultValue());
    try (LlmEngine engine = LlmEngine.load(options); NDManager m = NDManager.newBaseManager(ai.djl.Device.gpu())) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      ModelConfig config = ModelConfig.load(dir);
      int steps = 4;
      PrefilledBatch batch = PrefilledBatch.of(engine, backend, m, steps + 1);
      int rows = batch.nextIds().length;
      long[] nextIds = batch.nextIds();
      long[] nextPositions = batch.nextPositions();
      KvCache cache = batch.cache();
      assertThat(cache.float8()).isEqualTo(float8Cache);
      assertThat(backend.describe()).contains(float8Cache ? "float8 KV cache" : "").doesNotContain("widened");
      for (int s = 0; s < steps; s++) {
        int keyLength = batch.longest() + s + 1;
        float[] fused = backend.decode(m, nextIds, nextPositions, keyLength, cache).toFloatArray(); // a graph replay
        // rewrites the same keys and values (float8: the same bytes), then reads the cache widened whole
        NDArray scripted = backend.run(m, batch.decodeBatch(m, keyLength), cache);
        float[] expected = scripted.toFloatArray();
        // fp8: a tenth of the largest logit (FusedPrefillGpuTest says why)
        float bound = precision == Precision.FP8
            ? FusedPrefillGpuTest.FP8_RELATIVE * ReferenceConformanceTest.maxAbsDiff(expected, new float[expected.length])
            : precision == Precision.BF16 ? 0.25f : 5e-2f;
        assertThat(ReferenceConformanceTest.maxAbsDiff(fused, expected)).as("step %d: rounding only", s)
            .isLessThan(bound);
        long[] next = scripted.argMax(-1).toLongArray();
        for (int i = 0; i < rows; i++) {
          assertThat(ReferenceConformanceTest.argMax(java.util.Arrays.copyOfRange(fused, i * config.vocabSize(),
              (i + 1) * config.vocabSize()))).as("step %d row %d", s, i).isEqualTo((int) next[i]);
          nextIds[i] = next[i];
          nextPositions[i]++;
        }
      }
      assertThat(backend.acceleration().fusedOffReason()).isNull();
      if (attention != Attention.FLASH) {
        assertThat(FusedDecode.attentionPerWarp(config)).as("the fixture's shape takes decode_attention").isTrue();
      }
      assertThat(backend.acceleration().fusedCaptures()).as("one graph per cache").isEqualTo(1);
      assertThat(backend.acceleration().graphReplays()).isEqualTo(steps);
      cache.close();
    }
  }
}
