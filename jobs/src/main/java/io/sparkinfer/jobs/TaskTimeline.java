package io.sparkinfer.jobs;

import java.io.Serializable;
import java.util.Locale;

/**
 * Where one inference task's time went, measured on its executor: when it started and ended (epoch milliseconds),
 * and how long it waited for its engines (loading them, or waiting for a load that planning started,
 * {@link ExecutorEngines#preload}). What the generators did is the generators' own record
 * ({@link SharedGenerators.Run}): tasks running at once share them.
 */
record TaskTimeline(long startMillis, long endMillis, long engineWaitNanos) implements Serializable {

  /** The task's wall time in seconds. */
  double seconds() {
    return Math.max(0, endMillis - startMillis) / 1000.0;
  }

  /** Seconds the task waited for its engines. */
  double engineWaitSeconds() {
    return engineWaitNanos / 1e9;
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "%.3f s, waiting for engines %.3f s", seconds(), engineWaitSeconds());
  }
}
