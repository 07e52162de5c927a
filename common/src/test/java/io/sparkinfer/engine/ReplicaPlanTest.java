package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import io.sparkinfer.layout.Layout;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Laying a layout over a task's devices: which devices each replica takes, and what each engine loads. */
class ReplicaPlanTest {

  private static final List<Device> FOUR_GPUS = List.of(Device.gpu(0), Device.gpu(1), Device.gpu(2), Device.gpu(3));

  @Test
  void replicasTakeConsecutiveDevicesStagesThenShards() {
    assertThat(ReplicaPlan.assign(Layout.parse("replicas=2,tp=2"), FOUR_GPUS))
        .containsExactly(List.of(Device.gpu(0), Device.gpu(1)), List.of(Device.gpu(2), Device.gpu(3)));
    assertThat(ReplicaPlan.assign(Layout.parse("replicas=4"), FOUR_GPUS)).extracting(l -> l.get(0))
        .containsExactlyElementsOf(FOUR_GPUS);
    assertThat(ReplicaPlan.assign(Layout.parse("replicas=2,pp=2"), List.of(Device.gpu(5))))
        .as("one device for checks: everything shares it")
        .containsExactly(List.of(Device.gpu(5), Device.gpu(5)), List.of(Device.gpu(5), Device.gpu(5)));
    assertThat(ReplicaPlan.label(List.of(Device.gpu(2), Device.gpu(3)))).isEqualTo("gpu:2,3");
    assertThat(ReplicaPlan.label(List.of(Device.cpu()))).isEqualTo("cpu");
  }

  @Test
  void eachReplicaLoadsOneCopyOnItsDevicesWithoutTheThreads() {
    EngineOptions options = EngineOptions.of(Fixtures.model("qwen2-tiny"), Precision.FP32, "cpu")
        .with(EngineOptions.LAYOUT, Layout.parse("replicas=2,tp=2,threads=3"));
    ReplicaPlan plan = ReplicaPlan.of(options);
    assertThat(plan.layout().label()).isEqualTo("replicas=2,tp=2,pp=1,threads=3");
    assertThat(plan.replicas()).hasSize(2).allSatisfy(r -> {
      assertThat(r.device()).isEqualTo("cpu");
      assertThat(r.layout().label()).isEqualTo("replicas=1,tp=2,pp=1,threads=1");
      assertThat(r.precision()).isEqualTo(Precision.FP32);
    });
    assertThat(plan.replicas().get(0)).as("replicas on one device are one engine").isEqualTo(plan.replicas().get(1));
    assertThat(plan.generators()).isEqualTo(6);
    assertThat(plan.generatorsPerDevice()).as("every generator shares the CPU").isEqualTo(6);
    assertThat(ReplicaPlan.of(options.with(EngineOptions.LAYOUT, Layout.AUTO)).layout())
        .as("auto on a CPU: one replica").isEqualTo(Layout.SINGLE);
  }

  @Test
  void aLayoutTheModelCannotTakeFailsBeforeLoading() {
    EngineOptions options = EngineOptions.of(Fixtures.bundled("mistral-tiny"), Precision.FP32, "cpu");
    assertThatThrownBy(() -> ReplicaPlan.of(options.with(EngineOptions.LAYOUT, Layout.parse("replicas=2,tp=2"))))
        .hasMessageContaining("tp=2 must divide the query heads (4) and the key/value heads (1)");
  }
}
