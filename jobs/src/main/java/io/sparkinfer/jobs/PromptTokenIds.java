package io.sparkinfer.jobs;

import java.util.List;
import org.apache.spark.sql.Row;

/**
 * A prompt's token ids as the planned rows and the requests carry them ({@link Tables#PROMPT_TOKEN_IDS}, an array of
 * ints): planning tokenizes each prompt once, and the inference tasks generate from its ids.
 */
final class PromptTokenIds {

  private PromptTokenIds() {}

  /** {@code ids} as a row's array value (a Scala Seq of ints, as Spark's rows hold arrays). */
  static Object toColumn(long[] ids) {
    int[] ints = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      ints[i] = Math.toIntExact(ids[i]); // a vocabulary's ids fit an int
    }
    return scala.collection.immutable.ArraySeq$.MODULE$.unsafeWrapArray(ints);
  }

  /** The ids in field {@code i} of {@code row}; null when the field is null. */
  static long[] fromColumn(Row row, int i) {
    if (row.isNullAt(i)) {
      return null;
    }
    List<Integer> ints = row.getList(i);
    long[] ids = new long[ints.size()];
    for (int k = 0; k < ids.length; k++) {
      ids[k] = ints.get(k);
    }
    return ids;
  }
}
