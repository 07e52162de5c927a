package io.sparkinfer.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * bf16 tensors widened to float32 on their GPU from their bits ({@code TensorLoader.loadBf16Bits}), by one kernel
 * ({@code bf16_bits.cu}). Loading a bf16 checkpoint this way copies 2 bytes a value to the device and converts nothing
 * on the host, where widening on the host writes and copies 4 (and takes the CPU a Spark task needs meanwhile).
 */
public final class Bf16Bits {

  static final String SOURCE = "/io/sparkinfer/cuda/bf16_bits.cu";
  private static final int THREADS = 256;
  /** One compiled module per device, for the JVM's life (a few hundred bytes of code). */
  private static final Map<Integer, CudaKernels.Kernel> KERNELS = new ConcurrentHashMap<>();
  private static final Set<Integer> FAILED = ConcurrentHashMap.newKeySet();
  private static final Logger LOG = LoggerFactory.getLogger(Bf16Bits.class);

  private Bf16Bits() {}

  /**
   * Whether {@link #toFloat32} can run on {@code device}: a GPU, with our CUDA kernels available and this one
   * compiled (a failure is logged once and the caller widens on the host). The first call for a device compiles the
   * kernel, or takes it from {@code cache}.
   */
  public static boolean available(Device device, CubinCache cache) {
    if (!device.isGpu() || CudaKernels.unavailableReason().isPresent()) {
      return false;
    }
    try {
      KERNELS.computeIfAbsent(device.getDeviceId(),
          id -> new CudaKernels.Module(source(), List.of(), device, cache).kernel("bf16_bits_to_float"));
      return true;
    } catch (RuntimeException e) {
      if (FAILED.add(device.getDeviceId())) {
        LOG.warn("bf16 weights are widened on the host: {}", e.getMessage());
      }
      return false;
    }
  }

  /**
   * The float32 values of {@code bits}, a tensor of bf16 bit patterns carried in a 16-bit array (any DJL dtype of
   * width 2) on a GPU: a new float32 array of its shape on its manager. {@link #available} must have said yes for its
   * device.
   */
  public static NDArray toFloat32(NDArray bits) {
    if (bits.getDataType().getNumOfBytes() != 2) {
      throw new IllegalArgumentException("bf16 bits come in a 16-bit array, not " + bits.getDataType());
    }
    long n = bits.size();
    NDArray out = bits.getManager().create(bits.getShape(), DataType.FLOAT32);
    if (n > 0) {
      int blocks = Math.toIntExact((n + THREADS - 1) / THREADS);
      kernel(bits.getDevice()).launch(new int[] {blocks, 1, 1}, new int[] {THREADS, 1, 1}, CudaKernels.dataPtr(bits),
          CudaKernels.dataPtr(out), n);
    }
    return out;
  }

  private static CudaKernels.Kernel kernel(Device device) {
    CudaKernels.Kernel k = KERNELS.get(device.getDeviceId());
    if (k == null) {
      throw new IllegalStateException("the bf16 kernel is not compiled for " + device + ": ask available() first");
    }
    return k;
  }

  private static String source() {
    try (InputStream in = Bf16Bits.class.getResourceAsStream(SOURCE)) {
      if (in == null) {
        throw new IllegalStateException("kernel source " + SOURCE + " is missing from the classpath");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
