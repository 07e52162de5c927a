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

  /**
   * Draws a token id from a row of float32 logits (V). The array is used as scratch space.
   *
   * <p>Plain temperature sampling is one pass over the vocabulary. Top-k selects its k candidates without
   * sorting the vocabulary; top-p alone sorts only the tokens that can be in the nucleus: a token of
   * probability q has at least 1 - V*q of the mass above it, so with q <= (1 - p) / V it is never in it.
   */
  public int sample(float[] logits) {
    int vocab = logits.length;
    float invTemperature = (float) (1.0 / params.temperature());
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      logits[i] *= invTemperature;
      max = Math.max(max, logits[i]);
    }
    boolean topK = params.topK() > 0 && params.topK() < vocab;
    boolean topP = params.topP() < 1.0;
    if (!topK && !topP) {
      double sum = 0;
      for (int i = 0; i < vocab; i++) {
        sum += Math.exp(logits[i] - max);
      }
      double u = random.nextDouble() * sum;
      double acc = 0;
      for (int i = 0; i < vocab; i++) {
        acc += Math.exp(logits[i] - max);
        if (u < acc) {
          return i;
        }
      }
      return argMax(logits);
    }
    int[] order = topK ? topKDescending(logits, params.topK()) : nucleusCandidates(logits, max, params.topP());
    int keep = order.length;
    double[] probs = new double[keep];
    double sum = 0;
    for (int i = 0; i < keep; i++) {
      probs[i] = Math.exp(logits[order[i]] - max);
      sum += probs[i];
    }
    if (topP) {
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

  /** The k largest logits' indices, largest first, plus any tied with the k-th (as transformers keeps them). */
  static int[] topKDescending(float[] logits, int k) {
    long[] packed = pack(logits, null);
    select(packed, k - 1);
    long kth = packed[k - 1] >>> 32; // the value part of the key
    int count = k;
    for (int i = k; i < packed.length; i++) {
      if (packed[i] >>> 32 == kth) {
        long t = packed[count];
        packed[count++] = packed[i];
        packed[i] = t;
      }
    }
    long[] top = Arrays.copyOf(packed, count);
    Arrays.sort(top);
    return unpack(top);
  }

  /** Indices of the tokens that can be in a top-p nucleus, largest logit first. */
  static int[] nucleusCandidates(float[] logits, float max, double topP) {
    double sum = 0;
    for (float l : logits) {
      sum += Math.exp(l - max);
    }
    double bound = (1 - topP) / logits.length * sum; // exp(l - max) at or below it: never in the nucleus
    boolean[] keep = new boolean[logits.length];
    for (int i = 0; i < logits.length; i++) {
      keep[i] = Math.exp(logits[i] - max) > bound;
    }
    long[] packed = pack(logits, keep);
    Arrays.sort(packed);
    return unpack(packed);
  }

  private static int argMax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }

  /** Sort keys: ascending order of the longs is descending logit, then ascending index. */
  private static long[] pack(float[] logits, boolean[] keep) {
    int n = 0;
    long[] packed = new long[logits.length];
    for (int i = 0; i < logits.length; i++) {
      if (keep == null || keep[i]) {
        packed[n++] = (descendingKey(logits[i]) << 32) ^ Long.MIN_VALUE | i; // sign flip: unsigned order as signed
      }
    }
    return n == packed.length ? packed : Arrays.copyOf(packed, n);
  }

  private static int[] unpack(long[] packed) {
    int[] order = new int[packed.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = (int) packed[i];
    }
    return order;
  }

  /** Rearranges {@code a} so that {@code a[n]} holds the value a sort would put there, smaller ones before it. */
  static void select(long[] a, int n) {
    int lo = 0;
    int hi = a.length - 1;
    SplittableRandom pivots = new SplittableRandom(a.length);
    while (lo < hi) {
      long pivot = a[lo + pivots.nextInt(hi - lo + 1)];
      int i = lo;
      int j = hi;
      while (i <= j) {
        while (a[i] < pivot) {
          i++;
        }
        while (a[j] > pivot) {
          j--;
        }
        if (i <= j) {
          long t = a[i];
          a[i++] = a[j];
          a[j--] = t;
        }
      }
      if (n <= j) {
        hi = j;
      } else if (n >= i) {
        lo = i;
      } else {
        return;
      }
    }
  }

  /** Token indices sorted by logit, largest first; ties keep the lower index first. */
  static int[] descending(float[] logits) {
    long[] packed = pack(logits, null);
    Arrays.sort(packed);
    return unpack(packed);
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
