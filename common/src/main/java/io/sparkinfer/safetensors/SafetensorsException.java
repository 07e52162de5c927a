package io.sparkinfer.safetensors;

import io.sparkinfer.base.ModelLoadException;

/** A safetensors file is malformed: its header is truncated, oversized, not JSON, or lies about its data. */
public class SafetensorsException extends ModelLoadException {
  private static final long serialVersionUID = 1L;

  public SafetensorsException(String message) {
    super(message);
  }

  public SafetensorsException(String message, Throwable cause) {
    super(message, cause);
  }
}
