package io.sparkinfer.backend;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What backends keep for a {@link BatchCache}'s life ({@link BatchCache#attachment}): one per type, made on first
 * use, closed with the cache in the order they were made.
 */
public final class CacheAttachments implements AutoCloseable {

  private final Map<Class<?>, AutoCloseable> attachments = new LinkedHashMap<>();

  /** The attachment of {@code type}, made by {@code create} on first use. */
  public <T extends AutoCloseable> T get(Class<T> type, Supplier<T> create) {
    AutoCloseable a = attachments.get(type);
    if (a == null) {
      a = create.get();
      attachments.put(type, a);
    }
    return type.cast(a);
  }

  /** Closes every attachment, all of them even when one fails; throws the first failure. */
  @Override
  public void close() {
    RuntimeException failure = null;
    for (AutoCloseable a : attachments.values()) {
      try {
        a.close();
      } catch (Exception e) {
        failure = failure != null ? failure : new IllegalStateException("cannot close a cache attachment", e);
      }
    }
    attachments.clear();
    if (failure != null) {
      throw failure;
    }
  }
}
