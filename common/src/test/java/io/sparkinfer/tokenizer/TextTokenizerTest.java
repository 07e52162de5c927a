package io.sparkinfer.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Tokenizing a batch at once gives each text's ids as one at a time does, and as {@code transformers} does. */
class TextTokenizerTest {

  @ParameterizedTest
  @ValueSource(strings = {"qwen2-tiny", "qwen2-code-demo"})
  void aBatchIsEncodedAsItsTextsOneByOneAndAsTransformersDoes(String name) {
    Path model = Fixtures.model(name);
    List<Fixtures.Case> cases = Fixtures.reference(model);
    List<String> texts = new ArrayList<>();
    cases.forEach(c -> texts.add(c.prompt()));
    texts.add(""); // and texts the fixtures lack: empty, whitespace, non-ASCII
    texts.add("  \n\t ");
    texts.add("naïve café — 東京 🚀");
    try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
      long[][] batch = tokenizer.encodeAll(texts);
      assertThat(batch.length).isEqualTo(texts.size());
      for (int i = 0; i < texts.size(); i++) {
        assertThat(batch[i]).as("text %d", i).containsExactly(tokenizer.encode(texts.get(i)));
      }
      for (int i = 0; i < cases.size(); i++) {
        assertThat(batch[i]).as("transformers' ids of %s", cases.get(i).prompt())
            .containsExactly(cases.get(i).inputIds());
        assertThat(tokenizer.encode(cases.get(i).prompt())).as("one text: transformers' ids of %s",
            cases.get(i).prompt()).containsExactly(cases.get(i).inputIds());
      }
      assertThat(tokenizer.encodeAll(List.of())).isEmpty();
    }
  }

  /** A tokenizer whose post-processor adds a BOS (Llama 3): the batch gets it as one text alone does. */
  @org.junit.jupiter.api.Test
  void aBatchGetsTheSpecialTokensATextAloneGets() {
    try (TextTokenizer tokenizer = TextTokenizer.load(Fixtures.bundled("llama3-tiny"))) {
      List<String> texts = List.of("def f(x):", "", "hello world");
      long[][] batch = tokenizer.encodeAll(texts);
      for (int i = 0; i < texts.size(); i++) {
        long[] alone = tokenizer.encode(texts.get(i));
        assertThat(alone).as("a BOS first").isNotEmpty();
        assertThat(batch[i]).as("text %d", i).containsExactly(alone);
      }
    }
  }
}
