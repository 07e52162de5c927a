package io.sparkinfer.jobs;

import java.util.Arrays;
import java.util.Locale;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Where one inference task's time went, measured on its executor: when it started and ended (epoch milliseconds),
 * how long it waited for its engines (loading them, or waiting for a load that planning started,
 * {@link ExecutorEngines#preload}), its generators' time spent generating, and the batch sizes its chunks ran at
 * ({@code --batch-size auto} resolved). A generator's time after the engines were ready that was not generation
 * is idle time: waiting for the task thread to read and tokenize the next chunk, or for Spark's writer to take the
 * rows of the last.
 *
 * @param generators the task's generators (replicas times threads)
 */
record TaskTimeline(long startMillis, long endMillis, int generators, long generateNanos, long engineWaitNanos,
    SortedSet<Integer> batchSizes) {

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

  /** The accumulator entry: tab-separated fields, the batch sizes comma-separated. */
  String entry() {
    return String.join("\t", Long.toString(startMillis), Long.toString(endMillis), Integer.toString(generators),
        Long.toString(generateNanos), Long.toString(engineWaitNanos),
        batchSizes.stream().map(String::valueOf).collect(Collectors.joining(",")));
  }

  static TaskTimeline parse(String entry) {
    String[] f = entry.split("\t", -1);
    if (f.length != 6) {
      throw new IllegalArgumentException("not a task timeline: " + entry);
    }
    SortedSet<Integer> sizes = new TreeSet<>();
    if (!f[5].isEmpty()) {
      Arrays.stream(f[5].split(",")).map(Integer::valueOf).forEach(sizes::add);
    }
    return new TaskTimeline(Long.parseLong(f[0]), Long.parseLong(f[1]), Integer.parseInt(f[2]), Long.parseLong(f[3]),
        Long.parseLong(f[4]), sizes);
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "%.3f s, %d generator(s), waiting for engines %.3f s, generating %.3f s, "
        + "batch sizes %s", seconds(), generators, engineWaitSeconds(), generateNanos / 1e9, batchSizes);
  }
}
