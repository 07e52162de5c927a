package io.sparkinfer.torchscript;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

/** copyRows writes the first slots of whole rows into chosen rows of a cache-shaped tensor and nothing else. */
class ScriptedTensorsTest {

  @Test
  void rowsGoToTheirTargetsUpToTheLengthAndNothingElseChanges() {
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      NDArray dst = m.arange(0f, 5 * 6 * 2 * 3).reshape(5, 6, 2, 3); // (B, C, K, D)
      NDArray before = dst.duplicate();
      NDArray src = m.randomNormal(new Shape(2, 4, 2, 3)); // (R, C', K, D)
      ScriptedTensors.copyRows(dst, m.create(new long[] {3, 1}), 4, src);
      assertThat(dst.get(new NDIndex("3, :4")).toFloatArray()).containsExactly(src.get(0).toFloatArray());
      assertThat(dst.get(new NDIndex("1, :4")).toFloatArray()).containsExactly(src.get(1).toFloatArray());
      assertThat(dst.get(new NDIndex("3, 4:")).toFloatArray()).as("slots past the length")
          .containsExactly(before.get(new NDIndex("3, 4:")).toFloatArray());
      for (int row : new int[] {0, 2, 4}) {
        assertThat(dst.get(row).toFloatArray()).as("row %d", row).containsExactly(before.get(row).toFloatArray());
      }
    }
  }

  @Test
  void oneSourceRowGoesToEveryTargetRow() {
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      NDArray dst = m.zeros(new Shape(4, 5, 1, 2));
      NDArray src = m.randomNormal(new Shape(1, 3, 1, 2)); // a shared prefix of 3 slots
      ScriptedTensors.copyRows(dst, m.create(new long[] {0, 2, 3}), 3, src);
      for (int row : new int[] {0, 2, 3}) {
        assertThat(dst.get(new NDIndex("{}, :3", row)).toFloatArray()).containsExactly(src.get(0).toFloatArray());
      }
      assertThat(dst.get(1).abs().sum().getFloat()).as("row 1 untouched").isZero();
      assertThat(dst.get(new NDIndex(":, 3:")).abs().sum().getFloat()).as("slots past the length").isZero();
    }
  }
}
