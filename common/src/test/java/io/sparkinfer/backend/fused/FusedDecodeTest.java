package io.sparkinfer.backend.fused;

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
import io.sparkinfer.backend.scripted.ScriptedCausalLm;
import io.sparkinfer.backend.scripted.ScriptedOptions;
import io.sparkinfer.cuda.CudaGraphs;
import io.sparkinfer.cuda.CudaKernels;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.testing.Fixtures;
import java.util.List;
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
  void projectionsOfFloat8WeightsTakeInputsQuantizedPerRow() {
    try (NDManager m = manager.newSubManager()) {
      NDArray h = m.randomNormal(new Shape(3, 32));
      NDArray w = m.randomNormal(new Shape(8, 32));
      NDArray[] q = io.sparkinfer.torchscript.ScriptedTensors.quantizeFp8Rows(w, m); // float8 (8, 32), (1, 8)
      NDArray exact = h.matMul(w.transpose());
      // each product term off by at most about 1/16 of itself from each side's e4m3 rounding (and bf16's output)
      NDArray bound = h.abs().matMul(w.abs().transpose()).mul(0.15f).add(1e-3f);
      // inputs our kernels quantized (rms_norm_fp8, quantize_fp8, silu_mul_fp8): h's rows with their scales, (3, 32)
      // and (3)
      NDArray[] hq = io.sparkinfer.torchscript.ScriptedTensors.quantizeFp8Rows(h, m);
      NDArray rowScales = hq[1].reshape(3);
      NDArray noBias = m.zeros(new Shape(0));
      NDArray b = m.randomNormal(new Shape(8));
      NDArray out = m.zeros(new Shape(3, 8));
      call(m, "project_quantized", hq[0], rowScales, q[0], q[1], noBias, out);
      assertThat(out.sub(exact).abs().sub(bound).max().getFloat()).as("project_quantized, no bias")
          .isLessThanOrEqualTo(0f);
      call(m, "project_quantized", hq[0], rowScales, q[0], q[1], b, out);
      assertThat(out.sub(exact.add(b)).abs().sub(bound).max().getFloat()).as("project_quantized")
          .isLessThanOrEqualTo(0f);
      NDArray x = m.randomNormal(new Shape(3, 8));
      NDArray before = x.duplicate();
      NDArray update = m.randomNormal(new Shape(3, 8));
      call(m, "add_into", x, update); // the last down projection into the residual stream (QuantizedRows.addUpdate)
      assertThat(x.sub(before.add(update)).abs().max().getFloat()).as("add_into, in place").isLessThan(1e-6f);
      NDArray buffer = call(m, "empty_fp8", h, 5L, 16L);
      assertThat(buffer.getShape()).isEqualTo(new Shape(5, 16));
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
  void packedAttentionInputsGiveEachRowsQueriesSlotsAndEachTokensCacheRow() {
    PackedInputs in = packedInputs(new long[0], 3);
    assertThat(in.seqused()).as("seqused").containsExactly(6, 1, 10);
    assertThat(in.cuQ()).as("cu_q").containsExactly(0, 2, 3, 6);
    assertThat(in.cuK()).as("cu_k").containsExactly(0, 16, 32, 48);
    assertThat(in.tokenRows()).as("cache rows").containsExactly(0, 0, 1, 2, 2, 2);
  }

  @Test
  void packedAttentionInputsReadAndWriteTheCacheRowsGiven() {
    // the same rows into cache rows 1, 4 and 6 of a cache of 8 rows (a prefill joining a running batch)
    PackedInputs in = packedInputs(new long[] {1, 4, 6}, 8);
    assertThat(in.seqused()).as("seqused").containsExactly(6, 1, 10);
    assertThat(in.cuQ()).as("cu_q").containsExactly(0, 2, 3, 6);
    assertThat(in.cuK()).as("cu_k: each row's first slot, then the end").containsExactly(16, 64, 96, 128);
    assertThat(in.tokenRows()).as("cache rows").containsExactly(1, 1, 4, 6, 6, 6);
  }

  private record PackedInputs(int[] seqused, int[] cuQ, int[] cuK, long[] tokenRows) {}

  /**
   * packed_attention_inputs of three rows of 2, 1 and 3 tokens, the first and last after 4 and 7 written slots, into
   * {@code cacheRows} (empty: rows 0 .. 2) of a cache of {@code cacheBatch} rows of 16 slots.
   */
  private PackedInputs packedInputs(long[] cacheRows, long cacheBatch) {
    try (NDManager m = manager.newSubManager();
        IValue positions = IValue.from((PtNDArray) m.create(new long[] {4, 5, 0, 7, 8, 9}, new Shape(1, 6)));
        IValue last = IValue.from((PtNDArray) m.create(new long[] {1, 2, 5}));
        IValue targets = IValue.from((PtNDArray) m.create(cacheRows));
        IValue capacity = IValue.from(16L);
        IValue batch = IValue.from(cacheBatch);
        IValue out = IValueUtils.runMethod(ops, "packed_attention_inputs", positions, last, targets, capacity, batch)) {
      IValue[] parts = out.toIValueTuple();
      try {
        return new PackedInputs(parts[0].toTensor((PtNDManager) m).toIntArray(),
            parts[1].toTensor((PtNDManager) m).toIntArray(), parts[2].toTensor((PtNDManager) m).toIntArray(),
            parts[3].toTensor((PtNDManager) m).toLongArray());
      } finally {
        for (IValue p : parts) {
          p.close();
        }
      }
    }
  }

  @Test
  void packedLastTakesEachRowsLastTokenAndLogitsAreFloat() {
    try (NDManager m = manager.newSubManager()) {
      NDArray x = m.randomNormal(new Shape(6, 4)).toType(DataType.FLOAT16, false);
      NDArray last = call(m, "packed_last", x, m.create(new long[] {1, 2, 5}));
      assertThat(last.getShape()).isEqualTo(new Shape(3, 4));
      assertThat(last.get(2).toType(DataType.FLOAT32, false).toFloatArray())
          .containsExactly(x.get(5).toType(DataType.FLOAT32, false).toFloatArray());
      NDArray table = m.randomNormal(new Shape(10, 4));
      NDArray h = m.randomNormal(new Shape(3, 4));
      NDArray logits = call(m, "logits", h, table);
      assertThat(logits.getDataType()).isEqualTo(DataType.FLOAT32);
      assertThat(maxDiff(logits, h.matMul(table.transpose()))).as("h @ table^T").isLessThan(1e-5f);
      NDArray empty = call(m, "empty", x, 7L, 3L);
      assertThat(empty.getShape()).isEqualTo(new Shape(7, 3));
      assertThat(empty.getDataType()).as("like's dtype").isEqualTo(DataType.FLOAT16);
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
    int perWarp = FusedOptions.FUSED_ATTENTION_BLOCKS.defaultValue();
    for (int blocks : new int[] {perWarp, LaunchPlan.WIDE_ATTENTION_BLOCKS}) {
      for (int[] c : new int[][] {{256, 2, 640}, {1, 2, 640}, {8, 1, 33}, {64, 8, 32768}, {1, 1, 1}, {3, 2, 700}}) {
        int[] split = LaunchPlan.attentionSplits(c[0], c[1], c[2], blocks);
        assertThat(split[0] % 64).as("whole tiles").isZero();
        assertThat((long) split[0] * split[1]).as("covers every slot").isGreaterThanOrEqualTo(c[2]);
        assertThat((long) split[0] * (split[1] - 1)).as("no empty split").isLessThan(c[2]);
      }
    }
    int wide = LaunchPlan.WIDE_ATTENTION_BLOCKS;
    assertThat(LaunchPlan.attentionSplits(256, 2, 640, wide)[1]).as("several splits per row at batch 256").isGreaterThan(1);
    assertThat(LaunchPlan.attentionSplits(1, 2, 640, wide)[1]).as("one tile per split at batch 1").isEqualTo(10);
    assertThat(LaunchPlan.attentionSplits(256, 2, 640, perWarp)).as("a row is one split from 64 rows on")
        .containsExactly(640, 1);
    assertThat(LaunchPlan.attentionSplits(64, 2, 640, perWarp)).containsExactly(640, 1);
    assertThat(LaunchPlan.attentionSplits(16, 2, 640, perWarp)).as("at least 128 blocks below")
        .containsExactly(192, 4);
  }

  @Test
  void launchPlanCombinesOnlyWhenRowsHaveSeveralSplitsOrTheWideKernelRuns() {
    ModelConfig c = config(6, 128);
    LaunchPlan one = LaunchPlan.of(c, 256, 640, true, 128);
    assertThat(one.attentionKernel()).isEqualTo("decode_attention");
    assertThat(one.splits()).isEqualTo(1);
    assertThat(one.combines()).as("the kernel writes the output itself").isFalse();
    assertThat(one.attention().grid()).containsExactly(256, 2, 1);
    assertThat(one.rmsNorm().grid()).as("a block per row").containsExactly(256, 1, 1);
    assertThat(one.siluMul().grid()[0]).as("8 outputs a thread, 256 threads a block")
        .isEqualTo((256 * c.intermediateSize() / 8 + 255) / 256);
    LaunchPlan split = LaunchPlan.of(c, 16, 640, true, 128);
    assertThat(split.splits()).isGreaterThan(1);
    assertThat(split.combines()).isTrue();
    assertThat(split.attentionCombine().grid()).as("a block per row and query head").containsExactly(16 * 12, 1, 1);
    LaunchPlan wide = LaunchPlan.of(c, 256, 640, false, 128);
    assertThat(wide.attentionKernel()).isEqualTo("decode_attention_wide");
    assertThat(wide.combines()).as("the wide kernel always leaves partials").isTrue();
    assertThat(LaunchPlan.of(c, 256, 640, true, 1).splits()).as("one block asked for: one split per row").isEqualTo(1);
  }

  @Test
  void quantizingBlocksAreJustWideEnoughToKeepTheirRowInRegisters() {
    ModelConfig c = ModelConfig.parse("""
        {"model_type": "qwen2", "vocab_size": 64, "hidden_size": 1536, "intermediate_size": 8960,
         "num_hidden_layers": 1, "num_attention_heads": 12, "num_key_value_heads": 2,
         "max_position_embeddings": 128}"""); // Qwen2-1.5B's rows: H 1536, N*D 1536, I 8960
    LaunchPlan p = LaunchPlan.of(c, 1024, 640, true, 128);
    for (LaunchPlan.Dims d : List.of(p.rmsNormFp8(), p.quantizeFp8(), p.siluMulFp8())) {
      assertThat(d.grid()).as("a block per row").containsExactly(1024, 1, 1);
      assertThat(d.block()[0] % 32).as("whole warps").isZero();
    }
    assertThat(p.rmsNormFp8().block()[0]).as("192 chunks kept by the fewest threads").isEqualTo(128);
    assertThat(p.siluMulFp8().block()[0]).as("1,120 chunks, 4 a thread, in whole warps").isEqualTo(288);
    for (int width : new int[] {8, 1536, 4096, 8960, 14336, 28672}) {
      int threads = LaunchPlan.fp8Threads(width);
      assertThat(threads).isBetween(LaunchPlan.FP8_MIN_THREADS, 1024);
      if (width / 8 <= 1024 * LaunchPlan.FP8_CHUNKS) {
        assertThat((long) threads * LaunchPlan.FP8_CHUNKS).as("width %d kept", width).isGreaterThanOrEqualTo(width / 8);
      }
      if (threads > LaunchPlan.FP8_MIN_THREADS) {
        assertThat((long) (threads - 32) * LaunchPlan.FP8_CHUNKS).as("width %d: a warp fewer would not keep it", width)
            .isLessThan(width / 8);
      }
    }
    assertThat(LaunchPlan.fp8Threads(65536)).as("wider rows are made twice by at most 1,024 threads").isEqualTo(1024);
    assertThat(FusedDecode.compileOptions(c, Precision.FP8)).contains("-DFP8_CHUNKS=" + LaunchPlan.FP8_CHUNKS);
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
    assertThat(LaunchPlan.rotaryThreads(config(6, 128))).as("16 heads of 8 items").isEqualTo(128);
    assertThat(LaunchPlan.rotaryThreads(config(1, 64))).as("6 heads of 4 items, one warp").isEqualTo(32);
    assertThat(LaunchPlan.rotaryThreads(config(8, 128))).as("20 heads of 8 items").isEqualTo(160);
    assertThat(LaunchPlan.rotaryThreads(config(16, 128))).as("at most 256, looping over the rest").isEqualTo(256);
    assertThat(LaunchPlan.rotaryThreads(config(4, 72))).isEqualTo(128);
  }

  @Test
  void onCpuStepsAreNotFusedAndTheBackendSaysWhy() {
    EngineOptions options = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine engine = LlmEngine.load(options)) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.acceleration().fusedOffReason()).contains("only in CUDA graphs on a GPU");
      assertThat(backend.acceleration().fusedCaptures()).isZero();
      assertThat(backend.acceleration().fusedPrefillOffReason()).as("prefill follows the decode kernels")
          .isEqualTo("no fused kernels: " + backend.acceleration().fusedOffReason());
      assertThat(backend.describe()).as("no GPU features to name on a CPU").isEqualTo("scripted backend");
      engine.generate(java.util.List.of(io.sparkinfer.generate.GenerationRequest.greedy("a", "def add(a, b):", 2)), 1);
      assertThat(backend.acceleration().fusedPrefills()).isZero();
    }
    try (LlmEngine engine = LlmEngine.load(options.with(FusedOptions.FUSED_PREFILL, false))) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.acceleration().fusedPrefillOffReason()).isEqualTo("turned off (--fused-prefill=false)");
    }
    try (LlmEngine engine = LlmEngine.load(options.with(ScriptedOptions.PACKED_PREFILL, false))) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.newGenerator().backend();
      assertThat(backend.acceleration().fusedPrefillOffReason()).contains("--packed-prefill=false");
    }
    ModelConfig config = ModelConfig.load(Fixtures.model("qwen2-tiny"));
    OptionValues defaults = options.values();
    assertThat(FusedDecode.unsupportedBeforeLoad(config, Precision.FP32, Device.gpu(), true, defaults))
        .hasValueSatisfying(r -> assertThat(r).contains("float16 or bfloat16"));
    assertThat(FusedDecode.unsupportedBeforeLoad(config, Precision.FP16, Device.gpu(), false, defaults)).isPresent();
    assertThat(FusedDecode.unsupportedBeforeLoad(config, Precision.FP16, Device.gpu(), true, defaults))
        .as("head dim " + config.headDim()).isEmpty();
    assertThat(FusedDecode.unsupportedBeforeLoad(config, Precision.FP16, Device.gpu(), true,
        defaults.with(FusedOptions.FUSED_KERNELS, false))).hasValue("turned off (--fused-kernels=false)");
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
