package io.sparkinfer.jobs;

import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * Binds a task to the device its engine runs on: the GPU that Spark's scheduler assigned to the task
 * ({@code spark.executor.resource.gpu.amount}, {@code spark.task.resource.gpu.amount}, read from
 * {@link TaskContext#resourcesJMap()}), or the CPU when the task has none.
 */
public final class DeviceBinding {

  /** The Spark resource name of GPUs. */
  public static final String GPU_RESOURCE = "gpu";

  private static final Pattern SYNTAX = Pattern.compile("auto|cpu|gpu|gpu:\\d+");

  private DeviceBinding() {}

  /** The device option in lower case, or an error naming it. */
  static String checkSyntax(String device) {
    String d = device == null ? "auto" : device.trim().toLowerCase(Locale.ROOT);
    if (!SYNTAX.matcher(d).matches()) {
      throw new IllegalArgumentException("--device '" + device + "' is not one of auto, cpu, gpu, gpu:N");
    }
    return d;
  }

  /**
   * The engine device for the running task: an explicit {@code cpu}, {@code gpu} or {@code gpu:N} as given;
   * {@code auto} gives {@code gpu:N} for the first GPU address Spark assigned to the task, else {@code cpu}.
   */
  public static String forTask(String requested, TaskContext task) {
    if (!"auto".equals(requested)) {
      return requested;
    }
    String address = assignedGpu(task == null ? Map.of() : task.resourcesJMap());
    return address == null ? "cpu" : "gpu:" + address;
  }

  /** The first GPU address among a task's resources, or null. */
  static String assignedGpu(Map<String, ResourceInformation> resources) {
    ResourceInformation gpu = resources.get(GPU_RESOURCE);
    if (gpu == null || gpu.addresses().length == 0) {
      return null;
    }
    String address = gpu.addresses()[0].trim();
    if (!address.matches("\\d+")) {
      throw new IllegalStateException("Spark assigned GPU address '" + address
          + "'; the discovery script must report CUDA device ordinals (0, 1, ...)");
    }
    return address;
  }
}
