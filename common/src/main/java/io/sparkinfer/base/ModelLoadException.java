package io.sparkinfer.base;

/** A checkpoint directory could not be loaded: a file is missing, unreadable or inconsistent. */
public class ModelLoadException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ModelLoadException(String message) {
    super(message);
  }

  public ModelLoadException(String message, Throwable cause) {
    super(message, cause);
  }
}
