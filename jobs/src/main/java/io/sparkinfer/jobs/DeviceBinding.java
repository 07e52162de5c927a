package io.sparkinfer.jobs;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * Binds a task to the devices its engines run on: the GPUs that Spark's scheduler assigned to the task
 * ({@code spark.executor.resource.gpu.amount}, {@code spark.task.resource.gpu.amount}, read from
 * {@link TaskContext#resourcesJMap()}), which the task's layout then spreads over, or the CPU when the task has
 * none.
 */
public final class DeviceBinding {

  /** The Spark resource name of GPUs. */
  public static final String GPU_RESOURCE = "gpu";

  private DeviceBinding() {}

  /**
   * The engine devices for the running task: an explicit {@code cpu}, {@code gpu} or {@code gpu:N,...} as given;
   * {@code auto} gives {@code gpu:N,M,...} for the GPU addresses Spark assigned to the task, else {@code cpu}.
   */
  public static String forTask(String requested, TaskContext task) {
    if (!"auto".equals(requested)) {
      return requested;
    }
    List<String> addresses = assignedGpus(task == null ? Map.of() : task.resourcesJMap());
    return addresses.isEmpty() ? "cpu" : "gpu:" + String.join(",", addresses);
  }

  /** The GPU addresses among a task's resources, in Spark's order; empty when none. */
  static List<String> assignedGpus(Map<String, ResourceInformation> resources) {
    ResourceInformation gpu = resources.get(GPU_RESOURCE);
    if (gpu == null) {
      return List.of();
    }
    List<String> out = new ArrayList<>();
    for (String a : gpu.addresses()) {
      String address = a.trim();
      if (!address.matches("\\d{1,4}")) {
        throw new IllegalStateException("Spark assigned GPU address '" + address
            + "'; the discovery script must report CUDA device ordinals (0, 1, ...)");
      }
      out.add(address);
    }
    return out;
  }
}
