package io.sparkinfer.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link RopeScaling#inverseFrequencies} against a plain double-precision transcription of transformers'
 * {@code modeling_rope_utils.py}: {@code _compute_default_rope_parameters},
 * {@code _compute_linear_scaling_rope_parameters} and {@code _compute_llama3_parameters}.
 */
class RopeScalingTest {

  /** Llama-3.1's {@code rope_scaling}, with its {@code rope_theta} and head dim. */
  private static final RopeScaling LLAMA_31 = new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192);
  private static final double LLAMA_31_THETA = 500000.0;
  private static final int LLAMA_31_HEAD_DIM = 128;

  // ---- the reference: transformers' formulas, line by line, in double ----

  /** {@code inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))} */
  static double[] hfDefault(double base, int dim) {
    double[] invFreq = new double[dim / 2];
    for (int k = 0; k < invFreq.length; k++) {
      invFreq[k] = 1.0 / Math.pow(base, (2.0 * k) / dim);
    }
    return invFreq;
  }

  /** {@code inv_freq /= factor} */
  static double[] hfLinear(double base, int dim, double factor) {
    double[] invFreq = hfDefault(base, dim);
    for (int k = 0; k < invFreq.length; k++) {
      invFreq[k] /= factor;
    }
    return invFreq;
  }

  /** {@code _compute_llama3_parameters}, with its torch.where calls as conditionals. */
  static double[] hfLlama3(double base, int dim, double factor, double lowFreqFactor, double highFreqFactor,
      double oldContextLen) {
    double[] invFreq = hfDefault(base, dim);
    double lowFreqWavelen = oldContextLen / lowFreqFactor;
    double highFreqWavelen = oldContextLen / highFreqFactor;
    double[] out = new double[invFreq.length];
    for (int k = 0; k < invFreq.length; k++) {
      double wavelen = 2 * Math.PI / invFreq[k];
      double invFreqLlama = wavelen > lowFreqWavelen ? invFreq[k] / factor : invFreq[k];
      double smoothFactor = (oldContextLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      double smoothed = (1 - smoothFactor) * invFreqLlama / factor + smoothFactor * invFreqLlama;
      boolean isMediumFreq = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      out[k] = isMediumFreq ? smoothed : invFreqLlama;
    }
    return out;
  }

  /** Equal to float32 rounding: a relative error of a few float ulps (transformers computes in float32). */
  private static void assertMatches(float[] actual, double[] expected) {
    assertThat(actual).hasSize(expected.length);
    for (int k = 0; k < expected.length; k++) {
      assertThat((double) actual[k]).as("inv_freq[%d]", k).isCloseTo(expected[k], within(Math.abs(expected[k]) * 1e-6));
    }
  }

  // ---- hand-checkable values ----

  @Test
  void defaultDim4Theta10000IsOneAndOneHundredth() {
    // 10000^(0/4) = 1, 10000^(2/4) = 100
    assertThat(RopeScaling.NONE.inverseFrequencies(10000, 4)).containsExactly(1f, 0.01f);
  }

  @Test
  void linearDividesEveryFrequencyByTheFactor() {
    assertThat(new RopeScaling("linear", 4.0, 0, 0, 0).inverseFrequencies(10000, 4)).containsExactly(0.25f, 0.0025f);
  }

  @Test
  void llama3Dim4KeepsTheHighFrequencyAndSmoothsTheMediumOne() {
    // wavelengths 2*pi (< 1024/4: kept) and 200*pi = 628.3 (between 256 and 1024: medium):
    // smooth = (1024 / 628.3185 - 1) / (4 - 1) = 0.2099155, inv = 0.01 * ((1 - smooth) / 8 + smooth) = 0.00308676
    float[] inv = new RopeScaling("llama3", 8.0, 1.0, 4.0, 1024).inverseFrequencies(10000, 4);
    assertThat(inv[0]).isEqualTo(1f);
    assertThat(inv[1]).isCloseTo(0.00308676f, within(1e-8f));
  }

  @Test
  void llama3DividesFrequenciesWhoseWavelengthExceedsTheOriginalContext() {
    // wavelength of 0.01 is 628.3 > 512 / 1 = low_freq_wavelen: divided by the factor
    float[] inv = new RopeScaling("llama3", 8.0, 1.0, 4.0, 512).inverseFrequencies(10000, 4);
    assertThat(inv).containsExactly(1f, 0.00125f);
  }

  // ---- against the transcription of transformers ----

  @ParameterizedTest(name = "theta {0}, dim {1}")
  @CsvSource({"10000, 4", "10000, 64", "10000, 128", "500000, 128", "1000000, 128", "1000000, 96", "10000, 80"})
  void defaultMatchesTransformers(double theta, int dim) {
    assertMatches(RopeScaling.NONE.inverseFrequencies(theta, dim), hfDefault(theta, dim));
  }

  @ParameterizedTest(name = "factor {0}")
  @CsvSource({"2.0", "4.0", "0.5", "3.7"})
  void linearMatchesTransformers(double factor) {
    assertMatches(new RopeScaling("linear", factor, 0, 0, 0).inverseFrequencies(10000, 64), hfLinear(10000, 64, factor));
  }

  @Test
  void llama31MatchesTransformers() {
    float[] inv = LLAMA_31.inverseFrequencies(LLAMA_31_THETA, LLAMA_31_HEAD_DIM);
    assertMatches(inv, hfLlama3(LLAMA_31_THETA, LLAMA_31_HEAD_DIM, 8.0, 1.0, 4.0, 8192));
  }

  @Test
  void llama31KeepsTwentyNineHighFrequenciesSmoothsSixAndDividesTheRestByEight() {
    // wavelength 2*pi*500000^(k/64) crosses 8192/4 = 2048 after k = 28 and 8192/1 after k = 34
    float[] scaled = LLAMA_31.inverseFrequencies(LLAMA_31_THETA, LLAMA_31_HEAD_DIM);
    float[] plain = RopeScaling.NONE.inverseFrequencies(LLAMA_31_THETA, LLAMA_31_HEAD_DIM);
    assertThat(scaled).hasSize(64);
    for (int k = 0; k < 64; k++) {
      double ratio = (double) plain[k] / scaled[k];
      if (k <= 28) {
        assertThat(scaled[k]).as("high frequency %d", k).isEqualTo(plain[k]);
      } else if (k <= 34) {
        assertThat(ratio).as("medium frequency %d", k).isStrictlyBetween(1.0, 8.0);
      } else {
        assertThat(ratio).as("low frequency %d", k).isCloseTo(8.0, within(1e-6));
      }
    }
  }

  @Test
  void llama3WithOtherFactorsMatchesTransformers() {
    // Llama-3.2's factor 32, and a narrow band
    assertMatches(new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192).inverseFrequencies(500000, 64),
        hfLlama3(500000, 64, 32.0, 1.0, 4.0, 8192));
    assertMatches(new RopeScaling("llama3", 4.0, 2.0, 3.0, 4096).inverseFrequencies(10000, 128),
        hfLlama3(10000, 128, 4.0, 2.0, 3.0, 4096));
  }

  // ---- the record ----

  @Test
  void typeDefaultsToDefaultAndIsCaseInsensitive() {
    assertThat(new RopeScaling(null, 1.0, 0, 0, 0).type()).isEqualTo("default");
    assertThat(new RopeScaling("LLAMA3", 8.0, 1.0, 4.0, 8192).type()).isEqualTo("llama3");
    assertThat(RopeScaling.NONE.type()).isEqualTo("default");
  }

  @Test
  void unsupportedTypeIsRejectedListingTheSupportedOnes() {
    assertThatThrownBy(() -> new RopeScaling("yarn", 4.0, 0, 0, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rope type 'yarn' is not supported (supported: default, linear, llama3)");
  }

  @Test
  void linearNeedsAPositiveFactor() {
    assertThatThrownBy(() -> new RopeScaling("linear", 0.0, 0, 0, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rope_scaling factor must be > 0 for linear scaling, got 0.0");
  }

  @Test
  void llama3NeedsOrderedFactorsAndAnOriginalContext() {
    assertThatThrownBy(() -> new RopeScaling("llama3", 8.0, 4.0, 4.0, 8192))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("got factor 8.0, low 4.0, high 4.0, original 8192");
    assertThatThrownBy(() -> new RopeScaling("llama3", 8.0, 1.0, 4.0, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("original_max_position_embeddings > 0");
    assertThatThrownBy(() -> new RopeScaling("llama3", Double.NaN, 1.0, 4.0, 8192))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("got factor NaN");
  }
}
