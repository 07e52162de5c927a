package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import io.sparkinfer.backend.scripted.ScriptedOptions.KvCacheDtype;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code --kv-cache-dtype fp8} on a GPU, where our kernels write and read the float8 cache (fused prefill and fused
 * decode graphs, {@code decode_attention_fp8}): greedy generation of the demo model keeps transformers' first
 * tokens, with how far its ids agree printed beside the model-dtype cache's; prompts sharing a prefix give the same
 * tokens with the prefix computed once (its rows copied as bytes, then read widened by the prompts' own prefill);
 * {@code --precision fp8} takes the float8 cache by default. Skipped without a GPU.
 */
@Tag("gpu")
class Float8KvCacheGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: the float8 cache's kernels run on a GPU");
  }

  static EngineOptions options(Precision precision, KvCacheDtype cache) {
    return EngineOptions.of(Fixtures.demoModel(), precision, "gpu").with(ScriptedOptions.KV_CACHE_DTYPE, cache);
  }

  @Test
  void greedyGenerationKeepsTransformersFirstTokens() {
    List<Fixtures.Case> cases = Fixtures.reference(Fixtures.demoModel());
    List<GenerationRequest> requests = Fixtures.referenceRequests(cases);
    int total = Fixtures.referenceTokens(cases);
    int[] agreed = new int[2];
    for (KvCacheDtype cache : new KvCacheDtype[] {KvCacheDtype.FP8, KvCacheDtype.MODEL}) {
      try (LlmEngine engine = LlmEngine.load(options(Precision.FP16, cache))) {
        List<Completion> out = engine.generate(requests, 4);
        ScriptedCausalLm backend = (ScriptedCausalLm) engine.generator().backend();
        assertThat(backend.float8Cache()).isEqualTo(cache == KvCacheDtype.FP8);
        if (cache == KvCacheDtype.FP8) {
          assertThat(backend.describe()).contains("float8 KV cache").doesNotContain("widened");
          assertThat(backend.acceleration().fusedPrefills()).as("fused prefill ran").isPositive();
          assertThat(backend.acceleration().fusedCaptures()).as("fused decode graphs ran").isPositive();
        }
        for (int i = 0; i < cases.size(); i++) {
          assertThat(out.get(i).outputTokenIds()[0]).as("%s: first token of %s", cache, cases.get(i).prompt())
              .isEqualTo(cases.get(i).greedyIds()[0]);
        }
        agreed[cache.ordinal()] = Fixtures.leadingAgreement(out, cases);
      }
    }
    assertThat(agreed[KvCacheDtype.FP8.ordinal()]).isPositive();
    System.out.printf("greedy ids agreeing with transformers fp32 (leading ids of %d prompts, demo model, gpu, fp16): "
        + "float8 KV cache %d of %d, model-dtype cache %d of %d%n", cases.size(), agreed[KvCacheDtype.FP8.ordinal()],
        total, agreed[KvCacheDtype.MODEL.ordinal()], total);
  }

  @Test
  void promptsSharingAPrefixGiveTheSameTokensWithItComputedOnce() {
    List<Fixtures.Case> cases = Fixtures.reference(Fixtures.demoModel());
    String system = cases.get(0).prompt() + "\n" + cases.get(1).prompt() + "\n" + cases.get(2).prompt() + "\n";
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(GenerationRequest.greedy("g" + i, system + cases.get(i).prompt(), 12));
    }
    try (LlmEngine engine = LlmEngine.load(options(Precision.FP16, KvCacheDtype.FP8))) {
      List<Completion> alone;
      try (Generator g = engine.newGenerator(engine.options().values().with(GeneratorOptions.SHARED_PREFIX, 0))) {
        alone = g.generate(requests, requests.size());
      }
      try (Generator g = engine.newGenerator(engine.options().values().with(GeneratorOptions.SHARED_PREFIX, 32))) {
        List<Completion> shared = g.generate(requests, requests.size());
        int same = 0;
        for (int i = 0; i < requests.size(); i++) {
          assertThat(shared.get(i).outputTokenIds()).as("%s: generated", requests.get(i).id()).isNotEmpty();
          assertThat(shared.get(i).outputTokenIds()[0]).as("%s: first token", requests.get(i).id())
              .isEqualTo(alone.get(i).outputTokenIds()[0]);
          same += Arrays.equals(shared.get(i).outputTokenIds(), alone.get(i).outputTokenIds()) ? 1 : 0;
        }
        assertThat(g.stats().sharedPrefixTokens()).as("the prefix computed once").isPositive();
        System.out.printf("float8 cache, shared prefix on the gpu: %d of %d prompts' 12 tokens identical to those "
            + "computed without sharing%n", same, requests.size());
        assertThat(same).as("fp16 rounds the two prefills differently; most stay identical")
            .isGreaterThanOrEqualTo(requests.size() / 2);
      }
    }
  }

  @Test
  void fp8PrecisionTakesTheFloat8CacheByDefault() {
    try (LlmEngine engine = LlmEngine.load(options(Precision.FP8, null))) {
      ScriptedCausalLm backend = (ScriptedCausalLm) engine.generator().backend();
      assertThat(backend.float8Cache()).as(backend.describe()).isTrue();
    }
    try (LlmEngine engine = LlmEngine.load(options(Precision.FP16, null))) {
      assertThat(((ScriptedCausalLm) engine.generator().backend()).float8Cache()).as("fp16: the model's dtype")
          .isFalse();
    }
  }
}
