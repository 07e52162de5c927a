package io.sparkinfer.jobs;

import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Where a run's time went, from its inference tasks' timelines ({@link TaskTimeline}): the job_runs columns
 * {@code first_inference_s} (from the run's start to its first inference task: start-up, reading, planning,
 * sorting), {@code inference_span_s} (from the first inference task's start to the last one's end),
 * {@code inference_task_s} (the tasks' wall times, summed), {@code engine_idle_s} (generator time inside the tasks
 * that was neither generation nor model load) and {@code batch_sizes} (the batch sizes the chunks ran at,
 * {@code --batch-size auto} resolved). With {@code generate_s} and {@code model_load_s} they add up:
 * {@code generate_s + model_load_s + engine_idle_s} is the generators' share of {@code inference_task_s} (times the
 * generators per task).
 *
 * @param firstInferenceSeconds null when no inference task ran
 * @param inferenceSpanSeconds null when no inference task ran
 * @param batchSizes comma-separated, ascending; null when no inference task ran
 */
record RunTimeline(Double firstInferenceSeconds, Double inferenceSpanSeconds, double inferenceTaskSeconds,
    double engineIdleSeconds, String batchSizes) {

  static final RunTimeline NONE = new RunTimeline(null, null, 0, 0, null);

  static RunTimeline of(Instant started, List<TaskTimeline> tasks) {
    if (tasks.isEmpty()) {
      return NONE;
    }
    long first = tasks.stream().mapToLong(TaskTimeline::startMillis).min().orElseThrow();
    long last = tasks.stream().mapToLong(TaskTimeline::endMillis).max().orElseThrow();
    TreeSet<Integer> sizes = new TreeSet<>();
    tasks.forEach(t -> sizes.addAll(t.batchSizes()));
    return new RunTimeline(Math.max(0, first - started.toEpochMilli()) / 1000.0, Math.max(0, last - first) / 1000.0,
        tasks.stream().mapToDouble(TaskTimeline::seconds).sum(),
        tasks.stream().mapToDouble(TaskTimeline::idleSeconds).sum(),
        sizes.isEmpty() ? null : sizes.stream().map(String::valueOf).collect(Collectors.joining(",")));
  }

  /** The summary line: empty when no inference task ran. */
  String describe(double generateSeconds, double loadSeconds) {
    if (firstInferenceSeconds == null) {
      return "no inference task ran";
    }
    return String.format(Locale.ROOT, "first inference task at %.1f s | inference %.1f s (tasks %.1f s: generating "
        + "%.1f, loading %.1f, idle %.1f) | batch sizes %s", firstInferenceSeconds, inferenceSpanSeconds,
        inferenceTaskSeconds, generateSeconds, loadSeconds, engineIdleSeconds, batchSizes);
  }
}
