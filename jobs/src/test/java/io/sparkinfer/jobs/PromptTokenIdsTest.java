package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.junit.jupiter.api.Test;

/** Planning's token ids in their binary column ({@link PromptTokenIds}): 4 bytes an id, little-endian. */
class PromptTokenIdsTest {

  @Test
  void idsComeBackAsTheyWent() {
    long[] ids = {0, 1, 255, 256, 151_935, Integer.MAX_VALUE};
    byte[] column = PromptTokenIds.toColumn(ids);
    assertThat(column).hasSize(4 * ids.length);
    assertThat(column).startsWith(0, 0, 0, 0, 1, 0, 0, 0, (byte) 255, 0, 0, 0, 0, 1, 0, 0);
    assertThat(PromptTokenIds.fromColumn(RowFactory.create("a", column), 1)).containsExactly(ids);
    assertThat(PromptTokenIds.fromColumn(RowFactory.create("a", PromptTokenIds.toColumn(new long[0])), 1)).isEmpty();
  }

  @Test
  void aNullFieldIsNullAndABrokenOneIsRefused() {
    assertThat(PromptTokenIds.fromColumn(RowFactory.create("a", null), 1)).isNull();
    Row broken = RowFactory.create("a", new byte[] {1, 2, 3});
    assertThatThrownBy(() -> PromptTokenIds.fromColumn(broken, 1)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("3 bytes");
    assertThatThrownBy(() -> PromptTokenIds.toColumn(new long[] {1L << 40})).isInstanceOf(ArithmeticException.class);
  }
}
