package io.sparkinfer.generate;

import java.util.Locale;

/** Why a sequence ended: an eos token or stop string, the token limit, or an error (no generation). */
public enum FinishReason {
  STOP, LENGTH, ERROR;

  /** The lower-case form written to output tables: {@code stop}, {@code length}, {@code error}. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
