package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.scripted.ScriptedOptions.KvCacheDtype;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.BatchSizer;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code --kv-cache-dtype fp8} on the CPU, where the TorchScript step writes the float8 cache and widens it to read it
 * (on a GPU our kernels do: {@code FusedDecodeGpuTest}, {@code Float8KvCacheGpuTest}): a cache of uint8 bytes, half
 * of fp16's, that batch sizing counts as such; its bytes are the model's keys and values rounded to e4m3; greedy
 * generation of the trained demo model keeps transformers' first tokens; what it does not run on is refused.
 */
class Float8KvCacheTest {

  static final Path DEMO = Fixtures.demoModel();

  static EngineOptions options(Precision precision, KvCacheDtype cache) {
    return EngineOptions.of(DEMO, precision, "cpu").with(ScriptedOptions.KV_CACHE_DTYPE, cache);
  }

  @Test
  void theOptionTakesAutoModelAndFp8() {
    assertThat(ScriptedOptions.KV_CACHE_DTYPE.parse("FP8")).isEqualTo(KvCacheDtype.FP8);
    assertThat(ScriptedOptions.KV_CACHE_DTYPE.parse("model")).isEqualTo(KvCacheDtype.MODEL);
    assertThat(ScriptedOptions.KV_CACHE_DTYPE.parse("auto")).as("auto").isNull();
    assertThat(ScriptedOptions.KV_CACHE_DTYPE.defaultValue()).as("auto by default").isNull();
    assertThatThrownBy(() -> ScriptedOptions.KV_CACHE_DTYPE.parse("int4")).hasMessageContaining("auto, model, fp8");
  }

  @Test
  void autoKeepsTheModelsDtypeOnTheCpuAndFp8HoldsOneByteAValue() {
    try (LlmEngine auto = LlmEngine.load(options(Precision.FP8, null))) {
      CausalLmBackend backend = auto.generator().backend();
      assertThat(((ScriptedCausalLm) backend).float8Cache()).as("auto: fp8's cache only where our kernels read it")
          .isFalse();
      assertThat(backend.cacheStorageType(DataType.BFLOAT16)).isEqualTo(DataType.BFLOAT16);
    }
    try (LlmEngine fp16 = LlmEngine.load(options(Precision.FP16, KvCacheDtype.MODEL));
        LlmEngine fp8 = LlmEngine.load(options(Precision.FP16, KvCacheDtype.FP8));
        NDManager m = NDManager.newBaseManager(Device.cpu())) {
      ScriptedCausalLm backend = (ScriptedCausalLm) fp8.generator().backend();
      assertThat(backend.float8Cache()).isTrue();
      assertThat(backend.describe()).contains("float8 KV cache");
      assertThat(backend.cacheStorageType(DataType.FLOAT16)).isEqualTo(DataType.UINT8);
      try (BatchCache c = backend.allocateCache(m, 2, 8)) {
        KvCache kv = KvCache.of(c);
        assertThat(kv.float8()).isTrue();
        assertThat(kv.dataType()).as("the dtype steps compute in").isEqualTo(DataType.FLOAT16);
        assertThat(kv.keyArrays()[0].getDataType()).isEqualTo(DataType.UINT8);
        assertThat(kv.valueArrays()[0].getShape()).isEqualTo(new Shape(2, 8, fp8.config().numKeyValueHeads(),
            fp8.config().headDim()));
      }
      ModelConfig config = fp8.config();
      assertThat(KvCache.bytesPerToken(config, DataType.UINT8) * 2).isEqualTo(KvCache.bytesPerToken(config,
          DataType.FLOAT16));
      CausalLmBackend model = fp16.generator().backend();
      long halfKv = KvCache.bytesPerToken(config, DataType.UINT8) * 1000;
      assertThat(BatchSizer.bytesPerSequence(config, DataType.FLOAT16, model, 900, 100)
          - BatchSizer.bytesPerSequence(config, DataType.FLOAT16, backend, 900, 100))
          .as("batch sizing counts a float8 slot as half an fp16 one").isEqualTo(halfKv);
    }
  }

