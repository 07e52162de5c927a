package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.col;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.function.Function;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.XXH64;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * What planning counted over the planned rows ({@link Tables#PLANNED}), in one pass over them: the rows, those that
 * cannot run and those the input could not give, the ids given to more than one row, the longest prompt that can
 * run, the partitions, and when asked the prompts that more than one runnable row holds.
 *
 * <p>The pass is one Spark job of one stage: each planning task counts its partition's rows as it caches them and sends
 * the driver its counts and its ids' 64-bit hashes, and the driver sorts the hashes and finds the repeated ones.
 * Past {@link #MAX_ID_HASHES} ids the hashes stay on the executors and a Spark query groups the rows by id instead.
 * A repeated hash is a repeated id but for a collision of two ids' hashes (about one chance in 10^5 at 16 million
 * ids), which {@link RunPlan}'s check of the ids, run whenever this counts a repeat, tells apart. Prompts are counted
 * the same way, their hashes under the same bound: a collision counts a repeat that is not one, never the reverse,
 * which is the safe side for {@link RunPlan}, which arranges a run in place only when no prompt repeats.
 *
 * <p>Until 2026-12-03 the summary was a Spark SQL query (group by id, then add the groups up): three stages, whose
 * code the driver generated and compiled before the planning job (1.0 s of the driver's time on an H200's host,
 * mostly code generation in a flight recording), a hash aggregate in each planning task after its rows, and two more
 * stages after them (0.2 s): bench/results/2026-12-03-e2e-NVIDIA-H200-run27's timeline. As one pass, on an H200's
 * host, the planning job started 0.3-0.4 s sooner after the line count and took 1.4 s instead of 1.8-2.1 s, alternated
 * with the query in one call (bench/results/2026-12-03-e2e-NVIDIA-H200-run29).
 *
 * @param rows the planned rows
 * @param plannedErrors the rows that cannot run (the input's errors among them)
 * @param inputErrors the rows the input could not give ({@link InputRows#ERROR_CODES})
 * @param repeatedIds the ids of more than one row (a null id counts as one id)
 * @param promptLengths the rows that can run by their prompt's tokens: the inference partitions' ranges ({@link
 *     LengthRanges})
 * @param partitions the planned rows' partitions
 * @param repeatedPrompts the prompts of more than one row that can run; {@link #NOT_COUNTED} when not asked for, or
 *     past {@link #MAX_ID_HASHES} rows
 */
record PlanSummary(long rows, long plannedErrors, long inputErrors, long repeatedIds,
    SortedMap<Integer, Long> promptLengths, int partitions, long repeatedPrompts) {

  /** {@link #repeatedPrompts}: not counted. */
  static final long NOT_COUNTED = -1;

  /** The most ids whose hashes reach the driver (8 bytes each, 128 MiB in all; as many prompts' when asked). */
  static final long MAX_ID_HASHES = 1L << 24;

  /**
   * The tokens of the longest prompt among the rows that can run (0 when none can): the inference tasks tell the
   * generators, whose first batch then holds it ({@link io.sparkinfer.generate.RequestStream#longestExpected}).
   */
  int longestPromptTokens() {
    return promptLengths.isEmpty() ? 0 : promptLengths.lastKey();
  }

  /** Counts {@code planned} in one Spark job (two past {@link #MAX_ID_HASHES} rows), repeated prompts not counted. */
  static PlanSummary of(Dataset<Row> planned) {
    return of(planned, MAX_ID_HASHES, false);
  }

  /**
   * {@link #of(Dataset)} with another bound on the hashes sent to the driver, and with {@code prompts} the repeated
   * prompts counted too (their hashes sent under the same bound).
   */
  static PlanSummary of(Dataset<Row> planned, long maxIdHashes, boolean prompts) {
    // adaptive execution off: a planned Dataset with a shuffle would otherwise run it as a job of its own
    List<PartitionCounts> parts = AdaptiveExecution.off(planned.sparkSession(), () -> {
      JavaRDD<InternalRow> rows = counted(planned).queryExecution().toRdd().toJavaRDD();
      int perPartition = (int) Math.min(Integer.MAX_VALUE - 8, maxIdHashes / Math.max(1, rows.getNumPartitions()));
      return rows.mapPartitions(part -> List.of(PartitionCounts.of(part, perPartition, prompts)).iterator())
          .collect();
    });
    long total = 0;
    long errors = 0;
    long inputErrors = 0;
    long nullIds = 0;
    boolean hashed = true;
    boolean promptsHashed = prompts;
    SortedMap<Integer, Long> lengths = new TreeMap<>();
    for (PartitionCounts p : parts) {
      for (int i = 0; i < p.lengths.length; i++) {
        lengths.merge(p.lengths[i], p.lengthCounts[i], Long::sum);
      }
      total += p.rows;
      errors += p.errors;
      inputErrors += p.inputErrors;
      nullIds += p.nullIds;
      hashed &= p.idHashes != null;
      promptsHashed &= p.promptHashes != null;
    }
    long repeated = hashed ? repeatedHashes(parts, PartitionCounts::idHashes) + (nullIds > 1 ? 1 : 0)
        : repeatedIds(planned);
    long repeatedPrompts = promptsHashed ? repeatedHashes(parts, PartitionCounts::promptHashes) : NOT_COUNTED;
    return new PlanSummary(total, errors, inputErrors, repeated, lengths, parts.size(), repeatedPrompts);
  }

  /** The columns the summary reads, from the cached plan: (id, error_code, prompt_tokens, prompt). */
  static Dataset<Row> counted(Dataset<Row> planned) {
    return planned.select(col(Tables.ID), col(Tables.ERROR_CODE), col(Tables.PROMPT_TOKENS), col(Tables.PROMPT));
  }

  /** The hashes found more than once over the partitions' hashes ({@code hashes} of each). */
  private static long repeatedHashes(List<PartitionCounts> parts, Function<PartitionCounts, long[]> hashes) {
    long[] all = new long[Math.toIntExact(parts.stream().mapToLong(p -> hashes.apply(p).length).sum())];
    int at = 0;
    for (PartitionCounts p : parts) {
      long[] h = hashes.apply(p);
      System.arraycopy(h, 0, all, at, h.length);
      at += h.length;
    }
    Arrays.sort(all);
    long repeated = 0;
    for (int i = 1; i < all.length; i++) {
      if (all[i] == all[i - 1] && (i == 1 || all[i - 1] != all[i - 2])) {
        repeated++;
      }
    }
    return repeated;
  }

  /** The ids of more than one row, by a Spark query (adaptive execution off: one job, {@link AdaptiveExecution}). */
  private static long repeatedIds(Dataset<Row> planned) {
    return AdaptiveExecution.off(planned.sparkSession(),
        () -> planned.groupBy(col(Tables.ID)).count().where(col("count").gt(1)).count());
  }

  /**
   * One planning partition's counts: its ids' hashes (null past its share of {@link #MAX_ID_HASHES}), the
   * distinct prompt lengths of its rows that can run, ascending, and their rows, and the hashes of those rows'
   * prompts (null when not asked for or past the share).
   */
  private record PartitionCounts(long rows, long errors, long inputErrors, long nullIds, long[] idHashes,
      int[] lengths, long[] lengthCounts, long[] promptHashes) implements Serializable {

    /** Counts rows of {@link #counted}'s columns, their prompts hashed with {@code prompts}. */
    static PartitionCounts of(Iterator<InternalRow> rows, int maxHashes, boolean prompts) {
      long n = 0;
      long errors = 0;
      long inputErrors = 0;
      long nullIds = 0;
      BoundedHashes ids = new BoundedHashes(maxHashes);
      BoundedHashes promptHashes = prompts ? new BoundedHashes(maxHashes) : null;
      int[] valid = new int[64]; // the prompt lengths of the rows that can run
      int nValid = 0;
      while (rows.hasNext()) {
        InternalRow r = rows.next();
        n++;
        if (r.isNullAt(0)) {
          nullIds++;
        } else {
          ids.add(r.getUTF8String(0));
        }
        if (r.isNullAt(1)) {
          if (nValid == valid.length) {
            valid = Arrays.copyOf(valid, 2 * nValid);
          }
          valid[nValid++] = r.getInt(2);
          if (promptHashes != null) {
            promptHashes.add(r.getUTF8String(3));
          }
        } else {
          errors++;
          if (InputRows.ERROR_CODES.contains(r.getUTF8String(1).toString())) {
            inputErrors++;
          }
        }
      }
      Arrays.sort(valid, 0, nValid);
      int distinct = 0;
      int[] lengths = new int[nValid];
      long[] counts = new long[nValid];
      for (int i = 0; i < nValid; i++) {
        if (distinct == 0 || lengths[distinct - 1] != valid[i]) {
          lengths[distinct++] = valid[i];
        }
        counts[distinct - 1]++;
      }
      return new PartitionCounts(n, errors, inputErrors, nullIds, ids.hashes(), Arrays.copyOf(lengths, distinct),
          Arrays.copyOf(counts, distinct), promptHashes == null ? null : promptHashes.hashes());
    }
  }

  /** 64-bit hashes of strings, at most {@code max} of them: past that, none ({@link #hashes} is null). */
  private static final class BoundedHashes {
    private final int max;
    private long[] hashes = new long[0];
    private int n;

    BoundedHashes(int max) {
      this.max = max;
    }

    void add(UTF8String s) {
      if (hashes == null) {
        return;
      }
      if (n == hashes.length) { // full: grow, or give up past the bound
        hashes = n < max ? Arrays.copyOf(hashes, (int) Math.min(max, Math.max(64, 2L * n))) : null;
        if (hashes == null) {
          return;
        }
      }
      hashes[n++] = XXH64.hashUTF8String(s, 42);
    }

    /** The hashes added, in order; null past the bound. */
    long[] hashes() {
      return hashes == null ? null : Arrays.copyOf(hashes, n);
    }
  }
}
