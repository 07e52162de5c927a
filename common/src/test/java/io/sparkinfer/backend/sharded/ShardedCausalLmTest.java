package io.sparkinfer.backend.sharded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReferenceConformanceTest;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.testing.RandomCheckpoint;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tensor- and pipeline-parallel replicas on the CPU give the unsplit model's logits (within 1e-4 in fp32) and
 * greedy tokens, and the reference's: on the fixtures (biases, sliding windows, GQA and MQA, Llama-3 rope) and on a
 * generated checkpoint with more layers and heads, pipelines over an odd number of layers included.
 */
class ShardedCausalLmTest {

  @TempDir
  static Path tmp;

  static Stream<Arguments> splits() {
    Path wide = RandomCheckpoint.write(tmp.resolve("wide"), 5, 8, 4, 16, 96, 192, 11);
    return Stream.of(
        Arguments.of("qwen2-tiny tp=2", Fixtures.model("qwen2-tiny"), "tp=2"),
        Arguments.of("qwen2-tiny pp=2", Fixtures.model("qwen2-tiny"), "pp=2"),
        Arguments.of("qwen2-tiny tp=2,pp=2", Fixtures.model("qwen2-tiny"), "tp=2,pp=2"),
        Arguments.of("llama-bias-tiny tp=4 (o and down biases added once)", Fixtures.bundled("llama-bias-tiny"), "tp=4"),
        Arguments.of("llama3-tiny tp=2,pp=2", Fixtures.bundled("llama3-tiny"), "tp=2,pp=2"),
        Arguments.of("mistral-tiny pp=2 (sliding window, one key/value head)", Fixtures.bundled("mistral-tiny"), "pp=2"),
        Arguments.of("generated 5 layers pp=2 (3 + 2 layers)", wide, "pp=2"),
        Arguments.of("generated 5 layers pp=5", wide, "pp=5"),
        Arguments.of("generated 8/4 heads tp=4", wide, "tp=4"),
        Arguments.of("generated tp=2,pp=3", wide, "tp=2,pp=3"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("splits")
  void aSplitReplicaGivesTheUnsplitModelsLogitsAndGreedyTokens(String name, Path dir, String layout) {
    EngineOptions whole = EngineOptions.of(dir, Precision.FP32, "cpu");
    List<GenerationRequest> requests = new ArrayList<>();
    List<Fixtures.Case> cases = cases(dir);
    for (int i = 0; i < cases.size(); i++) {
      requests.add(new GenerationRequest("r" + i, null, 8, SamplingParams.GREEDY, List.of(), true,
          cases.get(i).inputIds()));
    }
    try (LlmEngine unsplit = LlmEngine.load(whole);
        LlmEngine split = LlmEngine.load(whole.with(EngineOptions.LAYOUT, Layout.parse(layout)))) {
      assertThat(split.backend()).isInstanceOf(ShardedCausalLm.class);
      assertThat(split.describe()).contains("layout " + Layout.parse(layout).label());
      float[][] a = Fixtures.lastLogits(unsplit, cases);
      float[][] b = Fixtures.lastLogits(split, cases);
      for (int i = 0; i < cases.size(); i++) {
        assertThat(ReferenceConformanceTest.maxAbsDiff(a[i], b[i])).as("%s: prompt %d's last logits", name, i)
            .isLessThan(1e-4f);
      }
      List<Completion> expected = unsplit.generate(requests, 3);
      List<Completion> actual = split.generate(requests, 3);
      for (int i = 0; i < requests.size(); i++) {
        assertThat(actual.get(i).outputTokenIds()).as("%s: prompt %d, batched with others", name, i)
            .containsExactly(expected.get(i).outputTokenIds());
      }
    }
  }

  /** The fixture's reference prompts, or a few made-up ones for a generated checkpoint. */
  private static List<Fixtures.Case> cases(Path dir) {
    if (dir.resolve("reference.json").toFile().exists()) {
      return Fixtures.reference(dir);
    }
    List<Fixtures.Case> out = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      long[] ids = new long[5 + 3 * i];
      for (int j = 0; j < ids.length; j++) {
        ids[j] = (17L * (i + 1) * (j + 3)) % 512;
      }
      out.add(new Fixtures.Case("", ids, null, null, null));
    }
    return out;
  }

  @Test
  void aSplitReplicaReproducesTransformersGreedyTokens() {
    Path dir = Fixtures.model("qwen2-code-demo");
    for (String layout : new String[] {"tp=2", "pp=2", "pp=3,tp=2"}) {
      EngineOptions options = EngineOptions.of(dir, Precision.FP32, "cpu").with(EngineOptions.LAYOUT, Layout.parse(layout));
      try (LlmEngine engine = LlmEngine.load(options)) {
        for (Fixtures.Case c : Fixtures.reference(dir)) {
          long[] ids = engine.generate(List.of(GenerationRequest.greedy("r", c.prompt(), c.greedyIds().length)), 1)
              .get(0).outputTokenIds();
          assertThat(ids).as("%s: %s", layout, c.prompt()).containsExactly(c.greedyIds());
        }
      }
    }
  }

  @Test
  void invalidLayoutsFailBeforeAnyWeightLoadsAndSayWhy() {
    Path mistral = Fixtures.bundled("mistral-tiny"); // 4 query heads, 1 key/value head, 2 layers, MLP 160
    EngineOptions base = EngineOptions.of(mistral, Precision.FP32, "cpu");
    assertThatThrownBy(() -> LlmEngine.load(base.with(EngineOptions.LAYOUT, Layout.parse("tp=2"))))
        .hasMessageContaining("tp=2 must divide the query heads (4) and the key/value heads (1)");
    assertThatThrownBy(() -> LlmEngine.load(base.with(EngineOptions.LAYOUT, Layout.parse("pp=3"))))
        .hasMessageContaining("pp=3 stages need at least as many layers, the model has 2");
    assertThatThrownBy(() -> LlmEngine.load(EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.BF16, "cpu")
        .with(EngineOptions.LAYOUT, Layout.parse("tp=2")))).hasMessageContaining("cannot compute in bf16");
  }

  @Test
  void evenSplitsGiveTheEarlierPartsTheRemainder() {
    assertThat(ShardedCausalLm.evenSplit(10, 3, 0)).containsExactly(0, 4);
    assertThat(ShardedCausalLm.evenSplit(10, 3, 1)).containsExactly(4, 7);
    assertThat(ShardedCausalLm.evenSplit(10, 3, 2)).containsExactly(7, 10);
    assertThat(ShardedCausalLm.evenSplit(512, 2, 1)).containsExactly(256, 512);
  }
}