  /**
   * One prompt prefilled in fp32 into a model-dtype cache and a float8 one: the first layer's keys and values (the
   * same inputs in both) are in the float8 cache rounded to e4m3, and the later layers' within e4m3's rounding of
   * a slightly different stream; the slots past the prompt stay zero.
   */
  @Test
  void theCacheHoldsTheKeysAndValuesRoundedToE4m3() {
    try (LlmEngine exact = LlmEngine.load(options(Precision.FP32, KvCacheDtype.MODEL));
        LlmEngine fp8 = LlmEngine.load(options(Precision.FP32, KvCacheDtype.FP8));
        NDManager m = NDManager.newBaseManager(Device.cpu())) {
      long[] ids = exact.tokenizer().encode(Fixtures.reference(DEMO).get(0).prompt());
      int n = ids.length;
      KvCache reference = prefill(exact, m, ids, n + 4);
      KvCache float8 = prefill(fp8, m, ids, n + 4);
      for (int layer = 0; layer < reference.keyArrays().length; layer++) {
        for (boolean keys : new boolean[] {true, false}) {
          NDArray want = (keys ? reference.keyArrays() : reference.valueArrays())[layer];
          NDArray bytes = (keys ? float8.keyArrays() : float8.valueArrays())[layer];
          NDArray got = ScriptedTensors.widenFloat8(bytes, DataType.FLOAT32);
          // e4m3 keeps 3 mantissa bits: within 1/16 of the value, or half its smallest subnormal step (2^-10)
          NDArray bound = want.abs().div(16f).add((float) Math.pow(2, -10));
          String what = (keys ? "keys" : "values") + " of layer " + layer;
          if (layer == 0) {
            assertThat(got.sub(want).abs().sub(bound).max().getFloat()).as(what).isLessThanOrEqualTo(0f);
          } else { // a stream computed from rounded keys and values: close, not equal
            assertThat(got.sub(want).abs().max().getFloat()).as(what).isLessThan(want.abs().max().getFloat() / 4f);
          }
          assertThat(got.get(":, {}:", n).abs().max().getFloat()).as(what + " past the prompt").isZero();
          assertThat(got.get(":, :{}", n).abs().max().getFloat()).as(what + " written").isPositive();
        }
      }
    }
  }

  private static KvCache prefill(LlmEngine engine, NDManager m, long[] ids, int capacity) {
    CausalLmBackend backend = engine.generator().backend();
    KvCache cache = KvCache.of(backend.allocateCache(m, 1, capacity));
    long[] positions = new long[ids.length];
    Arrays.setAll(positions, j -> j);
    backend.forward(m, new ForwardBatch(m.create(ids, new Shape(1, ids.length)), m.create(positions,
        new Shape(1, ids.length)), m.create(new long[] {ids.length - 1}), ids.length), cache);
    return cache;
  }

  /**
   * Greedy generation of the demo model's reference prompts in fp32 with a float8 cache (four at a time, so rows
   * join and leave a running batch): every first token is transformers'. How far the ids agree with transformers',
   * with and without the float8 cache, is printed (README's figure on the CPU comes from this line).
   */
  @Test
  void greedyGenerationKeepsTransformersFirstTokens() {
    List<Fixtures.Case> cases = Fixtures.reference(DEMO);
    List<GenerationRequest> requests = Fixtures.referenceRequests(cases);
    int total = Fixtures.referenceTokens(cases);
    int[] agreed = new int[2];
    for (KvCacheDtype cache : new KvCacheDtype[] {KvCacheDtype.FP8, KvCacheDtype.MODEL}) {
      try (LlmEngine engine = LlmEngine.load(options(Precision.FP32, cache))) {
        List<Completion> out = engine.generate(requests, 4);
        if (cache == KvCacheDtype.FP8) {
          for (int i = 0; i < cases.size(); i++) {
            assertThat(out.get(i).outputTokenIds()[0]).as("first token of %s", cases.get(i).prompt())
                .isEqualTo(cases.get(i).greedyIds()[0]);
          }
        }
        agreed[cache.ordinal()] = Fixtures.leadingAgreement(out, cases);
      }
    }
    assertThat(agreed[KvCacheDtype.FP8.ordinal()]).isPositive();
    System.out.printf("greedy ids agreeing with transformers fp32 (leading ids of %d prompts, demo model, cpu, fp32): "
        + "float8 KV cache %d of %d, model-dtype cache %d of %d%n", cases.size(), agreed[KvCacheDtype.FP8.ordinal()],
        total, agreed[KvCacheDtype.MODEL.ordinal()], total);
  }

