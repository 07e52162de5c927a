package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The rest of the family against transformers (references made by {@code make_family_fixtures.py} with
 * {@code from_pretrained(dir, dtype=float32)}): Llama with llama3 rope scaling, an untied head and a BOS
 * token; Mistral with a sliding window shorter than the prompts, one KV head, an explicit head_dim, fp16
 * weights in ten shards; Llama with biases on every projection. Both backends, default options.
 */
class FamilyConformanceTest {

  static Stream<Arguments> fixturesAndBackends() {
    return Stream.of("llama3-tiny", "mistral-tiny", "llama-bias-tiny")
        .flatMap(f -> Stream.of(Arguments.of(f, "eager"), Arguments.of(f, "scripted")));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("fixturesAndBackends")
  void tokensAndLogitsMatchTransformers(String name, String backend) {
    Path dir = Fixtures.bundled(name);
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    EngineOptions options = EngineOptions.of(dir, Precision.FP32, "cpu").with(EngineOptions.BACKEND, EngineOptions.BACKEND.parse(backend));
    try (LlmEngine engine = LlmEngine.load(options)) {
      float[][] logits = Fixtures.lastLogits(engine, cases);
      List<GenerationRequest> requests = new ArrayList<>();
      for (int i = 0; i < cases.size(); i++) {
        Fixtures.Case c = cases.get(i);
        assertThat(engine.tokenizer().encode(c.prompt())).as("input ids of %s", c.prompt()).containsExactly(c.inputIds());
        assertThat(ReferenceConformanceTest.maxAbsDiff(logits[i], c.lastLogits())).as("logits of %s", c.prompt())
            .isLessThan(1e-3f);
        requests.add(new GenerationRequest("r" + i, c.prompt(), c.greedyIds().length, SamplingParams.GREEDY, List.of(), true));
      }
      List<Completion> alone = new ArrayList<>();
      for (GenerationRequest r : requests) {
        alone.addAll(engine.generate(List.of(r), 1));
      }
      List<Completion> batched = engine.generate(requests, 3);
      for (int i = 0; i < cases.size(); i++) {
        assertThat(alone.get(i).outputTokenIds()).as("alone: %s", cases.get(i).prompt())
            .containsExactly(cases.get(i).greedyIds());
        assertThat(batched.get(i).outputTokenIds()).as("batched: %s", cases.get(i).prompt())
            .containsExactly(cases.get(i).greedyIds());
      }
    }
  }
}
