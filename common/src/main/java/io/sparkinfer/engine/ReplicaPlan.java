package io.sparkinfer.engine;

import ai.djl.Device;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A layout laid over the devices of a task (or of {@code generate.sh}): the layout with {@code auto} resolved, and
 * one engine's options per replica, each naming its own devices ({@code gpu:2,3}) and the layout of one replica
 * ({@code tp} and {@code pp}, one thread). Callers load an engine per replica ({@link LlmEngine#load}; replicas
 * with equal options share one) and run {@code threads} generators on each.
 *
 * <p>Devices: those the device option names (a task's GPUs from Spark, or {@code gpu:0,1,...}), else the first
 * GPUs the engine sees as the layout needs them (all of them for {@code auto}), else the CPU. When there is one
 * device (the CPU, or a single GPU for checks) every replica and shard shares it.
 *
 * @param layout the resolved layout
 * @param replicas the engine options of each replica, in order
 * @param devices the devices at hand
 */
public record ReplicaPlan(Layout layout, List<EngineOptions> replicas, List<Device> devices) {

  /** Plans {@code options}' layout over its devices; reads only the checkpoint's config.json. */
  public static ReplicaPlan of(EngineOptions options) {
    Layout layout = options.layout();
    int gpus = options.device().equals("cpu") ? 0 : options.gpuCount();
    List<Device> devices = options.resolveDevices(layout.auto() ? Math.max(1, gpus)
        : layout.replicas() * layout.devicesPerReplica());
    boolean gpu = devices.get(0).isGpu();
    ModelConfig config = ModelConfig.load(Path.of(options.modelDir()));
    if (layout.auto()) {
      Precision precision = options.resolvePrecision(devices.get(0));
      long weightBytes = (long) config.parameterCount() * precision.dataType().getNumOfBytes();
      long deviceBytes = gpu ? ai.djl.util.cuda.CudaUtils.getGpuMemory(devices.get(0)).getMax() : 0;
      layout = layout.resolve(config, devices.size(), weightBytes, deviceBytes);
    }
    layout.validate(config, gpu ? devices.size() : 1, gpu);
    Layout one = new Layout(1, layout.tp(), layout.pp(), 1, false);
    List<EngineOptions> replicas = new ArrayList<>();
    for (List<Device> own : assign(layout, devices)) {
      replicas.add(options.with(EngineOptions.DEVICE_OPTION, label(own)).with(EngineOptions.LAYOUT, one));
    }
    return new ReplicaPlan(layout, List.copyOf(replicas), List.copyOf(devices));
  }

  /**
   * Each replica's devices: replica {@code r} takes the {@code tp * pp} devices from {@code r * tp * pp} on (its
   * stages in order, each stage's shards together), wrapping around when there are fewer devices.
   */
  static List<List<Device>> assign(Layout layout, List<Device> devices) {
    int per = layout.devicesPerReplica();
    List<List<Device>> out = new ArrayList<>();
    for (int r = 0; r < layout.replicas(); r++) {
      List<Device> own = new ArrayList<>();
      for (int i = 0; i < per; i++) {
        own.add(devices.get((r * per + i) % devices.size()));
      }
      out.add(List.copyOf(own));
    }
    return out;
  }

  /** Decode threads per replica. */
  public int threads() {
    return layout.threads();
  }

  /** Generators in all: replicas times threads. */
  public int generators() {
    return layout.replicas() * layout.threads();
  }

  /**
   * Generators that decode on one device at once: the threads of a replica, or of every replica when they share
   * the one device. {@code --batch-size auto} gives each its share of the device's free memory.
   */
  public int generatorsPerDevice() {
    boolean shared = devices.size() < layout.replicas() * layout.devicesPerReplica();
    return shared ? generators() : layout.threads();
  }

  /** The device option naming {@code devices}: {@code cpu}, or {@code gpu:} and their ordinals. */
  static String label(List<Device> devices) {
    if (!devices.get(0).isGpu()) {
      return "cpu";
    }
    return "gpu:" + devices.stream().map(d -> Integer.toString(d.getDeviceId())).collect(Collectors.joining(","));
  }
}
