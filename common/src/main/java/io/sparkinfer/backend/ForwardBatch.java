package io.sparkinfer.backend;

import ai.djl.ndarray.NDArray;

/**
 * One model step over every row of a {@link KvCache}: a prefill (S prompt tokens per row, right-padded)
 * or a decode (S = 1).
 *
 * <p>Token {@code s} of row {@code b} sits at position {@code positions[b, s]}, is written to that cache
 * slot, and attends to the row's slots {@code 0..positions[b, s]}. Padding after a row's last real token
 * is harmless: no real token attends to a later slot, and decode steps overwrite those slots.
 *
 * <p>A packed step ({@link CausalLmBackend#runsPacked}) is one line (B = 1) of R rows' tokens back to back, without
 * padding: {@code lastIndex} (R) gives each row's last token in the line, row r's tokens follow row r-1's, and the
 * result has R rows. With one row, both layouts read the same.
 *
 * <p>Row r (of B, or of R when packed) is written to and reads from cache row {@code cacheRows[r]}, or row r where
 * {@code cacheRows} is null: a prefill can write straight into the rows of a running batch (backends that
 * {@link CausalLmBackend#runsPacked run packed}; others take null only).
 *
 * @param inputIds (B, S) int64 token ids
 * @param positions (B, S) int64 positions (= cache slots)
 * @param lastIndex (B) int64: index in S of each row's last real token, whose logits are returned; packed: (R)
 * @param keyLength 1 + the largest position in the batch: how many cache slots attention reads
 * @param cacheRows (B), packed (R): int64, the cache row of each row, in increasing order; null: row r
 * @param fresh whether every row's tokens start at position 0, so a row attends to no slot the step does not write
 *     (a float8 cache's prefill then attends over the line's own keys and values, not the cache's); false when not
 *     known
 */
public record ForwardBatch(NDArray inputIds, NDArray positions, NDArray lastIndex, int keyLength, NDArray cacheRows,
    boolean fresh) {

  /** A step whose row r is cache row r. */
  public ForwardBatch(NDArray inputIds, NDArray positions, NDArray lastIndex, int keyLength) {
    this(inputIds, positions, lastIndex, keyLength, null);
  }

  /** A step not known to be {@link #fresh}. */
  public ForwardBatch(NDArray inputIds, NDArray positions, NDArray lastIndex, int keyLength, NDArray cacheRows) {
    this(inputIds, positions, lastIndex, keyLength, cacheRows, false);
  }

  /** For backends whose step rows are always the cache's rows 0 .. B-1: refuses a step that names other rows. */
  public void requireRowsInOrder(String backend) {
    if (cacheRows != null) {
      throw new IllegalArgumentException("the " + backend + " backend writes row r of a step to cache row r; "
          + "cache rows are for backends that run packed");
    }
  }
}
