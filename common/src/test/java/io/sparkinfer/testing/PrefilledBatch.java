package io.sparkinfer.testing;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.engine.LlmEngine;
import java.util.List;

/**
 * Three code prompts of different lengths prefilled into a fresh KV cache, ready for decode steps: each row
 * decodes its last prompt token again at its own next position. For GPU tests that compare two ways of
 * running the same decode step on one cache.
 *
 * @param nextIds (B) each row's next input token
 * @param nextPositions (B) each row's next position
 * @param longest the longest prompt: decode steps read at least longest + 1 slots
 */
public record PrefilledBatch(KvCache cache, long[] nextIds, long[] nextPositions, int longest) {

  public static final List<String> PROMPTS = List.of("def fibonacci(n):\n    if n < 2:\n        return n", "class Stack:",
      "import os\nimport sys\n\ndef main(argv):\n    for arg in argv[1:]:\n        print(arg)");

  /** Prefills {@link #PROMPTS} with {@code backend} into a cache with {@code extraSlots} free slots per row. */
  public static PrefilledBatch of(LlmEngine engine, CausalLmBackend backend, NDManager m, int extraSlots) {
    int rows = PROMPTS.size();
    long[][] ids = new long[rows][];
    int longest = 0;
    for (int i = 0; i < rows; i++) {
      ids[i] = engine.tokenizer().encode(PROMPTS.get(i));
      longest = Math.max(longest, ids[i].length);
    }
    long[] flatIds = new long[rows * longest]; // (B, S) padded prompts
    long[] flatPositions = new long[rows * longest];
    long[] last = new long[rows];
    long[] nextIds = new long[rows];
    long[] nextPositions = new long[rows];
    for (int i = 0; i < rows; i++) {
      System.arraycopy(ids[i], 0, flatIds, i * longest, ids[i].length);
      for (int j = 0; j < longest; j++) {
        flatPositions[i * longest + j] = j;
      }
      last[i] = ids[i].length - 1;
      nextIds[i] = ids[i][ids[i].length - 1];
      nextPositions[i] = ids[i].length;
    }
    KvCache cache = KvCache.of(backend.allocateCache(m, rows, longest + extraSlots)); // the backend's (float8 or not)
    backend.forward(m, new ForwardBatch(m.create(flatIds, new Shape(rows, longest)),
        m.create(flatPositions, new Shape(rows, longest)), m.create(last), longest), cache);
    return new PrefilledBatch(cache, nextIds, nextPositions, longest);
  }

  /** The decode step of the current next ids and positions over the fixed tensors of {@code m}. */
  public ForwardBatch decodeBatch(NDManager m, int keyLength) {
    int rows = nextIds.length;
    return new ForwardBatch(m.create(nextIds, new Shape(rows, 1)), m.create(nextPositions, new Shape(rows, 1)),
        m.create(new long[rows]), keyLength);
  }
}
