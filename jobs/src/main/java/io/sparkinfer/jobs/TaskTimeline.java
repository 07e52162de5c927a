package io.sparkinfer.jobs;

import java.util.Arrays;
import java.util.Locale;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Where one inference task's time went, measured on its executor: when it started and ended (epoch milliseconds),
 * its generators' time spent generating and loading the model, and the batch sizes its chunks ran at
 * ({@code --batch-size auto} resolved). What a generator did neither is idle time: waiting for the task thread to
 * read and tokenize the next chunk, or for Spark's writer to take the rows of the last.
 *
 * @param generators the task's generators (replicas times threads)
 */
record TaskTimeline(long startMillis, long endMillis, int generators, long generateNanos, long loadNanos,
    SortedSet<Integer> batchSizes) {

  /** The task's wall time in seconds. */
  double seconds() {
    return Math.max(0, endMillis - startMillis) / 1000.0;
  }

  /** Generator seconds that were neither generation nor model load ({@code generators} times the wall, less both). */
  double idleSeconds() {
    return Math.max(0, generators * seconds() - (generateNanos + loadNanos) / 1e9);
  }

  /** The accumulator entry: tab-separated fields, the batch sizes comma-separated. */
  String entry() {
    return String.join("\t", Long.toString(startMillis), Long.toString(endMillis), Integer.toString(generators),
        Long.toString(generateNanos), Long.toString(loadNanos),
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
    return String.format(Locale.ROOT, "%.3f s, %d generator(s), generating %.3f s, loading %.3f s, batch sizes %s",
        seconds(), generators, generateNanos / 1e9, loadNanos / 1e9, batchSizes);
  }
}
