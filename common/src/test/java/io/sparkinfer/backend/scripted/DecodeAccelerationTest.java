package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import org.junit.jupiter.api.Test;

/** What a failed fused prefill step does to the backend: out of memory goes to the caller, anything else turns it off. */
class DecodeAccelerationTest {

  @Test
  void aFusedPrefillFailureTurnsItOffButOutOfMemoryIsRethrownAndTurnsNothingOff() {
    EngineOptions options = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu")
        .with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine engine = LlmEngine.load(options)) {
      DecodeAcceleration a = ((ScriptedCausalLm) engine.newGenerator().backend()).acceleration();
      String before = a.fusedPrefillOffReason();
      RuntimeException oom = new RuntimeException("CUDA out of memory. Tried to allocate 1.00 GiB");
      assertThatThrownBy(() -> a.fusedPrefillFailed(oom)).isSameAs(oom);
      assertThat(a.fusedPrefillOffReason()).as("unchanged").isEqualTo(before);
      a.fusedPrefillFailed(new RuntimeException("an illegal memory access\nat the kernel"));
      assertThat(a.fusedPrefillOffReason()).as("its first line").isEqualTo("fused prefill failed: an illegal memory access");
      assertThat(a.prefillKernels()).isNull();
    }
  }
}
