package io.sparkinfer.backend.scripted;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.torchscript.ScriptedTensors;

/**
 * Rows of new tokens for one step, row {@code r} starting at position {@code starts[r]}, as the two layouts a
 * backend takes: a row each, right-padded to the longest ({@link #padded}), or one packed line ({@link #packed}).
 * For tests that run the same step both ways.
 */
record StepRows(long[][] tokens, int[] starts) {

  int rows() {
    return tokens.length;
  }

  /**
   * {@link io.sparkinfer.testing.PrefilledBatch#PROMPTS} tokenized, as the steps of a prefill comparison take them: all of each prompt from
   * position 0 ({@code fresh}); row r's first r + 2 tokens from position 0 ({@code head}), then the rest of it from
   * position r + 2 ({@code after}); a cache row holds the longest prompt and 4 slots more ({@code capacity}).
   */
  record Split(StepRows fresh, StepRows head, StepRows after, int capacity) {

    static Split of(io.sparkinfer.tokenizer.TextTokenizer tokenizer) {
      long[][] prompts = io.sparkinfer.testing.PrefilledBatch.PROMPTS.stream().map(tokenizer::encode).toArray(long[][]::new);
      long[][] heads = new long[prompts.length][];
      long[][] tails = new long[prompts.length][];
      int[] starts = new int[prompts.length];
      int capacity = 0;
      for (int r = 0; r < prompts.length; r++) {
        starts[r] = r + 2;
        heads[r] = java.util.Arrays.copyOf(prompts[r], starts[r]);
        tails[r] = java.util.Arrays.copyOfRange(prompts[r], starts[r], prompts[r].length);
        capacity = Math.max(capacity, prompts[r].length + 4);
      }
      return new Split(new StepRows(prompts, new int[prompts.length]), new StepRows(heads, new int[prompts.length]),
          new StepRows(tails, starts), capacity);
    }

    int rows() {
      return fresh.rows();
    }
  }

  /** 1 + the largest position written: the slots attention reads. */
  int keyLength() {
    int k = 0;
    for (int r = 0; r < rows(); r++) {
      k = Math.max(k, starts[r] + tokens[r].length);
    }
    return k;
  }

  /** (R, S) right-padded with token 0 at the positions after each row's last token. */
  ForwardBatch padded(NDManager m) {
    int width = 0;
    for (long[] t : tokens) {
      width = Math.max(width, t.length);
    }
    long[] ids = new long[rows() * width];
    long[] positions = new long[rows() * width];
    long[] last = new long[rows()];
    for (int r = 0; r < rows(); r++) {
      System.arraycopy(tokens[r], 0, ids, r * width, tokens[r].length);
      for (int j = 0; j < width; j++) {
        positions[r * width + j] = starts[r] + j;
      }
      last[r] = tokens[r].length - 1;
    }
    Shape shape = new Shape(rows(), width); // (R, S)
    return new ForwardBatch(m.create(ids, shape), m.create(positions, shape), m.create(last), keyLength());
  }

  /** (1, T): every row's tokens back to back, lastIndex the index of each row's last token in the line. */
  ForwardBatch packed(NDManager m) {
    return packed(m, null);
  }

  /** {@link #packed} with row r written to and read from cache row {@code cacheRows[r]} (null: row r). */
  ForwardBatch packed(NDManager m, long[] cacheRows) {
    int total = 0;
    for (long[] t : tokens) {
      total += t.length;
    }
    long[] ids = new long[total];
    long[] positions = new long[total];
    long[] last = new long[rows()];
    int at = 0;
    for (int r = 0; r < rows(); r++) {
      System.arraycopy(tokens[r], 0, ids, at, tokens[r].length);
      for (int j = 0; j < tokens[r].length; j++) {
        positions[at + j] = starts[r] + j;
      }
      at += tokens[r].length;
      last[r] = at - 1;
    }
    Shape shape = new Shape(1, total); // (1, T)
    boolean fresh = java.util.Arrays.stream(starts).allMatch(start -> start == 0); // every row from position 0
    return new ForwardBatch(m.create(ids, shape), m.create(positions, shape), m.create(last), keyLength(),
        cacheRows == null ? null : m.create(cacheRows), fresh);
  }

  /** Cache rows 1, 3, 5, ...: one for each of these rows, in increasing order, not neighbours, none of them row 0. */
  long[] spreadRows() {
    long[] out = new long[rows()];
    for (int r = 0; r < out.length; r++) {
      out[r] = 2L * r + 1;
    }
    return out;
  }

  /**
   * The largest difference between two caches' keys and values over the slots these rows and what came before
   * them wrote (row r's slots 0 .. starts[r] + its tokens).
   */
  float maxWrittenSlotDiff(KvCache a, KvCache b) {
    return maxWrittenSlotDiff(a, b, null);
  }

  /** {@link #maxWrittenSlotDiff} of row r of {@code a} against row {@code bRows[r]} of {@code b} (null: row r). */
  float maxWrittenSlotDiff(KvCache a, KvCache b, long[] bRows) {
    float max = 0;
    NDArray[][] pairs = {a.keyArrays(), b.keyArrays(), a.valueArrays(), b.valueArrays()};
    for (int kind = 0; kind < 4; kind += 2) {
      for (int l = 0; l < pairs[kind].length; l++) {
        for (int r = 0; r < rows(); r++) {
          int written = starts[r] + tokens[r].length;
          // (B, C, K, D) -> (written, K, D) of row r
          NDArray x = ScriptedTensors.cast(pairs[kind][l].get(r).get("0:" + written), DataType.FLOAT32);
          long rowOfB = bRows == null ? r : bRows[r];
          NDArray y = ScriptedTensors.cast(pairs[kind + 1][l].get(rowOfB).get("0:" + written), DataType.FLOAT32);
          max = Math.max(max, x.sub(y).abs().max().getFloat()); // float32 copies: DJL cannot cast bf16 itself
        }
      }
    }
    return max;
  }

  /** The largest magnitude of a cache's keys and values over the slots these rows and what came before them wrote. */
  float maxWrittenSlotAbs(KvCache a) {
    float max = 0;
    for (NDArray[] layers : new NDArray[][] {a.keyArrays(), a.valueArrays()}) {
      for (NDArray layer : layers) {
        for (int r = 0; r < rows(); r++) {
          int written = starts[r] + tokens[r].length;
          NDArray x = ScriptedTensors.cast(layer.get(r).get("0:" + written), DataType.FLOAT32); // (written, K, D)
          max = Math.max(max, x.abs().max().getFloat());
        }
      }
    }
    return max;
  }
}
