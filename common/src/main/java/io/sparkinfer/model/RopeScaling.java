package io.sparkinfer.model;

import java.util.Locale;

/**
 * How rotary frequencies are computed, as Hugging Face's {@code rope_scaling} / {@code rope_parameters}
 * describes them. Supported types: {@code default}, {@code linear} and {@code llama3}.
 *
 * @param type the rope type
 * @param factor the scaling factor (linear, llama3)
 * @param lowFreqFactor llama3's {@code low_freq_factor}
 * @param highFreqFactor llama3's {@code high_freq_factor}
 * @param originalMaxPositionEmbeddings llama3's {@code original_max_position_embeddings}
 */
public record RopeScaling(
    String type, double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings) {

  /** The rope types this engine computes. */
  public static final String SUPPORTED = "default, linear, llama3";

  public static final RopeScaling NONE = new RopeScaling("default", 1.0, 0, 0, 0);

  public RopeScaling {
    type = type == null ? "default" : type.toLowerCase(Locale.ROOT);
    switch (type) {
      case "default" -> { }
      case "linear" -> {
        if (!(factor > 0)) {
          throw new IllegalArgumentException("rope_scaling factor must be > 0 for linear scaling, got " + factor);
        }
      }
      case "llama3" -> {
        if (!(factor > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)
            || originalMaxPositionEmbeddings <= 0) {
          throw new IllegalArgumentException(String.format(Locale.ROOT,
              "llama3 rope_scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                  + "original_max_position_embeddings > 0; got factor %s, low %s, high %s, original %d",
              factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings));
        }
      }
      default -> throw new IllegalArgumentException(
          "rope type '" + type + "' is not supported (supported: " + SUPPORTED + ")");
    }
  }

  /**
   * Computes the inverse frequencies for one head, as Hugging Face's rope init functions do (in float32).
   *
   * @param theta the rope base
   * @param rotaryDim the number of rotated dimensions (the head dim)
   * @return {@code rotaryDim / 2} inverse frequencies
   */
  public float[] inverseFrequencies(double theta, int rotaryDim) {
    float[] invFreq = new float[rotaryDim / 2];
    for (int i = 0; i < invFreq.length; i++) {
      float exponent = (float) (2 * i) / rotaryDim;
      invFreq[i] = (float) (1.0 / Math.pow((float) theta, exponent));
    }
    switch (type) {
      case "linear" -> {
        for (int i = 0; i < invFreq.length; i++) {
          invFreq[i] = (float) (invFreq[i] / factor);
        }
      }
      case "llama3" -> applyLlama3(invFreq);
      default -> { }
    }
    return invFreq;
  }

  private void applyLlama3(float[] invFreq) {
    double lowFreqWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
    double highFreqWavelen = originalMaxPositionEmbeddings / highFreqFactor;
    for (int i = 0; i < invFreq.length; i++) {
      double wavelen = 2 * Math.PI / invFreq[i];
      double scaled = wavelen > lowFreqWavelen ? invFreq[i] / factor : invFreq[i];
      boolean medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      if (medium) {
        double smooth = (originalMaxPositionEmbeddings / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
      }
      invFreq[i] = (float) scaled;
    }
  }
}
