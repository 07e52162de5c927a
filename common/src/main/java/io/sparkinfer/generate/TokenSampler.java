package io.sparkinfer.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Samples the next token of one sequence from its logits, with the sequence's own seeded random stream.
 * Applies temperature, top-k and top-p in Hugging Face's order.
 */
public final class TokenSampler {

  private final SamplingParams params;
  private final SplittableRandom random;

  public TokenSampler(SamplingParams params) {
    this.params = params;
    this.random = new SplittableRandom(params.seed());
  }

  /** Draws a token id from a row of float32 logits (V). The array is used as scratch space. */
  public int sample(float[] logits) {
    int vocab = logits.length;
    float invTemperature = (float) (1.0 / params.temperature());
    for (int i = 0; i < vocab; i++) {
      logits[i] *= invTemperature;
    }
    // Candidates sorted by logit, descending; top-k keeps ties with the k-th value, as transformers does.
    int[] order = descending(logits);
    int keep = vocab;
    if (params.topK() > 0 && params.topK() < vocab) {
      float kth = logits[order[params.topK() - 1]];
      keep = params.topK();
      while (keep < vocab && logits[order[keep]] == kth) {
        keep++;
      }
    }
    float max = logits[order[0]];
    double[] probs = new double[keep];
    double sum = 0;
    for (int i = 0; i < keep; i++) {
      probs[i] = Math.exp(logits[order[i]] - max);
      sum += probs[i];
    }
    if (params.topP() < 1.0) {
      double cumulative = 0;
      int kept = 0;
      while (kept < keep && cumulative < params.topP() * sum) {
        cumulative += probs[kept++];
      }
      keep = Math.max(kept, 1);
      sum = 0;
      for (int i = 0; i < keep; i++) {
        sum += probs[i];
      }
    }
    double u = random.nextDouble() * sum;
    double acc = 0;
    for (int i = 0; i < keep; i++) {
      acc += probs[i];
      if (u < acc) {
        return order[i];
      }
    }
    return order[keep - 1];
  }

  /** Token indices sorted by logit, largest first; ties keep the lower index first. */
  static int[] descending(float[] logits) {
    long[] packed = new long[logits.length];
    for (int i = 0; i < logits.length; i++) {
      packed[i] = (descendingKey(logits[i]) << 32) ^ Long.MIN_VALUE | i; // sign flip: unsigned order as signed
    }
    Arrays.sort(packed);
    int[] order = new int[logits.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = (int) packed[i];
    }
    return order;
  }

  /** An unsigned 32-bit key that grows as the float shrinks (NaN sorts last). */
  private static long descendingKey(float value) {
    if (Float.isNaN(value)) {
      return 0xFFFFFFFFL;
    }
    int bits = Float.floatToIntBits(value == 0f ? 0f : value); // -0 == 0
    int ordered = bits >= 0 ? bits : bits ^ 0x7fffffff; // monotonic in the float's value, signed
    return (long) Integer.MAX_VALUE - ordered; // 0 .. 2^32 - 1, largest float first
  }
}
