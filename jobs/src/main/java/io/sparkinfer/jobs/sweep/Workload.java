package io.sparkinfer.jobs.sweep;

import io.sparkinfer.tokenizer.TextTokenizer;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The prompts the trials time: a seeded sample of the user's prompt table ({@code --input}), or synthetic
 * prompts of a given length whose token ids are drawn uniformly from the model's vocabulary (the benchmark
 * suites' "random" workload: length is what costs, not content). A trial takes the first prompts it needs,
 * going round the sample again when it needs more than there are.
 *
 * @param texts the sampled prompts, or null for synthetic ones
 * @param count how many prompts there are (synthetic: made on demand, any number)
 * @param seed the synthetic prompts' seed
 */
public record Workload(List<String> texts, int count, long seed) implements Serializable {

  public Workload {
    texts = texts == null ? null : List.copyOf(texts);
  }

  public static Workload synthetic(int count, long seed) {
    return new Workload(null, count, seed);
  }

  public static Workload sample(List<String> texts) {
    if (texts.isEmpty()) {
      throw new IllegalArgumentException("the --input sample has no prompts");
    }
    return new Workload(texts, texts.size(), 0);
  }

  public boolean isSynthetic() {
    return texts == null;
  }

  /**
   * The first {@code n} prompts as token ids: the sample tokenized (round again past its end), or synthetic
   * prompts of {@code promptLen} tokens in [0, vocab), the same for every trial with that length.
   */
  public List<long[]> promptIds(TextTokenizer tokenizer, int vocab, int promptLen, int n) {
    List<long[]> out = new ArrayList<>();
    if (!isSynthetic()) {
      List<long[]> sample = new ArrayList<>();
      for (String t : texts) {
        sample.add(tokenizer.encode(t));
      }
      for (int i = 0; i < n; i++) {
        out.add(sample.get(i % sample.size()));
      }
      return out;
    }
    SplittableRandom random = new SplittableRandom(seed * 31 + promptLen);
    for (int i = 0; i < n; i++) {
      long[] ids = new long[promptLen];
      for (int j = 0; j < promptLen; j++) {
        ids[j] = random.nextInt(vocab);
      }
      out.add(ids);
    }
    return out;
  }

  /** In words, for the study's row. */
  public String describe(List<String> promptLens) {
    return isSynthetic() ? "synthetic prompts of " + String.join(" or ", promptLens) + " tokens, seed " + seed
        : count + " prompts sampled from --input";
  }
}
