package io.sparkinfer.jobs;

import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Where a run's time went, from its inference tasks' timelines ({@link TaskTimeline}) and its generators' runs
 * ({@link SharedGenerators.Run}: the generators an executor's concurrent inference tasks shared, from their start
 * to the last task's end): the job_runs columns {@code first_inference_s} (from the run's start to its first
 * inference task: start-up, reading, planning, sorting), {@code inference_span_s} (from the first inference task's
 * start to the last one's end), {@code inference_task_s} (the tasks' wall times, summed), {@code engine_wait_s}
 * (the tasks' time waiting for their engines: loading them, or the rest of a load that planning started),
 * {@code engine_idle_s} (generator time, while generators ran, that was not generation) and {@code batch_sizes}
 * (the widths the batches ran at, {@code --batch-size auto} resolved). They add up: {@code generate_s +
 * engine_idle_s} is the generators' runs' seconds times their generators, which one executor's runs keep within
 * {@code inference_span_s} times its generators.
 *
 * @param firstInferenceSeconds null when no inference task ran
 * @param inferenceSpanSeconds null when no inference task ran
 * @param batchSizes comma-separated, ascending; null when no inference task ran
 */
record RunTimeline(Double firstInferenceSeconds, Double inferenceSpanSeconds, double inferenceTaskSeconds,
    double engineWaitSeconds, double engineIdleSeconds, String batchSizes) {

  static final RunTimeline NONE = new RunTimeline(null, null, 0, 0, 0, null);

  static RunTimeline of(Instant started, List<TaskTimeline> tasks, List<SharedGenerators.Run> runs) {
    if (tasks.isEmpty()) {
      return NONE;
    }
    long first = tasks.stream().mapToLong(TaskTimeline::startMillis).min().orElseThrow();
    long last = tasks.stream().mapToLong(TaskTimeline::endMillis).max().orElseThrow();
    TreeSet<Integer> sizes = new TreeSet<>();
    runs.forEach(r -> sizes.addAll(r.batchSizes()));
    return new RunTimeline(Math.max(0, first - started.toEpochMilli()) / 1000.0, Math.max(0, last - first) / 1000.0,
        tasks.stream().mapToDouble(TaskTimeline::seconds).sum(),
        tasks.stream().mapToDouble(TaskTimeline::engineWaitSeconds).sum(),
        runs.stream().mapToDouble(SharedGenerators.Run::idleSeconds).sum(),
        sizes.isEmpty() ? null : sizes.stream().map(String::valueOf).collect(Collectors.joining(",")));
  }

  /** The summary's timeline line. */
  String describe(double generateSeconds) {
    if (firstInferenceSeconds == null) {
      return "no inference task ran";
    }
    return String.format(Locale.ROOT, "first inference task at %.1f s | inference %.1f s (tasks %.1f s: waiting "
        + "for engines %.1f; generators generating %.1f, idle %.1f) | batch sizes %s", firstInferenceSeconds,
        inferenceSpanSeconds, inferenceTaskSeconds, engineWaitSeconds, generateSeconds, engineIdleSeconds,
        batchSizes);
  }
}
