package io.sparkinfer.jobs;

import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple4;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The driver's progress line, every few seconds while the job writes: rows done of the total, completion
 * tokens per second and an ETA. Finished tasks count through the accumulators; running tasks through the
 * accumulator values their executors' heartbeats carry ({@code spark.executor.heartbeatInterval}), so long
 * partitions show progress before they end.
 */
final class ProgressReporter extends SparkListener implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger("io.sparkinfer.jobs.progress");

  private final SparkSession spark;
  private final JobMetrics metrics;
  private final long totalRows;
  private final long rowsDoneBefore;
  private final long startNanos = System.nanoTime();
  private final Map<Long, Long> runningRows = new ConcurrentHashMap<>();
  private final Map<Long, Long> runningTokens = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timer;

  private ProgressReporter(SparkSession spark, JobMetrics metrics, long totalRows, long rowsDoneBefore, int seconds) {
    this.spark = spark;
    this.metrics = metrics;
    this.totalRows = totalRows;
    this.rowsDoneBefore = rowsDoneBefore;
    if (seconds > 0) {
      spark.sparkContext().addSparkListener(this);
      timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "sparkinfer-progress");
        t.setDaemon(true);
        return t;
      });
      timer.scheduleAtFixedRate(this::report, seconds, seconds, TimeUnit.SECONDS);
    } else {
      timer = null;
    }
  }

  /**
   * Starts reporting every {@code seconds} (none when 0). {@code rowsDoneBefore} rows (planning errors) count
   * as done from the start.
   */
  static ProgressReporter start(SparkSession spark, JobMetrics metrics, long totalRows, long rowsDoneBefore,
      int seconds) {
    return new ProgressReporter(spark, metrics, totalRows, rowsDoneBefore, seconds);
  }

  @Override
  public void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate update) {
    for (Tuple4<Object, Object, Object, scala.collection.immutable.Seq<AccumulableInfo>> t :
        CollectionConverters.asJava(update.accumUpdates())) {
      long taskId = (Long) t._1();
      for (AccumulableInfo info : CollectionConverters.asJava(t._4())) {
        if (info.update().isEmpty()) {
          continue;
        }
        Object v = info.update().get();
        if (!(v instanceof Long value)) {
          continue;
        }
        if (info.id() == metrics.rowsDone.id()) {
          runningRows.put(taskId, value);
        } else if (info.id() == metrics.completionTokens.id()) {
          runningTokens.put(taskId, value);
        }
      }
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd end) {
    runningRows.remove(end.taskInfo().taskId());
    runningTokens.remove(end.taskInfo().taskId());
  }

  /** The progress line now. */
  String line() {
    long done = Math.min(totalRows, rowsDoneBefore + metrics.rowsDone.value() + sum(runningRows));
    long tokens = metrics.completionTokens.value() + sum(runningTokens);
    double elapsed = (System.nanoTime() - startNanos) / 1e9;
    double percent = totalRows == 0 ? 100 : 100.0 * done / totalRows;
    String eta = done <= rowsDoneBefore || done >= totalRows ? "-"
        : duration(elapsed * (totalRows - done) / (done - rowsDoneBefore));
    return String.format(Locale.ROOT, "%,d/%,d rows (%.1f%%) | %.1f tokens/s | elapsed %s | ETA %s",
        done, totalRows, percent, tokens / Math.max(elapsed, 1e-9), duration(elapsed), eta);
  }

  /** Logs the progress line now. */
  void report() {
    try {
      LOG.info(line());
    } catch (RuntimeException e) {
      LOG.debug("progress line failed", e);
    }
  }

  private static long sum(Map<Long, Long> m) {
    return m.values().stream().mapToLong(Long::longValue).sum();
  }

  static String duration(double seconds) {
    Duration d = Duration.ofMillis((long) (seconds * 1000));
    return d.toHours() > 0
        ? String.format(Locale.ROOT, "%dh%02dm%02ds", d.toHours(), d.toMinutesPart(), d.toSecondsPart())
        : String.format(Locale.ROOT, "%dm%02ds", d.toMinutes(), d.toSecondsPart());
  }

  @Override
  public void close() {
    if (timer != null) {
      timer.shutdownNow();
      spark.sparkContext().removeSparkListener(this);
    }
  }
}
