package io.sparkinfer.backend;

import java.util.function.Supplier;

/**
 * The keys and values of every layer for a batch of sequences, as the generation loop holds them: allocated by
 * the backend ({@link CausalLmBackend#allocateCache}) for the batch's whole life, one row per sequence, rows
 * filled by prefills and copied into place as sequences join. A model on one device keeps a {@link KvCache}; a
 * sharded one a cache per shard.
 */
public interface BatchCache extends AutoCloseable {

  int batchSize();

  /** Slots per row: the longest sequence the cache holds. */
  int capacity();

  /**
   * Copies the first {@code length} slots of every row of {@code src} (a cache of the same backend) into rows
   * {@code dstRows} of this one: sequences prefilled on their own join a running batch. A one-row {@code src} is
   * copied into each of the rows: a prefix that prompts share, computed once.
   */
  void copyRowsFrom(BatchCache src, long[] dstRows, int length);

  /**
   * What a backend keeps for this cache's life (captured decode graphs that point at its tensors): the
   * attachment of {@code type}, made by {@code create} on first use and closed with the cache.
   */
  <T extends AutoCloseable> T attachment(Class<T> type, Supplier<T> create);

  @Override
  void close();
}
