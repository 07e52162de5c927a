package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;
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
