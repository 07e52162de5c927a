package io.sparkinfer.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.IValueUtils;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.predict.EngineOptions;
import io.sparkinfer.predict.LlmEngine;
import io.sparkinfer.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What of the fused decode step can be checked without a GPU: its TorchScript ops compute what they say on
 * CPU tensors (flash attention aside, which is CUDA only), tensors' device addresses come back with their
 * offsets, attention splits cover the cache, and on CPU the scripted backend says why steps are not fused.
 * {@link FusedDecodeGpuTest} checks the fused step against the scripted one on a GPU.
 */
class FusedDecodeTest {

  private static PtNDManager manager;
  private static PtSymbolBlock ops;

  @BeforeAll
  static void load() {
    manager = (PtNDManager) NDManager.newBaseManager(Device.cpu());
    ops = FusedDecode.loadOps(manager);
  }

  @AfterAll
  static void close() {
    manager.close();
  }

  private static NDArray call(NDManager scope, String method, Object... args) {
    IValue[] values = new IValue[args.length];
    for (int i = 0; i < args.length; i++) {
      values[i] = args[i] instanceof NDArray a ? IValue.from((PtNDArray) a) : IValue.from((Long) args[i]);
    }
    try (IValue out = IValueUtils.runMethod(ops, method, values)) {
      return out.toTensor((PtNDManager) scope);
    } finally {
      for (IValue v : values) {
        v.close();
      }
    }
  }

  @Test
  void projectWritesTheProjectionIntoItsOutputWithAndWithoutBias() {
    try (NDManager m = manager.newSubManager()) {
      NDArray h = m.randomNormal(new Shape(3, 5));
      NDArray w = m.randomNormal(new Shape(4, 5));
      NDArray b = m.randomNormal(new Shape(4));
      NDArray out = m.zeros(new Shape(3, 4));
      call(m, "project", h, w, b, out);
      assertThat(maxDiff(out, h.matMul(w.transpose()).add(b))).isLessThan(1e-5f);
      call(m, "project", h, w, m.zeros(new Shape(0)), out);
      assertThat(maxDiff(out, h.matMul(w.transpose()))).as("an empty bias is no bias").isLessThan(1e-5f);
    }
  }

  @Test
  void addProjectionAddsToTheResidualInPlace() {
    try (NDManager m = manager.newSubManager()) {
      NDArray a = m.randomNormal(new Shape(3, 6));
      NDArray x = m.randomNormal(new Shape(3, 4));
      NDArray before = x.duplicate();
      NDArray w = m.randomNormal(new Shape(4, 6));
      NDArray b = m.randomNormal(new Shape(4));
      call(m, "add_projection", a, x, w, b);
      assertThat(maxDiff(x, before.add(a.matMul(w.transpose())).add(b))).isLessThan(1e-5f);
    }
  }

  @Test
  void embedGathersRowsIntoTheResidualAndHeadGivesFloatLogits() {
    try (NDManager m = manager.newSubManager()) {
      NDArray table = m.randomNormal(new Shape(10, 4));
      NDArray x = m.zeros(new Shape(3, 4));
      call(m, "embed", m.create(new long[] {7, 0, 7}, new Shape(3, 1)), table, x);
      assertThat(x.get(0).toFloatArray()).containsExactly(table.get(7).toFloatArray());
      assertThat(x.get(1).toFloatArray()).containsExactly(table.get(0).toFloatArray());
      NDArray logits = call(m, "head", x, table);
      assertThat(logits.getShape()).isEqualTo(new Shape(3, 10));
      assertThat(logits.getDataType()).isEqualTo(DataType.FLOAT32);
      assertThat(maxDiff(logits, x.matMul(table.transpose()))).as("x @ table^T").isLessThan(1e-5f);
    }
  }

  @Test
  void attentionInputsPackEachRowsWrittenSlots() {
    try (NDManager m = manager.newSubManager();
        IValue positions = IValue.from((PtNDArray) m.create(new long[] {4, 0, 9}, new Shape(3, 1)));
        IValue capacity = IValue.from(16L);
        IValue out = IValueUtils.runMethod(ops, "attention_inputs", positions, capacity)) {
      IValue[] parts = out.toIValueTuple();
      assertThat(parts[0].toTensor((PtNDManager) m).toIntArray()).as("seqused").containsExactly(5, 1, 10);
      assertThat(parts[1].toTensor((PtNDManager) m).toIntArray()).as("cu_q").containsExactly(0, 1, 2, 3);
      assertThat(parts[2].toTensor((PtNDManager) m).toIntArray()).as("cu_k").containsExactly(0, 16, 32, 48);
      for (IValue p : parts) {
        p.close();
      }
    }
  }

  @Test
  void dataPointersIncludeTheViewsOffset() {
    assumeThat(CudaGraphs.libraryLoaded()).as("the JNI library is built only with g++ on x86-64").isTrue();
    try (NDManager m = manager.newSubManager()) {
      NDArray a = m.zeros(new Shape(4, 8)); // float32 rows of 32 bytes
      long base = CudaKernels.dataPtr(a);
      assertThat(base).isNotZero();
      assertThat(CudaKernels.dataPtr(a.get(2))).isEqualTo(base + 2 * 32);
    }
  }

