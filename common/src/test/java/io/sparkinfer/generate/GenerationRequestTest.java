package io.sparkinfer.generate;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.testing.Fixtures;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.util.List;
import org.junit.jupiter.api.Test;

class GenerationRequestTest {

  @Test
  void tokenizeAllGivesEachTextPromptTheIdsEncodeGivesAndKeepsTheRest() {
    try (TextTokenizer tokenizer = TextTokenizer.load(Fixtures.demoModel())) {
      GenerationRequest text = new GenerationRequest("a", "def add(a, b):", 8, SamplingParams.GREEDY, List.of("\n"),
          true);
      GenerationRequest other = GenerationRequest.greedy("b", "class Stack:", 3);
      GenerationRequest ids = new GenerationRequest("c", null, 4, null, null, false, new long[] {5, 6});
      GenerationRequest empty = GenerationRequest.greedy("d", "", 2);
      List<GenerationRequest> out = GenerationRequest.tokenizeAll(List.of(text, ids, other, empty), tokenizer);
      assertThat(out).hasSize(4);
      assertThat(out.get(0).promptTokenIds()).containsExactly(tokenizer.encode("def add(a, b):"));
      assertThat(out.get(2).promptTokenIds()).containsExactly(tokenizer.encode("class Stack:"));
      assertThat(out.get(0)).usingRecursiveComparison().ignoringFields("promptTokenIds").isEqualTo(text);
      assertThat(out.get(1)).as("ids given: kept").isSameAs(ids);
      assertThat(out.get(3)).as("no prompt: kept for the generator's error").isSameAs(empty);
      List<GenerationRequest> none = List.of(ids);
      assertThat(GenerationRequest.tokenizeAll(none, tokenizer)).isSameAs(none);
    }
  }
}
