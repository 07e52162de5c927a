package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A layout's generators over one list of requests ({@code generate.sh}): one stream that all of them take from. */
class EnginePoolTest {

  @Test
  void generatorsOfALayoutShareTheRequestsAndGiveTheReferenceTokensInRequestOrder() {
    List<Fixtures.Case> cases = Fixtures.reference(Fixtures.model("qwen2-code-demo"));
    int[] limits = {3, 16, 7, 16, 12, 16, 5, 14};
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(GenerationRequest.greedy("r" + i, cases.get(i).prompt(), limits[i]));
    }
    requests.add(GenerationRequest.greedy("empty", "", 4));
    EngineOptions options = EngineOptions.of(Fixtures.model("qwen2-code-demo"), Precision.FP32, "cpu")
        .with(EngineOptions.LAYOUT, Layout.parse("threads=2"));
    try (EnginePool pool = EnginePool.load(options)) {
      List<Completion> out = pool.generate(requests, 2);
      assertThat(out).extracting(Completion::id).containsExactlyElementsOf(requests.stream().map(r -> r.id()).toList());
      for (int i = 0; i < cases.size(); i++) {
        long[] ref = cases.get(i).greedyIds();
        assertThat(out.get(i).outputTokenIds()).as(cases.get(i).prompt())
            .containsExactly(Arrays.copyOf(ref, Math.min(ref.length, limits[i])));
      }
      assertThat(out.get(cases.size()).isError()).isTrue();
      assertThat(pool.members()).hasSize(2);
      assertThat(pool.members()).as("each generator took part of the stream")
          .allSatisfy(m -> assertThat(m.generator().stats().requests()).isPositive());
      assertThat(pool.stats().requests()).isEqualTo(requests.size());
    }
  }
}