  @Test
  void attentionSplitsCoverTheCacheInWholeTiles() {
    for (int blocks : new int[] {FusedDecodeStep.PER_WARP_ATTENTION_BLOCKS, FusedDecodeStep.WIDE_ATTENTION_BLOCKS}) {
      for (int[] c : new int[][] {{256, 2, 640}, {1, 2, 640}, {8, 1, 33}, {64, 8, 32768}, {1, 1, 1}, {3, 2, 700}}) {
        int[] split = FusedDecodeStep.attentionSplits(c[0], c[1], c[2], blocks);
        assertThat(split[0] % 64).as("whole tiles").isZero();
        assertThat((long) split[0] * split[1]).as("covers every slot").isGreaterThanOrEqualTo(c[2]);
        assertThat((long) split[0] * (split[1] - 1)).as("no empty split").isLessThan(c[2]);
      }
    }
    int wide = FusedDecodeStep.WIDE_ATTENTION_BLOCKS;
    assertThat(FusedDecodeStep.attentionSplits(256, 2, 640, wide)[1]).as("several splits per row at batch 256").isGreaterThan(1);
    assertThat(FusedDecodeStep.attentionSplits(1, 2, 640, wide)[1]).as("one tile per split at batch 1").isEqualTo(10);
    int perWarp = FusedDecodeStep.PER_WARP_ATTENTION_BLOCKS;
    assertThat(FusedDecodeStep.attentionSplits(256, 2, 640, perWarp)).as("a row is one split from 64 rows on")
        .containsExactly(640, 1);
    assertThat(FusedDecodeStep.attentionSplits(64, 2, 640, perWarp)).containsExactly(640, 1);
    assertThat(FusedDecodeStep.attentionSplits(16, 2, 640, perWarp)).as("at least 128 blocks below")
        .containsExactly(192, 4);
  }

  @Test
  void attentionKernelFollowsTheModelsShape() {
    assertThat(FusedDecode.attentionPerWarp(config(6, 128))).as("Qwen2-1.5B").isTrue();
    assertThat(FusedDecode.attentionPerWarp(config(16, 64))).isTrue();
    assertThat(FusedDecode.attentionPerWarp(config(17, 64))).as("more than 16 heads a group").isFalse();
    assertThat(FusedDecode.attentionPerWarp(config(4, 256))).as("head dim over 128").isFalse();
    assertThat(FusedDecode.attentionPerWarp(config(4, 72))).as("head dim not a multiple of 16").isFalse();
  }

  @Test
  void rotaryBlocksTakeARowsWorkItemsInWholeWarps() {
    assertThat(FusedDecodeStep.rotaryThreads(config(6, 128))).as("16 heads of 8 items").isEqualTo(128);
    assertThat(FusedDecodeStep.rotaryThreads(config(1, 64))).as("6 heads of 4 items, one warp").isEqualTo(32);
    assertThat(FusedDecodeStep.rotaryThreads(config(8, 128))).as("20 heads of 8 items").isEqualTo(160);
    assertThat(FusedDecodeStep.rotaryThreads(config(16, 128))).as("at most 256, looping over the rest").isEqualTo(256);
    assertThat(FusedDecodeStep.rotaryThreads(config(4, 72))).isEqualTo(128);
  }

  @Test
  void onCpuStepsAreNotFusedAndTheBackendSaysWhy() {
    EngineOptions options = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu").withBackend("scripted");
    try (LlmEngine engine = LlmEngine.load(options)) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.fusedDecodeOffReason()).contains("only in CUDA graphs on a GPU");
      assertThat(backend.fusedDecode()).isNull();
      assertThat(backend.fusedCaptures()).isZero();
    }
    ModelConfig config = ModelConfig.load(Fixtures.model("qwen2-tiny"));
    assertThat(FusedDecode.unsupportedBeforeLoad(config, Precision.FP32, Device.gpu(), true))
        .hasValueSatisfying(r -> assertThat(r).contains("float16 or bfloat16"));
    assertThat(FusedDecode.unsupportedBeforeLoad(config, Precision.FP16, Device.gpu(), false)).isPresent();
    assertThat(FusedDecode.unsupportedBeforeLoad(config, Precision.FP16, Device.gpu(), true))
        .as("head dim " + config.headDim()).isEmpty();
  }

  /** A llama config with 2 key/value heads of {@code group} query heads each, of dim {@code headDim}. */
  private static ModelConfig config(int group, int headDim) {
    return ModelConfig.parse(String.format(java.util.Locale.ROOT, """
        {"model_type": "llama", "vocab_size": 64, "hidden_size": %d, "intermediate_size": 64,
         "num_hidden_layers": 1, "num_attention_heads": %d, "num_key_value_heads": 2, "head_dim": %d,
         "max_position_embeddings": 128}""", 2 * group * headDim, 2 * group, headDim));
  }

  private static float maxDiff(NDArray a, NDArray b) {
    return a.sub(b).abs().max().getFloat();
  }
}
