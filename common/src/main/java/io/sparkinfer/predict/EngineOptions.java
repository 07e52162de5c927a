package io.sparkinfer.predict;

import ai.djl.Device;
import ai.djl.engine.Engine;
import io.sparkinfer.model.Precision;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.Locale;

/**
 * What to load and where: a checkpoint directory, the precision, the device and the backend.
 *
 * @param modelDir a Hugging Face checkpoint directory
 * @param precision fp32, fp16 or bf16 (scripted backend only); null: fp32 on CPU, fp16 on GPU
 * @param device {@code cpu}, {@code gpu}, {@code gpu:N}, or {@code auto} (the first GPU when there is one)
 * @param backend {@code eager} (the Java model) or {@code scripted} (TorchScript step kernels); null: scripted
 *     on GPU, eager on CPU
 * @param ropeInCheckpointDtype round rotary frequencies to the checkpoint's dtype, as a transformers model
 *     cast with {@code model.to(dtype)} computes them (see {@link io.sparkinfer.model.RotaryEmbedding})
 * @param cudaGraphs let the scripted backend replay decode steps as CUDA graphs on a GPU (where the graphs
 *     library loads; see {@link io.sparkinfer.kernels.CudaGraphs})
 */
public record EngineOptions(String modelDir, Precision precision, String device, String backend,
    boolean ropeInCheckpointDtype, boolean cudaGraphs) implements Serializable {

  public static final String EAGER = "eager";
  /** {@code gpu:N}; whether GPU N exists is checked where the model loads. */
  private static final java.util.regex.Pattern GPU_INDEX = java.util.regex.Pattern.compile("gpu:[0-9]{1,4}");
  public static final String SCRIPTED = "scripted";

  public EngineOptions {
    if (modelDir == null || modelDir.isBlank()) {
      throw new IllegalArgumentException("a model directory is required");
    }
    device = device == null ? "auto" : device.toLowerCase(Locale.ROOT);
    if (!device.equals("cpu") && !device.equals("gpu") && !device.equals("auto") && !GPU_INDEX.matcher(device).matches()) {
      throw new IllegalArgumentException("device '" + device + "' is not one of cpu, gpu, gpu:N, auto");
    }
    backend = backend == null ? null : backend.toLowerCase(Locale.ROOT);
    if (backend != null && !backend.equals(EAGER) && !backend.equals(SCRIPTED)) {
      throw new IllegalArgumentException("backend '" + backend + "' is not supported (supported: eager, scripted)");
    }
  }

  /** Options with CUDA graphs on (used where the scripted backend runs on a GPU). */
  public EngineOptions(String modelDir, Precision precision, String device, String backend, boolean ropeInCheckpointDtype) {
    this(modelDir, precision, device, backend, ropeInCheckpointDtype, true);
  }

  public static EngineOptions of(Path modelDir, Precision precision, String device) {
    return new EngineOptions(modelDir.toString(), precision, device, null, false);
  }

  public EngineOptions withBackend(String name) {
    return new EngineOptions(modelDir, precision, device, name, ropeInCheckpointDtype, cudaGraphs);
  }

  public EngineOptions withRopeInCheckpointDtype(boolean round) {
    return new EngineOptions(modelDir, precision, device, backend, round, cudaGraphs);
  }

  public EngineOptions withCudaGraphs(boolean on) {
    return new EngineOptions(modelDir, precision, device, backend, ropeInCheckpointDtype, on);
  }

  /** The DJL device this names, resolving {@code auto} against the GPUs the engine sees. */
  public Device resolveDevice() {
    return parseDevice(device, Engine.getEngine("PyTorch").getGpuCount());
  }

  /** The precision to load in: the given one, else fp16 on GPU and fp32 on CPU. */
  public Precision resolvePrecision(Device d) {
    return precision != null ? precision : d.isGpu() ? Precision.FP16 : Precision.FP32;
  }

  /**
   * The backend to run: the given one, else scripted on GPU (one call per step) and for bf16 (which only it
   * computes in), eager otherwise on CPU.
   */
  public String resolveBackend(Device d) {
    return backend != null ? backend : d.isGpu() || resolvePrecision(d) == Precision.BF16 ? SCRIPTED : EAGER;
  }

  static Device parseDevice(String device, int gpuCount) {
    switch (device) {
      case "cpu":
        return Device.cpu();
      case "auto":
        return gpuCount > 0 ? Device.gpu(0) : Device.cpu();
      case "gpu":
        return requireGpu(0, gpuCount);
      default:
        if (GPU_INDEX.matcher(device).matches()) {
          return requireGpu(Integer.parseInt(device.substring(4)), gpuCount);
        }
        throw new IllegalArgumentException("device '" + device + "' is not one of cpu, gpu, gpu:N, auto");
    }
  }

  private static Device requireGpu(int index, int gpuCount) {
    if (index < 0 || index >= gpuCount) {
      throw new IllegalArgumentException("GPU " + index + " requested but the engine sees " + gpuCount + " GPU(s)");
    }
    return Device.gpu(index);
  }
}
