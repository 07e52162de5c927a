package io.sparkinfer.model;

import ai.djl.ndarray.types.DataType;
import java.util.Locale;

/**
 * The dtype weights, activations and the KV cache are held in. Norms and softmax always run in fp32. bf16
 * tensors are made through {@link io.sparkinfer.torchscript.ScriptedTensors} (DJL cannot create them), and
 * only the scripted backend computes in bf16.
 */
public enum Precision {
  FP32(DataType.FLOAT32),
  FP16(DataType.FLOAT16),
  BF16(DataType.BFLOAT16);

  private final DataType dataType;

  Precision(DataType dataType) {
    this.dataType = dataType;
  }

  public DataType dataType() {
    return dataType;
  }

  /** The lower-case name used on command lines and in tables: {@code fp32}, {@code fp16}. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code fp32}, {@code fp16} or {@code bf16} (any case). */
  public static Precision parse(String s) {
    for (Precision p : values()) {
      if (p.name().equalsIgnoreCase(s)) {
        return p;
      }
    }
    throw new IllegalArgumentException("precision '" + s + "' is not supported (supported: fp32, fp16, bf16)");
  }
}
