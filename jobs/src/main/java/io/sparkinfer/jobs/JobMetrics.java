package io.sparkinfer.jobs;

import ai.djl.Device;
import io.sparkinfer.engine.LlmEngine;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.apache.spark.SparkContext;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * The job's counters, as Spark accumulators updated by the executors' tasks: rows answered, engine requests,
 * tokens, generation time, and every model load with the executor that performed it.
 *
 * <p>Each row counts once however often its task ran: Spark merges a task's accumulator updates only when the
 * task succeeds, and a result task's only once per partition (a failed, retried, killed or speculative attempt
 * adds nothing), and these counters are only updated in the inference tasks, which are the write's result
 * tasks. A model load is the exception that needs help: the attempt that loaded the executor's engine may fail
 * and its retry find the engine loaded, so a load is held in the executor's JVM until a task of the same run
 * succeeds there and reports it ({@link #reportHeldLoads()}).
 */
public final class JobMetrics implements Serializable {

  /** Completion rows produced by inference (deduplicated ids included). */
  final LongAccumulator rowsDone;
  /** Requests sent to the engine (one per distinct prompt when deduplicating). */
  final LongAccumulator requests;
  final LongAccumulator okRows;
  /** Rows whose generation failed in the engine (planning errors are counted on the driver). */
  final LongAccumulator errorRows;
  final LongAccumulator promptTokens;
  final LongAccumulator completionTokens;
  final LongAccumulator generateNanos;
  /** Batches that ran out of device memory and were retried at half their width. */
  final LongAccumulator oomRetries;
  /**
   * One entry per engine load: {@code executorId \t device \t seconds \t precision \t backend \t libtorch}, as the
   * engine resolved them ({@code libtorch}: the directory DJL loaded libtorch from in that JVM).
   */
  final CollectionAccumulator<String> loads;
  /** One entry per inference task: the executor that ran it. */
  final CollectionAccumulator<String> executors;
  /** One entry per inference task: the layout it ran, {@code auto} resolved. */
  final CollectionAccumulator<String> layouts;
  /** One entry per inference task that succeeded: its timeline. */
  final CollectionAccumulator<TaskTimeline> timelines;
  /** One entry per run of shared generators, reported by the task that stopped them. */
  final CollectionAccumulator<SharedGenerators.Run> generatorRuns;

  /**
   * Engine loads this JVM performed and no successful task has reported yet, by the id of the run's
   * {@link #loads} accumulator (ids are unique in a JVM, so runs never take each other's loads).
   */
  private static final Map<Long, List<String>> HELD_LOADS = new ConcurrentHashMap<>();

  private JobMetrics(SparkContext sc) {
    rowsDone = sc.longAccumulator("sparkinfer.rows_done");
    requests = sc.longAccumulator("sparkinfer.requests");
    okRows = sc.longAccumulator("sparkinfer.ok_rows");
    errorRows = sc.longAccumulator("sparkinfer.error_rows");
    promptTokens = sc.longAccumulator("sparkinfer.prompt_tokens");
    completionTokens = sc.longAccumulator("sparkinfer.completion_tokens");
    generateNanos = sc.longAccumulator("sparkinfer.generate_nanos");
    oomRetries = sc.longAccumulator("sparkinfer.oom_retries");
    loads = sc.collectionAccumulator("sparkinfer.model_loads");
    executors = sc.collectionAccumulator("sparkinfer.executors");
    layouts = sc.collectionAccumulator("sparkinfer.layouts");
    timelines = sc.collectionAccumulator("sparkinfer.task_timelines");
    generatorRuns = sc.collectionAccumulator("sparkinfer.generator_runs");
  }

  /** Registers a fresh set of counters with the driver's context. */
  public static JobMetrics register(SparkContext sc) {
    return new JobMetrics(sc);
  }

  /**
   * Records an engine load (on the executor that performed it): what the engine resolved (device, precision,
   * backend), and its seconds. It is held until {@link #reportHeldLoads()}.
   */
  void recordLoad(String executorId, double seconds, LlmEngine engine) {
    String entry = String.join("\t", executorId, deviceLabel(engine.devices()), String.format(Locale.ROOT, "%.3f",
        seconds), engine.precision().label(), engine.backendName(), libtorchDir());
    HELD_LOADS.compute(loads.id(), (id, held) -> {
      List<String> list = held != null ? held : new ArrayList<>();
      list.add(entry);
      return list;
    });
  }

  /**
   * Adds the loads this JVM holds for this run to the {@link #loads} accumulator: called by a task that
   * succeeded, whose accumulator updates Spark keeps.
   */
  void reportHeldLoads() {
    List<String> held = HELD_LOADS.remove(loads.id());
    if (held != null) {
      held.forEach(loads::add);
    }
  }

  /**
   * The directory DJL loaded libtorch from in this JVM: {@code PYTORCH_LIBRARY_PATH}'s (e.g. an archive shipped
   * with {@code submit/infer.sh --natives}), or DJL's cache where it extracted a libtorch jar on the class path.
   */
  static String libtorchDir() {
    return ai.djl.pytorch.jni.LibUtils.getLibtorchPath();
  }

  /** A DJL device as the job's options name it: {@code cpu}, {@code gpu:N}. */
  static String deviceLabel(Device device) {
    return device.isGpu() ? "gpu:" + device.getDeviceId() : device.getDeviceType();
  }

  /** A replica's devices: {@code gpu:0}, or {@code gpu:0+gpu:1} for one split over two GPUs. */
  static String deviceLabel(List<Device> devices) {
    return devices.stream().map(JobMetrics::deviceLabel).collect(Collectors.joining("+"));
  }

  /** The layouts the tasks ran ({@code auto} resolved), semicolon-separated (a label has commas); null when none ran. */
  public String loadedLayouts() {
    String s = List.copyOf(layouts.value()).stream().distinct().sorted().collect(Collectors.joining(";"));
    return s.isEmpty() ? null : s;
  }

  /** Engine loads per executor id, counted from the loads the tasks reported. */
  public Map<String, Integer> loadsByExecutor() {
    Map<String, Integer> out = new TreeMap<>();
    for (String entry : List.copyOf(loads.value())) {
      out.merge(entry.split("\t", -1)[0], 1, Integer::sum);
    }
    return out;
  }

  /** Seconds spent loading models, summed over executors. */
  public double loadSeconds() {
    double total = 0;
    for (String entry : List.copyOf(loads.value())) {
      total += Double.parseDouble(entry.split("\t", -1)[2]);
    }
    return total;
  }

  /** The devices the loaded engines run on ({@code cpu}, {@code gpu:N}), comma-separated; null when none loaded. */
  public String loadedDevices() {
    return distinctLoadField(1);
  }

  /** The precisions the loaded engines run in (e.g. {@code fp16}), comma-separated; null when none loaded. */
  public String loadedPrecisions() {
    return distinctLoadField(3);
  }

  /** The backends the loaded engines run ({@code eager}, {@code scripted}), comma-separated; null when none loaded. */
  public String loadedBackends() {
    return distinctLoadField(4);
  }

  private String distinctLoadField(int field) {
    String s = List.copyOf(loads.value()).stream().map(e -> e.split("\t", -1)[field]).distinct().sorted()
        .collect(Collectors.joining(","));
    return s.isEmpty() ? null : s;
  }

  /** The libtorch directories the executors loaded, comma-separated; null when no engine loaded. */
  public String loadedLibtorch() {
    return distinctLoadField(5);
  }

  /** The inference tasks' timelines, as the tasks that succeeded reported them. */
  public List<TaskTimeline> taskTimelines() {
    return List.copyOf(timelines.value());
  }

  /** The runs of shared generators, as the tasks that stopped them reported them. */
  List<SharedGenerators.Run> generatorRuns() {
    return List.copyOf(generatorRuns.value());
  }

  /** Distinct executors that ran inference tasks. */
  public int executorCount() {
    return (int) List.copyOf(executors.value()).stream().distinct().count();
  }
}
