package io.sparkinfer.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.tokenizer.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * TokenizerBench tokenizes every prompt exactly once, whichever way and over however many threads: the tokens it counts
 * are the prompts' own, one at a time, including shares that run out (more threads than a block's worth of prompts).
 */
class TokenizerBenchTest {

  @Test
  void everyWayAndThreadCountTokenizesEachPromptOnce() throws Exception {
    List<String> prompts = new ArrayList<>();
    for (int i = 0; i < TokenizerBench.BLOCK + 37; i++) { // more than a block, not a multiple of the thread counts
      prompts.add("def f" + i + "(x):\n    return x * " + i);
    }
    try (TextTokenizer tokenizer = TextTokenizer.load(Path.of("demo", "qwen2-code-demo"))) {
      long expected = 0;
      for (String p : prompts) {
        expected += tokenizer.encode(p).length;
      }
      assertThat(expected).isGreaterThan(prompts.size());
      for (int threads : new int[] {1, 3, 16, 400}) {
        assertThat(TokenizerBench.tokenize(tokenizer, prompts, threads, true)).as("blocks, %d threads", threads)
            .isEqualTo(expected);
        assertThat(TokenizerBench.tokenize(tokenizer, prompts, threads, false)).as("each, %d threads", threads)
            .isEqualTo(expected);
      }
    }
  }
}
