package io.sparkinfer.jobs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.apache.spark.sql.Row;

/**
 * A prompt's token ids as the planned rows and the requests carry them ({@link Tables#PROMPT_TOKEN_IDS}): planning
 * tokenizes each prompt once, and the inference tasks generate from its ids. The column is binary, each id 4 bytes
 * (little-endian), as many bytes as an array of ints but one value to Spark: an array went through Spark's row
 * conversion an element at a time, boxed, on the planning task's way into the cache and the inference task's way out.
 * On an H200's host, with the array, 0.55 s passed between a planning task's two blocks of 256 prompts, the reading of
 * the second one's rows (0.18 s for the first) included (bench/results/2026-12-03-e2e-NVIDIA-H200-run30's prof-1).
 * Bytes were measured there only together with the other changes of 2026-12-03's evening: the planning job took
 * 1.22-1.36 s against 1.24-1.61 s (bench/results/2026-12-03-e2e-NVIDIA-H200-run31).
 */
final class PromptTokenIds {

  private PromptTokenIds() {}

  /** {@code ids} as a row's value: 4 bytes an id, little-endian. */
  static byte[] toColumn(long[] ids) {
    ByteBuffer bytes = ByteBuffer.allocate(Math.multiplyExact(ids.length, Integer.BYTES))
        .order(ByteOrder.LITTLE_ENDIAN);
    for (long id : ids) {
      bytes.putInt(Math.toIntExact(id)); // a vocabulary's ids fit an int
    }
    return bytes.array();
  }

  /** The ids in field {@code i} of {@code row}; null when the field is null. */
  static long[] fromColumn(Row row, int i) {
    if (row.isNullAt(i)) {
      return null;
    }
    byte[] packed = (byte[]) row.get(i);
    if (packed.length % Integer.BYTES != 0) {
      throw new IllegalArgumentException("token ids of " + packed.length + " bytes: not a whole number of 4-byte ids");
    }
    ByteBuffer bytes = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
    long[] ids = new long[packed.length / Integer.BYTES];
    for (int k = 0; k < ids.length; k++) {
      ids[k] = bytes.getInt();
    }
    return ids;
  }
}