  /**
   * The generator marks a prefill line {@link ForwardBatch#fresh} (every row from position 0, so a float8 cache's
   * fused prefill may attend over the line itself) exactly when it holds whole prompts: lines without a shared
   * prefix, and the shared prefix's own line, but not the prompts' own tokens after a copied prefix.
   */
  @Test
  void prefillLinesAreFreshExactlyWhenTheirRowsStartAtPositionZero() {
    List<Fixtures.Case> cases = Fixtures.reference(DEMO);
    String system = cases.get(0).prompt() + "\n" + cases.get(1).prompt() + "\n" + cases.get(2).prompt() + "\n";
    List<GenerationRequest> shared = new ArrayList<>();
    List<GenerationRequest> plain = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      shared.add(GenerationRequest.greedy("s" + i, system + cases.get(i + 3).prompt(), 2));
      plain.add(GenerationRequest.greedy("p" + i, cases.get(i + 3).prompt(), 2));
    }
    try (LlmEngine engine = LlmEngine.load(options(Precision.FP32, KvCacheDtype.FP8))) {
      CausalLmBackend scripted = engine.generator().backend();
      List<Boolean> fresh = new ArrayList<>();
      List<Long> firstPositions = new ArrayList<>();
      CausalLmBackend recording = new CausalLmBackend() {
        @Override
        public NDArray forward(NDManager scope, ForwardBatch batch, BatchCache cache) {
          if (batch.inputIds().getShape().get(1) > 1) { // prefill lines, not decode steps
            fresh.add(batch.fresh());
            firstPositions.add(batch.positions().min().getLong());
          }
          return scripted.forward(scope, batch, cache);
        }

        @Override
        public BatchCache allocateCache(NDManager parent, int batchSize, int capacity) {
          return scripted.allocateCache(parent, batchSize, capacity);
        }

        @Override
        public boolean runsPacked() {
          return scripted.runsPacked();
        }

        @Override
        public String name() {
          return "recording";
        }
      };
      for (int sharing : new int[] {0, 32}) {
        fresh.clear();
        firstPositions.clear();
        try (io.sparkinfer.generate.Generator g = new io.sparkinfer.generate.Generator(engine.config(),
            engine.device(), Precision.FP32, recording, engine.tokenizer(),
            io.sparkinfer.generate.GenerationConfig.load(DEMO, engine.config()),
            engine.options().values().with(io.sparkinfer.generate.GeneratorOptions.SHARED_PREFIX, sharing))) {
          List<Completion> out = g.generate(sharing == 0 ? plain : shared, 4);
          assertThat(out).allSatisfy(c -> assertThat(c.outputTokenIds()).hasSize(2));
          if (sharing > 0) {
            assertThat(g.stats().sharedPrefixTokens()).as("the prefix was shared").isPositive();
          }
        }
        assertThat(fresh).as("prefill lines with shared prefix %d", sharing).isNotEmpty();
        for (int i = 0; i < fresh.size(); i++) {
          assertThat(fresh.get(i)).as("line %d (first position %d), shared prefix %d", i, firstPositions.get(i), sharing)
              .isEqualTo(firstPositions.get(i) == 0);
        }
        if (sharing > 0) {
          assertThat(fresh).as("the prefix's own line, then the prompts' own tokens after it").contains(true, false);
        }
      }
    }
  }

  @Test
  void onlyTheScriptedStepsWriteAndReadIt() {
    assertThatThrownBy(() -> LlmEngine.load(options(Precision.FP32, KvCacheDtype.FP8)
        .with(EngineOptions.BACKEND, BackendKind.EAGER)))
        .hasMessageContaining("--kv-cache-dtype fp8 runs on the scripted backend").hasMessageContaining("eager");
    assertThatThrownBy(() -> LlmEngine.load(options(Precision.FP32, KvCacheDtype.FP8)
        .with(EngineOptions.LAYOUT, Layout.parse("tp=2"))))
        .hasMessageContaining("--kv-cache-dtype fp8").hasMessageContaining("sharded");
    ModelConfig config = ModelConfig.load(DEMO);
    try (NDManager m = NDManager.newBaseManager(Device.cpu());
        KvCache float8 = KvCache.allocate(m, config, 1, 4, DataType.FLOAT32, true);
        KvCache model = KvCache.allocate(m, config, 1, 4, DataType.FLOAT32)) {
      Shape kv = new Shape(1, config.numKeyValueHeads(), 1, config.headDim());
      assertThatThrownBy(() -> float8.write(0, m.zeros(new Shape(1, 1), DataType.INT64), m.zeros(kv), m.zeros(kv)))
          .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("float8");
      assertThatThrownBy(() -> float8.keys(m, 0, 1)).isInstanceOf(UnsupportedOperationException.class);
      assertThatThrownBy(() -> model.copyRowsFrom(float8, new long[] {0}, 2))
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("float8");
    }
  }
}
