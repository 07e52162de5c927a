package io.sparkinfer.base;

import java.util.Locale;

/**
 * Whether a failure is a device, or the JVM, running out of memory: what the generator's back-off, the sweep's trial
 * status and the fused steps' fallback each ask. libtorch reports CUDA's as an engine exception whose message says
 * "out of memory"; the JVM's is an {@link OutOfMemoryError}.
 */
public final class OutOfMemory {

  private OutOfMemory() {}

  /** Whether {@code e} or one of its causes is running out of memory. */
  public static boolean causedBy(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof OutOfMemoryError || says(t.getMessage())) {
        return true;
      }
    }
    return false;
  }

  /** Whether an error message says memory ran out. */
  public static boolean says(String message) {
    return message != null && message.toLowerCase(Locale.ROOT).contains("out of memory");
  }
}
