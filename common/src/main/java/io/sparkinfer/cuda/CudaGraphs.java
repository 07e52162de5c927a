package io.sparkinfer.cuda;

import ai.djl.Device;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * CUDA graphs and per-thread CUDA streams through libtorch's {@code at::cuda::CUDAGraph}, which DJL does
 * not expose: a small JNI library ({@code src/main/native/cuda_graphs.cpp}, built by Maven into the jar)
 * calls it in the libtorch that DJL has loaded.
 *
 * <p>A captured graph replays every kernel of a step with one launch, so a decode step no longer costs
 * the TorchScript interpreter's ~1,000 kernel launches. It replays on the tensors it was captured with:
 * inputs are copied into fixed tensors before each replay, and its outputs are overwritten by the next.
 *
 * <p>Graphs need a GPU, linux-x86_64, libtorch 2.5.x and the library in the jar (built where g++ was
 * present); {@link #unavailableReason()} says which is missing, and callers then run without graphs.
 */
public final class CudaGraphs {

  private static final Logger LOG = LoggerFactory.getLogger(CudaGraphs.class);
  public static final String LIBRARY = "/native/linux-x86_64/libsparkinfer_cuda_graphs.so";

  private static final Object CAPTURE_LOCK = new Object();
  private static final ThreadLocal<Integer> THREAD_STREAM_DEVICE = new ThreadLocal<>();
  private static volatile Optional<String> unavailable;
  private static volatile boolean libraryLoaded;

  private CudaGraphs() {}

  /**
   * Why graphs cannot be used in this process, or empty when they can. Loads the library on first use;
   * call it only after the PyTorch engine has loaded (it looks for libtorch's CUDA libraries).
   */
  public static Optional<String> unavailableReason() {
    Optional<String> reason = unavailable;
    if (reason == null) {
      synchronized (CudaGraphs.class) {
        reason = unavailable;
        if (reason == null) {
          reason = Optional.ofNullable(load());
          unavailable = reason;
          reason.ifPresent(r -> LOG.info("CUDA graphs are off: {}", r));
        }
      }
    }
    return reason;
  }

  private static String load() {
    String arch = System.getProperty("os.name") + "-" + System.getProperty("os.arch");
    if (!arch.equals("Linux-amd64")) {
      return "only linux-x86_64 is supported (this is " + arch + ")";
    }
    try (InputStream in = CudaGraphs.class.getResourceAsStream(LIBRARY)) {
      if (in == null) {
        return "the jar has no " + LIBRARY + " (it was built without g++)";
      }
      Path file = Files.createTempFile("sparkinfer_cuda_graphs", ".so");
      file.toFile().deleteOnExit();
      Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
      System.load(file.toString());
      libraryLoaded = true;
      return init();
    } catch (IOException | UnsatisfiedLinkError e) {
      return "cannot load " + LIBRARY + ": " + e.getMessage();
    }
  }

  /**
   * Whether the JNI library is loaded (also on a CPU-only libtorch, where graphs are off), so that its
   * functions that need no GPU ({@link CudaKernels#dataPtr}) can be called. Loads it on first use.
   */
  public static boolean libraryLoaded() {
    unavailableReason();
    return libraryLoaded;
  }

  /**
   * Makes a stream of libtorch's pool the calling thread's current CUDA stream (once per thread; waits
   * for the device first, so work this thread queued on the default stream is done). Graphs are captured
   * on it, and decode threads on streams of their own overlap on the GPU.
   */
  public static void useThreadStream(Device device) {
    Integer bound = THREAD_STREAM_DEVICE.get();
    if (bound != null && bound == device.getDeviceId()) {
      return;
    }
    synchronized (CAPTURE_LOCK) { // waiting for the device must not meet another thread's capture
      useStreamFromPool(device.getDeviceId());
    }
    THREAD_STREAM_DEVICE.set(device.getDeviceId());
  }

  /** One CUDA graph: captured once on the calling thread's stream, then replayed there. */
  public static final class Graph implements AutoCloseable {
    private long handle;

    public Graph() {
      this.handle = create();
    }

    /**
     * Records the kernels that {@code work} queues on the calling thread's stream instead of running them;
     * what {@code work} returns lives in the graph's memory and is what each {@link #replay()} overwrites.
     * Nothing in {@code work} may wait on the device. Captures are serialised across threads, and a thread
     * moving to its own stream waits for them (see {@link #useThreadStream}).
     *
     * @param sharePoolOf a graph whose memory pool this capture allocates from (graphs replayed one at a
     *     time on one stream may share one), or null for a pool of its own
     */
    public <T> T capture(Graph sharePoolOf, Supplier<T> work) {
      synchronized (CAPTURE_LOCK) {
        long[] pool = sharePoolOf == null ? new long[] {0, 0} : pool(sharePoolOf.handle);
        captureBegin(handle, pool[0], pool[1]);
        T result;
        try {
          result = work.get();
        } catch (RuntimeException e) {
          try {
            captureEnd(handle); // ends the (now invalid) capture on the stream
          } catch (RuntimeException ended) {
            e.addSuppressed(ended);
          }
          throw e;
        }
        captureEnd(handle);
        return result;
      }
    }

    /**
     * Runs the captured kernels again on the calling thread's stream. Serialised with captures: a replay
     * updates libtorch's per-device RNG state, which must not change while another thread captures.
     */
    public void replay() {
      synchronized (CAPTURE_LOCK) {
        CudaGraphs.replay(handle);
      }
    }

    @Override
    public void close() {
      if (handle != 0) {
        long h = handle;
        handle = 0;
        destroy(h);
      }
    }
  }

  private static native String init();

  private static native void useStreamFromPool(int device);

  private static native long create();

  private static native void captureBegin(long graph, long poolFirst, long poolSecond);

  private static native void captureEnd(long graph);

  private static native void replay(long graph);

  private static native long[] pool(long graph);

  private static native void destroy(long graph);
}
