package io.sparkinfer.jobs.sweep;

import io.sparkinfer.tokenizer.TextTokenizer;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The prompts every trial times: a seeded sample of the user's prompt table ({@code --input}), or synthetic
 * prompts of a given length whose token ids are drawn uniformly from the model's vocabulary (the benchmark
 * suites' "random" workload: length is what costs, not content).
 *
 * @param texts the sampled prompts, or null for synthetic ones
 * @param count synthetic prompts per repeat
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
   * The prompts as token ids: the sample tokenized, or {@link #count} synthetic prompts of {@code promptLen}
   * tokens in [0, vocab), the same for every trial with that length.
   */
  public List<long[]> promptIds(TextTokenizer tokenizer, int vocab, int promptLen) {
    List<long[]> out = new ArrayList<>();
    if (!isSynthetic()) {
      for (String t : texts) {
        out.add(tokenizer.encode(t));
      }
      return out;
    }
    SplittableRandom random = new SplittableRandom(seed * 31 + promptLen);
    for (int i = 0; i < count; i++) {
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
    return isSynthetic() ? count + " synthetic prompts of " + String.join(" or ", promptLens) + " tokens, seed " + seed
        : count + " prompts sampled from --input";
  }
}
