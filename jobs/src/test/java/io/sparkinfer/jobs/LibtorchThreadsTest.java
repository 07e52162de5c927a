package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * libtorch's CPU threads in a job's JVM ({@link LibtorchThreads}): one per op where the engines run on a GPU, unless the
 * JVM's options set a count; engines on the CPU keep theirs. Each case starts from two threads per op, and the
 * suite's own count (its JVM options') is put back after.
 */
class LibtorchThreadsTest {

  private int suiteThreads;

  @BeforeEach
  void twoThreadsPerOp() {
    Engine.getEngine("PyTorch"); // loads libtorch
    suiteThreads = JniUtils.getNumThreads();
    JniUtils.setNumThreads(2);
  }

  @AfterEach
  void suiteCountBack() {
    JniUtils.setNumThreads(suiteThreads);
  }

  @Test
  void enginesOnAGpuGiveEachOpOneThread() {
    assertThat(LibtorchThreads.oneThreadPerOp(true, null, null)).isTrue();
    assertThat(JniUtils.getNumThreads()).isEqualTo(1);
  }

  /** The count is per thread: one started after the call (a generator's) takes it at its first op. */
  @Test
  void aThreadStartedAfterTakesTheCount() throws Exception {
    LibtorchThreads.oneThreadPerOp(true, null, null);
    AtomicInteger seen = new AtomicInteger();
    Thread generator = new Thread(() -> {
      try (NDManager manager = NDManager.newBaseManager()) {
        manager.ones(new Shape(64, 64)).exp().sum().getFloat(); // its first parallel op
        seen.set(JniUtils.getNumThreads());
      }
    });
    generator.start();
    generator.join(60_000);
    assertThat(seen.get()).as("the later thread's count").isEqualTo(1);
  }

  @Test
  void theJvmsOwnSettingWins() {
    assertThat(LibtorchThreads.oneThreadPerOp(true, "2", null)).isFalse();
    assertThat(JniUtils.getNumThreads()).isEqualTo(2);
  }

  @Test
  void enginesOnTheCpuKeepTheirThreads() {
    assertThat(LibtorchThreads.oneThreadPerOp(false, null, null)).isFalse();
    assertThat(JniUtils.getNumThreads()).isEqualTo(2);
  }

  @Test
  void anInterOpPoolAlreadyInUseIsLeftAsItIs() {
    int interop = JniUtils.getNumInteropThreads();
    assertThat(LibtorchThreads.oneThreadPerOp(true, null, null)).isTrue(); // no exception where the pool has run
    assertThat(JniUtils.getNumThreads()).isEqualTo(1);
    assertThat(JniUtils.getNumInteropThreads()).isIn(1, interop);
  }
}
