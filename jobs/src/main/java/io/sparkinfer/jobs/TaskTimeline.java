package io.sparkinfer.jobs;

import java.io.Serializable;
import java.util.Locale;
import java.util.TreeSet;

/**
 * Where one inference task's time went, measured on its executor: when it started and ended (epoch milliseconds),
 * how long it waited for its engines (loading them, or waiting for a load that planning started,
 * {@link ExecutorEngines#preload}), its generators' time spent generating, and the widths its batches ran at
 * ({@code --batch-size auto} resolved). A generator's time after the engines were ready that was not generation
 * is idle time: waiting, with no row to decode, for the task thread to read and tokenize requests into the
 * stream, or, at the end, for the other generators to finish theirs.
 *
 * @param generators the task's generators (replicas times threads)
 */
record TaskTimeline(long startMillis, long endMillis, int generators, long generateNanos, long engineWaitNanos,
    TreeSet<Integer> batchSizes) implements Serializable {

  /** The task's wall time in seconds. */
  double seconds() {
    return Math.max(0, endMillis - startMillis) / 1000.0;
  }

  /** Seconds the task waited for its engines. */
  double engineWaitSeconds() {
    return engineWaitNanos / 1e9;
  }

  /** Generator seconds after the engines were ready that were not generation. */
  double idleSeconds() {
    return Math.max(0, generators * (seconds() - engineWaitSeconds()) - generateNanos / 1e9);
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "%.3f s, %d generator(s), waiting for engines %.3f s, generating %.3f s, "
        + "batch sizes %s", seconds(), generators, engineWaitSeconds(), generateNanos / 1e9, batchSizes);
  }
}
