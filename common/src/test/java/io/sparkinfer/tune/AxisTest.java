package io.sparkinfer.tune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** An axis read from its text: lists, linear and log ranges, their grids, the unit interval's mapping, errors. */
class AxisTest {

  static List<String> longs(long... values) {
    List<String> out = new ArrayList<>();
    for (long v : values) {
      out.add(Long.toString(v));
    }
    return out;
  }

  @Test
  void parsesAListOfNumbersOrWordsInTheGivenOrder() {
    Axis numbers = Axis.parse("batch-size", "1,4,16");
    assertThat(numbers.isRange()).isFalse();
    assertThat(numbers.values()).containsExactly("1", "4", "16");
    assertThat(numbers.grid()).containsExactly("1", "4", "16");
    Axis words = Axis.parse("precision", " fp16 , bf16 ");
    assertThat(words.values()).as("values are trimmed").containsExactly("fp16", "bf16");
    assertThat(Axis.parse("threads", "4").values()).as("one value is a list of one").containsExactly("4");
    assertThat(Axis.parse("threads", "1,,2,").values()).as("blank entries are dropped").containsExactly("1", "2");
  }

  @Test
  void parsesALinearRangeWhoseGridIsEveryInteger() {
    Axis a = Axis.parse("threads", "1..8");
    assertThat(a.isRange()).isTrue();
    assertThat(a.lo()).isEqualTo(1);
    assertThat(a.hi()).isEqualTo(8);
    assertThat(a.scale()).isEqualTo(Axis.Scale.LINEAR);
    assertThat(a.values()).isEmpty();
    assertThat(a.grid()).containsExactlyElementsOf(longs(1, 2, 3, 4, 5, 6, 7, 8));
    assertThat(Axis.parse("threads", " 2 .. 4 : linear ").grid()).containsExactly("2", "3", "4");
    assertThat(Axis.parse("offset", "-2..1").grid()).as("negative ends").containsExactly("-2", "-1", "0", "1");
    assertThat(Axis.parse("threads", "5..5").grid()).as("a range of one value").containsExactly("5");
  }

  @Test
  void aLogRangeGridTakesThePowersOfTwoInsideItAndItsEnds() {
    Axis a = Axis.parse("batch-size", "1..1024:log");
    assertThat(a.scale()).isEqualTo(Axis.Scale.LOG);
    assertThat(a.grid()).containsExactlyElementsOf(longs(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024));
    assertThat(Axis.parse("batch-size", "3..100:log").grid()).as("the ends, and the powers of two between")
        .containsExactlyElementsOf(longs(3, 4, 8, 16, 32, 64, 100));
    assertThat(Axis.parse("batch-size", "4..16:log").grid()).as("power-of-two ends appear once")
        .containsExactly("4", "8", "16");
    assertThat(Axis.parse("batch-size", "5..7:log").grid()).as("no power of two inside").containsExactly("5", "7");
    assertThat(Axis.parse("batch-size", "8..8:log").grid()).containsExactly("8");
    assertThat(Axis.parse("batch-size", "1..1024:LOG").scale()).isEqualTo(Axis.Scale.LOG);
    assertThat(Axis.parse("batch-size", "1..1024:log2").scale()).isEqualTo(Axis.Scale.LOG);
  }

  @Test
  void aLinearRangeTooLongForAGridSaysSo() {
    Axis a = Axis.parse("prompt-len", "1..5000");
    assertThatThrownBy(a::grid).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("axis prompt-len").hasMessageContaining("1..5000")
        .hasMessageContaining("more than " + Axis.MAX_GRID);
    assertThat(Axis.parse("prompt-len", "1..4096").grid()).as("exactly MAX_GRID values is allowed")
        .hasSize(Axis.MAX_GRID);
    assertThat(Axis.parse("prompt-len", "1..5000:log").grid()).as("a log range of the same ends is short")
        .hasSize(14);
  }

  @Test
  void badSpecsNameTheAxisAndTheText() {
    assertThatThrownBy(() -> Axis.parse("threads", "8..1")).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("axis threads: range 8..1 is empty");
    assertThatThrownBy(() -> Axis.parse("batch-size", "0..1024:log"))
        .hasMessage("axis batch-size: a log range needs a positive lower end, got 0");
    assertThatThrownBy(() -> Axis.parse("batch-size", "-4..1024:log"))
        .hasMessageContaining("axis batch-size").hasMessageContaining("got -4");
    assertThatThrownBy(() -> Axis.parse("batch-size", "1..1024:cubic"))
        .hasMessage("axis batch-size: scale 'cubic' is not linear or log, in '1..1024:cubic'");
    assertThatThrownBy(() -> Axis.parse("batch-size", "1..8:"))
        .hasMessageContaining("axis batch-size: scale '' is not linear or log");
    assertThatThrownBy(() -> Axis.parse("threads", "1.5..8"))
        .hasMessage("axis threads: '1.5..8' is not LO..HI with integer ends");
    assertThatThrownBy(() -> Axis.parse("threads", "1..x")).hasMessageContaining("axis threads: '1..x'");
    assertThatThrownBy(() -> Axis.parse("threads", "1..")).hasMessageContaining("axis threads: '1..'");
    assertThatThrownBy(() -> Axis.parse("threads", "1..4..8")).hasMessageContaining("'1..4..8'");
    assertThatThrownBy(() -> Axis.parse("batch-size", "1,4,1"))
        .hasMessage("axis batch-size repeats a value: [1, 4, 1]");
    assertThatThrownBy(() -> Axis.parse("precision", "")).hasMessage("axis precision has no values");
    assertThatThrownBy(() -> Axis.parse("precision", " , ")).hasMessage("axis precision has no values");
  }

