package io.sparkinfer.jobs;

import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.engine.EngineOptions;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * libtorch's CPU threads in a job's JVM. Where the engines run on a GPU, libtorch gives each CPU op one thread, as
 * {@code conf/local.properties} has executors and a cluster-mode driver do through their JVM options: a local run's
 * driver is already running when that file is read, so its engines kept libtorch's default, a thread per core for
 * every op, and Spark's tasks (the planning tasks' tokenizing, while the engines load) then ran slower beside them.
 * On one H200 (16 cores) the fp8 job was 2.0% faster with one thread per op, in each of six alternated rounds
 * ({@code bench/results/2026-12-03-e2e-NVIDIA-H200-run36}, {@code run37}, the setting as JVM options), and this class
 * 1.6% faster than 16 threads an op in both rounds of {@code run38}. The JVM's own setting
 * ({@code -Dai.djl.pytorch.num_threads}) wins; engines on the CPU keep libtorch's default, as their generator is one
 * thread feeding libtorch.
 *
 * <p>libtorch's count is per thread, taken from the process-wide one at a thread's first parallel op: set before the
 * first engine loads, as DJL sets it at its start from those JVM options, it holds for every thread that runs libtorch
 * ops after (the load's own thread, the generators': {@code LibtorchThreadsTest}). CPU matrix products may keep
 * threads of their own (MKL's).
 */
final class LibtorchThreads {

  private static final Logger LOG = LoggerFactory.getLogger(LibtorchThreads.class);

  private static final String THREADS = "ai.djl.pytorch.num_threads";
  private static final String INTEROP_THREADS = "ai.djl.pytorch.num_interop_threads";

  private static final AtomicBoolean DECIDED = new AtomicBoolean();

  private LibtorchThreads() {}

  /** Once per JVM, before its first engine loads: one thread per CPU op when {@code options} run on a GPU. */
  static void beforeFirstLoad(EngineOptions options) {
    if (DECIDED.compareAndSet(false, true)) {
      oneThreadPerOp(onGpu(options), System.getProperty(THREADS), System.getProperty(INTEROP_THREADS));
    }
  }

  /**
   * Gives libtorch's CPU ops one thread when the engines run on a GPU and the JVM's options set no thread count
   * ({@code threadsSetting}, {@code interopSetting}: their values, null when unset); whether it did. The inter-op pool
   * can be sized only before its first use, and is left as it is after.
   */
  static boolean oneThreadPerOp(boolean onGpu, String threadsSetting, String interopSetting) {
    if (!onGpu || threadsSetting != null) {
      return false;
    }
    JniUtils.setNumThreads(1);
    if (interopSetting == null) {
      try {
        JniUtils.setNumInteropThreads(1);
      } catch (RuntimeException e) { // EngineException: the pool has run
        LOG.debug("libtorch's inter-op threads stay as they are: {}", e.toString());
      }
    }
    LOG.info("libtorch's CPU ops run on one thread each: the engines run on a GPU, Spark's tasks on the cores "
        + "(-D{}=N sets another count)", THREADS);
    return true;
  }

  /** Whether the engines of {@code options} run on a GPU; false where the device cannot be resolved (the load says why). */
  private static boolean onGpu(EngineOptions options) {
    try {
      return options.resolveDevice().isGpu();
    } catch (RuntimeException e) {
      return false;
    }
  }
}
