package io.sparkinfer.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class TokenSamplerTest {

  @Test
  void descendingOrderMatchesASortByValueThenIndex() {
    Random r = new Random(1);
    float[] logits = new float[2000];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = r.nextInt(5) == 0 ? Math.round(r.nextGaussian() * 3) : (float) (r.nextGaussian() * 20);
    }
    logits[3] = -0f;
    logits[4] = 0f;
    logits[5] = Float.NEGATIVE_INFINITY;
    logits[6] = Float.POSITIVE_INFINITY;
    Integer[] expected = IntStream.range(0, logits.length).boxed().toArray(Integer[]::new);
    Arrays.sort(expected, Comparator.<Integer>comparingDouble(i -> -(logits[i] == 0f ? 0f : logits[i]))
        .thenComparingInt(i -> i));
    assertThat(TokenSampler.descending(logits)).containsExactly(Arrays.stream(expected).mapToInt(i -> i).toArray());
  }

  @Test
  void topKSelectionEqualsTheSortedPrefixWithTies() {
    Random r = new Random(3);
    for (int trial = 0; trial < 50; trial++) {
      float[] logits = new float[1 + r.nextInt(3000)];
      for (int i = 0; i < logits.length; i++) {
        logits[i] = r.nextInt(4) == 0 ? r.nextInt(5) : (float) r.nextGaussian();
      }
      int k = 1 + r.nextInt(logits.length);
      int[] sorted = TokenSampler.descending(logits);
      int[] top = TokenSampler.topKDescending(logits, k);
      int expected = k;
      while (expected < logits.length && logits[sorted[expected]] == logits[sorted[k - 1]]) {
        expected++;
      }
      assertThat(top).as("k=%d of %d", k, logits.length).containsExactly(Arrays.copyOf(sorted, expected));
    }
  }

  @Test
  void nucleusCandidatesHoldEveryTokenOfTheNucleus() {
    Random r = new Random(4);
    float[] logits = new float[5000];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) (r.nextGaussian() * 3);
    }
    float max = Float.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    int[] sorted = TokenSampler.descending(logits);
    double total = 0;
    for (float l : logits) {
      total += Math.exp(l - max);
    }
    for (double p : new double[] {0.5, 0.9, 0.99}) {
      int[] candidates = TokenSampler.nucleusCandidates(logits, max, p);
      double above = 0;
      int nucleus = 0;
      while (above < p * total) {
        above += Math.exp(logits[sorted[nucleus++]] - max);
      }
      assertThat(candidates.length).as("p=%s", p).isGreaterThanOrEqualTo(nucleus).isLessThan(logits.length);
      assertThat(Arrays.copyOf(candidates, nucleus)).containsExactly(Arrays.copyOf(sorted, nucleus));
    }
  }

  @Test
  void samplingFollowsTheSoftmaxDistribution() {
    float[] logits = {0f, (float) Math.log(3), Float.NEGATIVE_INFINITY}; // probabilities 1/4, 3/4, 0
    TokenSampler sampler = new TokenSampler(new SamplingParams(1.0, 0, 1.0, 5));
    int[] counts = new int[3];
    for (int i = 0; i < 20000; i++) {
      counts[sampler.sample(logits.clone())]++;
    }
    assertThat(counts[2]).isZero();
    assertThat(counts[1] / 20000.0).isBetween(0.73, 0.77);
  }

  @Test
  void topKKeepsOnlyTheKLargestAndTheirTies() {
    float[] logits = {5f, 4f, 4f, 1f, 0f};
    TokenSampler sampler = new TokenSampler(new SamplingParams(5.0, 2, 1.0, 9));
    boolean[] seen = new boolean[5];
    for (int i = 0; i < 3000; i++) {
      seen[sampler.sample(logits.clone())] = true;
    }
    assertThat(seen).containsExactly(true, true, true, false, false);
  }

  @Test
  void topPKeepsTheSmallestSetReachingP() {
    // probabilities ~ 0.64, 0.24, 0.09, 0.03: p = 0.8 keeps the first two
    float[] logits = {3f, 2f, 1f, 0f};
    TokenSampler sampler = new TokenSampler(new SamplingParams(1.0, 0, 0.8, 13));
    boolean[] seen = new boolean[4];
    for (int i = 0; i < 3000; i++) {
      seen[sampler.sample(logits.clone())] = true;
    }
    assertThat(seen).containsExactly(true, true, false, false);
  }

  @Test
  void sameSeedSameDraws() {
    float[] logits = new float[100];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) Math.sin(i);
    }
    TokenSampler a = new TokenSampler(new SamplingParams(1.0, 0, 1.0, 77));
    TokenSampler b = new TokenSampler(new SamplingParams(1.0, 0, 1.0, 77));
    for (int i = 0; i < 50; i++) {
      assertThat(a.sample(logits.clone())).isEqualTo(b.sample(logits.clone()));
    }
  }

  @Test
  void invalidSettingsAreRejectedWithTheValue() {
    assertThatThrownBy(() -> new SamplingParams(-1, 0, 1, 0)).hasMessageContaining("temperature must be >= 0, got -1");
    assertThatThrownBy(() -> new SamplingParams(1, -2, 1, 0)).hasMessageContaining("top-k must be >= 0, got -2");
    assertThatThrownBy(() -> new SamplingParams(1, 0, 0, 0)).hasMessageContaining("top-p must be in (0, 1], got 0");
    assertThatThrownBy(() -> new SamplingParams(1, 0, 1.5, 0)).hasMessageContaining("got 1.5");
    assertThatThrownBy(() -> GenerationRequest.greedy("x", "p", 0)).hasMessageContaining("max new tokens must be > 0");
  }
}
