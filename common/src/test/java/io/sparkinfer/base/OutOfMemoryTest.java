package io.sparkinfer.base;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class OutOfMemoryTest {

  @Test
  void aDeviceOrJvmRunningOutOfMemoryIsFoundThroughCauses() {
    assertThat(OutOfMemory.causedBy(new RuntimeException("CUDA out of memory. Tried to allocate 2.00 GiB"))).isTrue();
    assertThat(OutOfMemory.causedBy(new IllegalStateException("step failed",
        new RuntimeException("CUDA Out Of Memory")))).as("in a cause, any case").isTrue();
    assertThat(OutOfMemory.causedBy(new RuntimeException(new OutOfMemoryError("Java heap space")))).isTrue();
    assertThat(OutOfMemory.causedBy(new RuntimeException("illegal memory access"))).isFalse();
    assertThat(OutOfMemory.causedBy(new RuntimeException((String) null))).isFalse();
    assertThat(OutOfMemory.says("out of memory at batch width 8")).isTrue();
    assertThat(OutOfMemory.says(null)).isFalse();
  }
}
