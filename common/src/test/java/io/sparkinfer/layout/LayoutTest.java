package io.sparkinfer.layout;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.model.ModelConfig;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/** Parsing, checks against the model and the devices, stage splits and what auto picks. */
class LayoutTest {

  /** A config with {@code heads} query heads over {@code kv} key/value heads and {@code layers} layers. */
  static ModelConfig config(int heads, int kv, int layers, int intermediate) {
    return ModelConfig.parse(String.format(Locale.ROOT, """
        {"model_type": "llama", "vocab_size": 1000, "hidden_size": %d, "intermediate_size": %d,
         "num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d,
         "max_position_embeddings": 128}""", heads * 16, intermediate, layers, heads, kv));
  }

  @Test
  void parsesAnySubsetOfItsKeysAndWritesItBack() {
    assertThat(Layout.parse("tp=2")).isEqualTo(new Layout(1, 2, 1, 1, false));
    assertThat(Layout.parse(" replicas=2, pp=3 ,threads=2")).isEqualTo(new Layout(2, 1, 3, 2, false));
    assertThat(Layout.parse("AUTO").auto()).isTrue();
    Layout l = Layout.parse("replicas=2,tp=2,pp=2,threads=1");
    assertThat(Layout.parse(l.label())).as("label reads back").isEqualTo(l);
    assertThat(l.devicesPerReplica()).isEqualTo(4);
    assertThat(l.perReplica()).isEqualTo(new Layout(1, 2, 2, 1, false));
    assertThat(Layout.SINGLE.isSharded()).isFalse();
    assertThatThrownBy(() -> Layout.parse("tp=two")).hasMessageContaining("must give tp as an integer");
    assertThatThrownBy(() -> Layout.parse("dp=2")).hasMessageContaining("must be auto or replicas=R,tp=T,pp=P,threads=N");
    assertThatThrownBy(() -> Layout.parse("tp=2,tp=4")).hasMessageContaining("must name tp once");
    assertThatThrownBy(() -> Layout.parse("tp=0")).hasMessageContaining("tp must be in [1, 64], got 0");
  }

  @Test
  void validationNamesTheNumbersThatDoNotFit() {
    ModelConfig c = config(12, 2, 28, 8960); // Qwen2-1.5B's heads and layers
    new Layout(1, 2, 1, 1, false).validate(c, 2, true);
    new Layout(2, 1, 2, 1, false).validate(c, 4, true);
    new Layout(1, 2, 2, 1, false).validate(c, 1, true); // every shard on one GPU: for checks
    new Layout(1, 2, 2, 1, false).validate(c, 1, false); // on the CPU
    assertThatThrownBy(() -> new Layout(1, 2, 1, 1, false).validate(c, 4, true))
        .hasMessageContaining("needs replicas * tp * pp = 2 GPUs, but 4 are at hand");
    assertThatThrownBy(() -> new Layout(1, 4, 1, 1, false).validate(c, 4, true))
        .hasMessageContaining("tp=4 must divide the query heads (12) and the key/value heads (2)");
    assertThatThrownBy(() -> new Layout(1, 1, 29, 1, false).validate(c, 1, false))
        .hasMessageContaining("pp=29 stages need at least as many layers, the model has 28");
    assertThatThrownBy(() -> new Layout(1, 2, 1, 1, false).validate(config(4, 2, 2, 81), 1, false))
        .hasMessageContaining("tp=2 must divide the MLP width (intermediate_size 81)");
    assertThatThrownBy(() -> new Layout(1, 1, 1, 8, false).validate(c, 1, true))
        .hasMessageContaining("runs 8 decode threads on a GPU, more than 4");
    new Layout(1, 1, 1, 8, false).validate(c, 1, false); // threads on a CPU are the CPU's business
  }

  @Test
  void stagesSplitTheLayersAsEvenlyAsPossible() {
    assertThat(new Layout(1, 1, 2, 1, false).stageLayers(5)).containsExactly(new int[] {0, 3}, new int[] {3, 5});
    assertThat(new Layout(1, 1, 3, 1, false).stageLayers(28))
        .containsExactly(new int[] {0, 10}, new int[] {10, 19}, new int[] {19, 28});
    assertThat(new Layout(1, 1, 1, 1, false).stageLayers(7)).containsExactly(new int[] {0, 7});
  }

  @Test
  void autoTakesTheFewestDevicesThatHoldTheWeightsAndReplicatesOnTheRest() {
    ModelConfig c = config(12, 2, 28, 8960);
    long gib = 1L << 30;
    assertThat(Layout.AUTO.resolve(c, 4, 3 * gib, 80 * gib)).as("fits one: a replica per GPU")
        .isEqualTo(new Layout(4, 1, 1, 1, false));
    assertThat(Layout.AUTO.resolve(c, 4, 100 * gib, 80 * gib)).as("two GPUs a replica, two replicas")
        .isEqualTo(new Layout(2, 1, 2, 1, false));
    assertThat(Layout.AUTO.resolve(c, 1, 3 * gib, 0)).as("a CPU").isEqualTo(Layout.SINGLE);
    assertThatThrownBy(() -> Layout.AUTO.resolve(c, 2, 500 * gib, 80 * gib)).hasMessageContaining("do not fit 2 devices");
    assertThat(Layout.parse("tp=2").resolve(c, 4, 1, 1)).as("only auto is resolved").isEqualTo(Layout.parse("tp=2"));
  }
}
