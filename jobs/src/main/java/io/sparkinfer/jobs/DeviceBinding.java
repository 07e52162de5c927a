package io.sparkinfer.jobs;

import java.util.Map;
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

  private DeviceBinding() {}

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
