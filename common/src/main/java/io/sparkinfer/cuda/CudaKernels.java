package io.sparkinfer.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Our own CUDA kernels ({@code decode_kernels.cu}), compiled at run time with NVRTC and launched on
 * libtorch's current stream through the same JNI library as {@link CudaGraphs}
 * ({@code src/main/native/cuda_kernels.cpp}). Launched during a capture, they become part of the graph.
 *
 * <p>Kernel parameters are 8 bytes each: device addresses ({@link #dataPtr}), {@code long long}, or a
 * {@code double}'s bits ({@link #bits}).
 */
public final class CudaKernels {

  private static final Logger LOG = LoggerFactory.getLogger(CudaKernels.class);
  private static volatile Optional<String> unavailable;

  private CudaKernels() {}

  /**
   * Why kernels cannot be compiled and launched in this process (no GPU libtorch, no NVRTC, no driver), or
   * empty when they can. Call it only after the PyTorch engine has loaded.
   */
  public static Optional<String> unavailableReason() {
    Optional<String> reason = unavailable;
    if (reason == null) {
      synchronized (CudaKernels.class) {
        reason = unavailable;
        if (reason == null) {
          reason = CudaGraphs.unavailableReason().map(r -> "the JNI library cannot be used: " + r)
              .or(() -> Optional.ofNullable(init()));
          unavailable = reason;
          reason.ifPresent(r -> LOG.info("our CUDA kernels are off: {}", r));
        }
      }
    }
    return reason;
  }

  /** The address of the array's first element on its device (a PyTorch NDArray; any device). */
  public static long dataPtr(NDArray array) {
    if (!CudaGraphs.libraryLoaded()) {
      throw new IllegalStateException("the JNI library is not loaded: " + CudaGraphs.unavailableReason().orElse(""));
    }
    return dataPtr(((PtNDArray) array).getHandle());
  }

  /** A double kernel parameter as the 8 bytes a launch passes. */
  public static long bits(double value) {
    return Double.doubleToRawLongBits(value);
  }

  /**
   * The compute capability of a GPU as major * 10 + minor (90 for an H100 or H200), from the architecture NVRTC
   * compiles for ({@code sm_90}); the kernels must be available ({@link #unavailableReason()}).
   */
  public static int computeCapability(Device device) {
    String architecture = architecture(device.getDeviceId());
    Matcher m = Pattern.compile("sm_(\\d+)[a-z]?").matcher(architecture == null ? "" : architecture);
    if (!m.matches()) {
      throw new IllegalStateException("unexpected GPU architecture name: " + architecture);
    }
    return Integer.parseInt(m.group(1));
  }

  /** Compiled kernels, loaded on one device; unloaded on close. */
  public static final class Module implements AutoCloseable {
    private final int device;
    private final boolean fromCache;
    private long handle;

    /**
     * Compiles {@code source} for {@code device}'s architecture, or takes the CUBIN {@code cache} kept from an earlier
     * compile of the same source and options for the same architecture and NVRTC.
     *
     * @param options NVRTC options, e.g. {@code -DNAME=VALUE}
     * @throws RuntimeException with NVRTC's log when the source does not compile
     */
    public Module(String source, List<String> options, Device device, CubinCache cache) {
      Optional<String> off = unavailableReason();
      if (off.isPresent()) {
        throw new IllegalStateException("CUDA kernels are off: " + off.get());
      }
      this.device = device.getDeviceId();
      String architecture = architecture(this.device);
      CubinCache.Key key = CubinCache.Key.of(source, options, architecture, compilerVersion());
      Supplier<byte[]> compiler = () -> compile(source, options.toArray(new String[0]), architecture);
      long started = System.nanoTime();
      CubinCache.Cubin cubin = cache.get(key, compiler);
      long loaded;
      try {
        loaded = load(cubin.bytes(), this.device);
      } catch (RuntimeException e) {
        if (!cubin.cached()) {
          throw e;
        }
        LOG.info("compiling our CUDA kernels again: the driver refused the cached ones ({})", e.getMessage());
        cubin = cache.replace(key, compiler);
        loaded = load(cubin.bytes(), this.device);
      }
      this.handle = loaded;
      this.fromCache = cubin.cached();
      LOG.debug("our CUDA kernels for {} {} in {} ms", architecture, cubin.cached() ? "from the cache" : "compiled",
          (System.nanoTime() - started) / 1_000_000);
    }

    /** Whether the CUBIN came from the cache rather than NVRTC. */
    public boolean fromCache() {
      return fromCache;
    }

    /** The kernel named {@code name} (an {@code extern "C"} function of the source). */
    public Kernel kernel(String name) {
      return new Kernel(name, function(handle, name), device);
    }

    @Override
    public void close() {
      if (handle != 0) {
        long h = handle;
        handle = 0;
        unload(h);
      }
    }
  }

  /** One kernel of a {@link Module}; valid while the module is open. */
  public record Kernel(String name, long function, int device) {

    /**
     * Queues the kernel on libtorch's current stream of its device.
     *
     * @param grid blocks in x, y, z
     * @param block threads in x, y, z
     * @param args one value per kernel parameter
     */
    public void launch(int[] grid, int[] block, long... args) {
      CudaKernels.launch(function, device, new int[] {grid[0], grid[1], grid[2], block[0], block[1], block[2]}, args);
    }
  }

  private static native String init();

  private static native long dataPtr(long tensorHandle);

  /** The device's architecture as NVRTC names it ("sm_90"); kernels must be available ({@link #unavailableReason}). */
  static native String architecture(int device);

  /** NVRTC's version ("12.4"); kernels must be available. */
  static native String compilerVersion();

  private static native byte[] compile(String source, String[] options, String architecture);

  private static native long load(byte[] cubin, int device);

  private static native long function(long module, String name);

  private static native void unload(long module);

  private static native void launch(long function, int device, int[] dims, long[] args);
}
