package io.sparkinfer.generate;

import java.io.Serializable;

/**
 * How the next token is chosen, applied in Hugging Face's order: temperature, then top-k, then top-p.
 *
 * @param temperature 0 for greedy decoding; otherwise logits are divided by it before sampling
 * @param topK keep only the k most likely tokens (0: all)
 * @param topP keep the smallest set of tokens whose probability reaches p (1: all)
 * @param seed the seed of this request's own random stream: the same seed gives the same tokens, whatever
 *     else runs in the batch
 */
public record SamplingParams(double temperature, int topK, double topP, long seed) implements Serializable {

  public static final SamplingParams GREEDY = new SamplingParams(0, 0, 1.0, 0);

  public SamplingParams {
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
    }
  }

  /**
   * The seed of a request that names none: derived from the run's seed and the request id, so a request
   * samples the same tokens whichever tool, batch or partition runs it.
   */
  public static long requestSeed(long runSeed, String id) {
    return runSeed * 0x9E3779B97F4A7C15L + (id == null ? 0 : id.hashCode());
  }


  /** Greedy: the most likely token every step (temperature 0, or top-k 1). */
  public boolean isGreedy() {
    return temperature == 0 || topK == 1;
  }
}
