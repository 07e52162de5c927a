package io.sparkinfer.jobs;

import java.io.Serializable;
import java.util.Map;
import java.util.SortedMap;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.api.java.UDF2;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * Inference partitions as ranges of (prompt length, tiebreak), cut where planning's count of the prompts' lengths puts
 * an equal share of the requests: what {@code repartitionByRange} on those columns gives, without the Spark job that
 * samples the rows for its bounds (0.2 s on an H200's host before the range shuffle,
 * bench/results/2026-12-03-e2e-NVIDIA-H200-run28). A length whose requests straddle a cut is split at a tiebreak: the
 * tiebreak is a 64-bit hash of the prompt ({@link Completions#requests}), spread evenly over its range, so the cut's
 * fraction of that range takes about that fraction of the length's requests. Identical prompts share a length and a
 * tiebreak, so they stay in one partition.
 *
 * <p>Partition {@code p} holds the requests at or above cut {@code p - 1} and below cut {@code p}: partitions ascend
 * in length, as the range partitioner's do.
 */
final class LengthRanges implements Serializable {

  private static final double TWO_TO_64 = 0x1p64;

  private final int[] cutLengths; // cut i: (cutLengths[i], cutTiebreaks[i]), ascending
  private final long[] cutTiebreaks;

  private LengthRanges(int[] cutLengths, long[] cutTiebreaks) {
    this.cutLengths = cutLengths;
    this.cutTiebreaks = cutTiebreaks;
  }

  /**
   * Ranges of {@code partitions} equal shares of the requests counted in {@code requestsByLength} (prompt tokens to
   * requests of that length).
   */
  static LengthRanges of(SortedMap<Integer, Long> requestsByLength, int partitions) {
    if (partitions < 1) {
      throw new IllegalArgumentException("partitions must be at least 1, got " + partitions);
    }
    long total = requestsByLength.values().stream().mapToLong(Long::longValue).sum();
    int[] lengths = new int[partitions - 1];
    long[] tiebreaks = new long[partitions - 1];
    int cut = 0;
    long before = 0; // requests shorter than the length at hand
    for (Map.Entry<Integer, Long> e : requestsByLength.entrySet()) {
      long n = e.getValue();
      // cut i sits at request rank total * (i + 1) / partitions
      while (cut < partitions - 1 && (double) total * (cut + 1) / partitions < before + n) {
        double fraction = Math.max(0, (double) total * (cut + 1) / partitions - before) / n;
        lengths[cut] = e.getKey();
        tiebreaks[cut] = tiebreakAt(fraction);
        cut++;
      }
      before += n;
    }
    for (; cut < partitions - 1; cut++) { // no requests (or rounding): the last partitions stay empty
      lengths[cut] = Integer.MAX_VALUE;
      tiebreaks[cut] = Long.MAX_VALUE;
    }
    return new LengthRanges(lengths, tiebreaks);
  }

  /** The tiebreak {@code fraction} of the way through the range of longs. */
  private static long tiebreakAt(double fraction) {
    double t = Long.MIN_VALUE + fraction * TWO_TO_64; // rounds to a double; the cut need not be exact
    return t >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) t;
  }

  /** Partitions of these ranges. */
  int partitions() {
    return cutLengths.length + 1;
  }

  /** The partition of a request of {@code promptTokens} tokens and {@code tiebreak}: the cuts at or below it. */
  int partitionOf(int promptTokens, long tiebreak) {
    int lo = 0;
    int hi = cutLengths.length; // the answer is in [lo, hi]
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      boolean atOrBelow = cutLengths[mid] < promptTokens
          || (cutLengths[mid] == promptTokens && cutTiebreaks[mid] <= tiebreak);
      if (atOrBelow) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /** The partition of each row, from its prompt length and tiebreak columns: for {@code Dataset.repartitionById}. */
  Column partitionColumn(Column promptTokens, Column tiebreak) {
    UserDefinedFunction udf = functions.udf((UDF2<Integer, Long, Integer>) this::partitionOf, DataTypes.IntegerType)
        .asNonNullable();
    return udf.apply(promptTokens, tiebreak);
  }
}