  @Test
  void anAxisIsNamedLikeAnOption() {
    assertThatThrownBy(() -> Axis.parse("Batch_Size", "1,2")).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("got 'Batch_Size'");
    assertThatThrownBy(() -> Axis.range("2x", 1, 2, Axis.Scale.LINEAR)).hasMessageContaining("got '2x'");
    assertThatThrownBy(() -> Axis.of(null, List.of("a"))).hasMessageContaining("got 'null'");
    assertThat(Axis.parse("max-new-tokens2", "1,2").name()).isEqualTo("max-new-tokens2");
  }

  @Test
  void aListMapsTheUnitIntervalByIndexAndOneGivesTheLast() {
    Axis a = Axis.parse("precision", "a,b,c,d");
    assertThat(a.at(0)).isEqualTo("a");
    assertThat(a.at(0.2499)).isEqualTo("a");
    assertThat(a.at(0.25)).isEqualTo("b");
    assertThat(a.at(0.5)).isEqualTo("c");
    assertThat(a.at(0.9999)).isEqualTo("d");
    assertThat(a.at(1)).as("u = 1 is the last value, not past it").isEqualTo("d");
    assertThat(a.at(-0.5)).as("clamped to [0, 1]").isEqualTo("a");
    assertThat(a.at(7)).as("clamped to [0, 1]").isEqualTo("d");
  }

  @Test
  void aLinearRangeMapsTheUnitIntervalUniformlyRoundingToTheNearestInteger() {
    Axis a = Axis.parse("threads", "0..10");
    assertThat(a.at(0)).isEqualTo("0");
    assertThat(a.at(1)).isEqualTo("10");
    assertThat(a.at(0.5)).isEqualTo("5");
    assertThat(a.at(0.04)).as("0.4 rounds down").isEqualTo("0");
    assertThat(a.at(0.06)).as("0.6 rounds up").isEqualTo("1");
    assertThat(a.at(0.73)).as("7.3").isEqualTo("7");
    assertThat(a.at(-1)).isEqualTo("0");
    assertThat(a.at(2)).isEqualTo("10");
    // u evenly spread over [0, 1]: every inside value gets an equal share, each end half a share (rounding)
    Axis b = Axis.parse("threads", "1..5");
    TreeMap<String, Integer> counts = new TreeMap<>();
    int n = 100_000;
    for (int i = 0; i < n; i++) {
      counts.merge(b.at((i + 0.5) / n), 1, Integer::sum);
    }
    assertThat(counts.keySet()).containsExactly("1", "2", "3", "4", "5");
    for (String inside : List.of("2", "3", "4")) {
      assertThat(counts.get(inside) / (double) n).as("share of %s", inside).isCloseTo(0.25, within(1e-3));
    }
    assertThat(counts.get("1") / (double) n).as("share of the lower end").isCloseTo(0.125, within(1e-3));
    assertThat(counts.get("5") / (double) n).as("share of the upper end").isCloseTo(0.125, within(1e-3));
  }

  @Test
  void aLogRangeMapsTheUnitIntervalLogUniformly() {
    Axis a = Axis.parse("batch-size", "1..1024:log");
    assertThat(a.at(0)).isEqualTo("1");
    assertThat(a.at(0.5)).as("the geometric middle of 1 and 1024").isEqualTo("32");
    assertThat(a.at(1)).isEqualTo("1024");
    for (int k = 0; k <= 10; k++) {
      assertThat(a.at(k / 10.0)).as("u = %d/10 is 2^%d", k, k).isEqualTo(Long.toString(1L << k));
    }
    assertThat(Axis.parse("batch-size", "3..100:log").at(0.5)).as("sqrt(300) = 17.3").isEqualTo("17");
    assertThat(Axis.parse("batch-size", "3..100:log").at(1)).isEqualTo("100");
    assertThat(Axis.parse("batch-size", "3..100:log").at(0)).isEqualTo("3");
    assertThat(Axis.parse("batch-size", "1..1024").at(0.5)).as("a linear range's middle, for contrast")
        .isEqualTo("513");
  }

  @Test
  void rangesAndListsOfNumbersAreNumeric() {
    assertThat(Axis.parse("threads", "1..8").isNumeric()).isTrue();
    assertThat(Axis.parse("batch-size", "1..1024:log").isNumeric()).isTrue();
    assertThat(Axis.parse("batch-size", "1,4,16").isNumeric()).isTrue();
    assertThat(Axis.parse("temperature", "0.5,1e-3,-2").isNumeric()).isTrue();
    assertThat(Axis.parse("precision", "fp16,bf16").isNumeric()).isFalse();
    assertThat(Axis.parse("batch-size", "1,auto").isNumeric()).as("one word makes the list unordered").isFalse();
  }

  @Test
  void theSpecReadsBackAsTheSameAxis() {
    for (String spec : List.of("1,4,16", "fp16,bf16", "1..8", "1..1024:log", "-3..3")) {
      Axis a = Axis.parse("x", spec);
      assertThat(a.spec()).isEqualTo(spec);
      assertThat(Axis.parse("x", a.spec())).isEqualTo(a);
    }
    assertThat(Axis.parse("x", "1..8:linear").spec()).isEqualTo("1..8");
  }
}
