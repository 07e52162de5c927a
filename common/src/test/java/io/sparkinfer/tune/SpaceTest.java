package io.sparkinfer.tune;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A search space built from axes or read from a JSON or YAML file; its grid size, its points, its errors. */
class SpaceTest {

  @TempDir Path dir;

  Path write(String name, String text) throws IOException {
    return Files.writeString(dir.resolve(name), text, StandardCharsets.UTF_8);
  }

  static final Space EXAMPLE = new Space(List.of(Axis.parse("batch-size", "1..1024:log"),
      Axis.of("precision", List.of("fp16", "bf16")), Axis.of("threads", List.of("1", "2"))));

  @Test
  void readsAYamlFileOfListsAndRangeTextsUnderAxes() throws IOException {
    Path f = write("space.yaml", """
        # a study of the decode step
        axes:
          batch-size: 1..1024:log
          precision: [fp16, bf16]
          threads: [1, 2]
        """);
    assertThat(Space.load(f)).isEqualTo(EXAMPLE);
  }

  @Test
  void readsAYamlFileWithoutTheAxesKey() throws IOException {
    Path f = write("space.yml", """
        batch-size: 1..1024:log
        precision:
          - fp16
          - bf16
        threads: [1, 2]
        decode-chunk: 1..16
        temperature: [0.5, 1.0]
        """);
    Space s = Space.load(f);
    assertThat(s.axes()).extracting(Axis::name).as("in the file's order")
        .containsExactly("batch-size", "precision", "threads", "decode-chunk", "temperature");
    assertThat(s.axis("batch-size")).isEqualTo(Axis.range("batch-size", 1, 1024, Axis.Scale.LOG));
    assertThat(s.axis("precision").values()).containsExactly("fp16", "bf16");
    assertThat(s.axis("threads").values()).containsExactly("1", "2");
    assertThat(s.axis("decode-chunk")).isEqualTo(Axis.range("decode-chunk", 1, 16, Axis.Scale.LINEAR));
    assertThat(s.axis("temperature").values()).as("a whole double reads as an integer").containsExactly("0.5", "1");
    assertThat(s.axis("seed")).isNull();
    assertThat(s.dimensions()).isEqualTo(5);
  }

  @Test
  void readsAJsonFileWithOrWithoutTheAxesKey() throws IOException {
    Path under = write("space.json", """
        {"axes": {"batch-size": "1..1024:log", "precision": ["fp16", "bf16"], "threads": [1, 2]}}
        """);
    assertThat(Space.load(under)).isEqualTo(EXAMPLE);
    Path flat = write("flat.json", """
        {"batch-size": "1..1024:log", "precision": ["fp16", "bf16"], "threads": [1, 2]}
        """);
    assertThat(Space.load(flat)).isEqualTo(EXAMPLE);
    Path mixed = write("mixed.json", """
        {"threads": 4, "temperature": [0.5, 1, "2"], "greedy": [true, false]}
        """);
    Space s = Space.load(mixed);
    assertThat(s.axis("threads").values()).as("a lone number is a list of one").containsExactly("4");
    assertThat(s.axis("temperature").values()).as("JSON numbers arrive as doubles; whole ones read as integers")
        .containsExactly("0.5", "1", "2");
    assertThat(s.axis("greedy").values()).containsExactly("true", "false");
  }

  @Test
  void aFileEndingInAnythingButJsonIsYaml() throws IOException {
    Path f = write("space.txt", "threads: 1..4\n");
    assertThat(Space.load(f).axes()).containsExactly(Axis.range("threads", 1, 4, Axis.Scale.LINEAR));
    Path upper = write("SPACE.JSON", "{\"threads\": \"1..4\"}");
    assertThat(Space.load(upper).axes()).as("the .json suffix in any case")
        .containsExactly(Axis.range("threads", 1, 4, Axis.Scale.LINEAR));
  }

  @Test
  void gridSizeIsTheProductOfTheAxesGridSizes() {
    assertThat(EXAMPLE.gridSize()).as("11 powers of two x 2 x 2").isEqualTo(44);
    Space s = new Space(List.of(Axis.parse("a", "1..7"), Axis.parse("b", "3..100:log"), Axis.parse("c", "x")));
    assertThat(s.gridSize()).isEqualTo(7 * 7);
  }

  @Test
  void gridSizeOfAHugeSpaceStopsAtLongMaxValue() {
    // 13 axes of 31 grid values each: 31^13 > 2^63
    List<Axis> axes = new java.util.ArrayList<>();
    for (int i = 0; i < 13; i++) {
      axes.add(Axis.parse("a" + i, "1..1073741824:log"));
    }
    assertThat(axes.get(0).grid()).hasSize(31);
    assertThat(new Space(axes).gridSize()).isEqualTo(Long.MAX_VALUE);
    assertThat(new Space(axes.subList(0, 12)).gridSize()).as("31^12 still fits").isEqualTo(787662783788549761L);
  }

  @Test
  void aPointOfTheUnitCubeMapsEachCoordinateThroughItsAxis() {
    Map<String, String> trial = EXAMPLE.at(new double[] {0.5, 0, 1});
    assertThat(trial).containsExactly(Map.entry("batch-size", "32"), Map.entry("precision", "fp16"),
        Map.entry("threads", "2"));
    assertThat(EXAMPLE.at(new double[] {1, 0.5, 0.49})).containsExactly(Map.entry("batch-size", "1024"),
        Map.entry("precision", "bf16"), Map.entry("threads", "1"));
    assertThatThrownBy(() -> EXAMPLE.at(new double[] {0.5, 0.5})).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a point of 2 coordinates in a space of 3");
  }

  @Test
  void aSpaceNamesEachAxisOnce() throws IOException {
    assertThatThrownBy(() -> new Space(List.of(Axis.parse("threads", "1,2"), Axis.parse("threads", "3..4"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a search space names an axis twice: [threads, threads]");
    Path yaml = write("twice.yaml", "threads: [1, 2]\nbatch-size: 1..8\nthreads: 3..4\n");
    assertThatThrownBy(() -> Space.load(yaml)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("space file " + yaml).hasMessageContaining("threads");
    Path json = write("twice.json", "{\"threads\": [1, 2], \"batch-size\": \"1..8\", \"threads\": \"3..4\"}");
    assertThatThrownBy(() -> Space.load(json)).as("JSON keeps no duplicate key either")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("space file " + json).hasMessageContaining("threads");
    Path nested = write("nested.json", "{\"axes\": {\"threads\": [1, 2], \"threads\": [3]}}");
    assertThatThrownBy(() -> Space.load(nested)).hasMessageContaining("space file " + nested)
        .hasMessageContaining("threads");
  }

  @Test
  void aSpaceHasAnAxis() throws IOException {
    assertThatThrownBy(() -> new Space(Collections.emptyList())).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a search space needs at least one axis");
    Path yaml = write("empty.yaml", "axes: {}\n");
    assertThatThrownBy(() -> Space.load(yaml))
        .hasMessage("space file " + yaml + ": a search space needs at least one axis");
    Path json = write("empty.json", "{}");
    assertThatThrownBy(() -> Space.load(json))
        .hasMessage("space file " + json + ": a search space needs at least one axis");
  }

  @Test
  void keysBesideAxesAreRejected() throws IOException {
    Path yaml = write("extra.yaml", "axes:\n  threads: [1, 2]\nseed: 3\n");
    assertThatThrownBy(() -> Space.load(yaml)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("space file " + yaml).hasMessageContaining("unexpected keys beside 'axes'")
        .hasMessageContaining("seed");
    Path json = write("extra.json", "{\"trials\": 10, \"axes\": {\"threads\": [1, 2]}}");
    assertThatThrownBy(() -> Space.load(json)).hasMessageContaining("space file " + json)
        .hasMessageContaining("unexpected keys beside 'axes'").hasMessageContaining("trials");
  }

  @Test
  void theFileMustMapAxisNamesToValues() throws IOException {
    Path list = write("list.yaml", "- threads\n- batch-size\n");
    assertThatThrownBy(() -> Space.load(list)).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("space file " + list + " is not valid YAML: the top level must be a map of axis names to values");
    Path empty = write("empty.yaml", "");
    assertThatThrownBy(() -> Space.load(empty)).hasMessageContaining("space file " + empty)
        .hasMessageContaining("the top level must be a map");
    Path array = write("array.json", "[1, 2]");
    assertThatThrownBy(() -> Space.load(array))
        .hasMessage("space file " + array + " is not valid JSON: the top level must be an object");
    Path axesList = write("axes-list.yaml", "axes: [threads, batch-size]\n");
    assertThatThrownBy(() -> Space.load(axesList))
        .hasMessage("space file " + axesList + ": 'axes' must map axis names to values");
    Path nestedMap = write("nested.yaml", "threads: {lo: 1, hi: 4}\n");
    assertThatThrownBy(() -> Space.load(nestedMap)).hasMessageContaining("space file " + nestedMap)
        .hasMessageContaining("axis threads must be a list of values or a text such as 1..1024:log");
    Path numberKey = write("number-key.yaml", "1: [a, b]\n");
    assertThatThrownBy(() -> Space.load(numberKey)).as("a key that YAML reads as a number is a bad axis name")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("space file " + numberKey).hasMessageContaining("got '1'");
  }

  @Test
  void aBadAxisTextNamesTheFileAndTheAxis() throws IOException {
    Path f = write("bad.yaml", "axes:\n  threads: 8..1\n");
    assertThatThrownBy(() -> Space.load(f)).hasMessage("space file " + f + ": axis threads: range 8..1 is empty");
    Path g = write("bad.json", "{\"precision\": [\"fp16\", \"fp16\"]}");
    assertThatThrownBy(() -> Space.load(g))
        .hasMessage("space file " + g + ": axis precision repeats a value: [fp16, fp16]");
  }

  @Test
  void aFileLargerThanOneMebibyteIsRefused() throws IOException {
    assertThat(Space.MAX_FILE_BYTES).isEqualTo(1 << 20);
    String axes = "threads: [1, 2]\n";
    String padding = "#".repeat((int) Space.MAX_FILE_BYTES - axes.length() - 1) + "\n";
    Path fits = write("fits.yaml", axes + padding);
    assertThat(Files.size(fits)).isEqualTo(Space.MAX_FILE_BYTES);
    assertThat(Space.load(fits).axis("threads").values()).as("exactly the limit is read").containsExactly("1", "2");
    Path big = write("big.yaml", axes + "#" + padding);
    assertThatThrownBy(() -> Space.load(big)).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("space file " + big + " is larger than 1048576 bytes");
  }

  @Test
  void deeplyNestedFilesAreRefusedWithAMessage() throws IOException {
    Path json = write("deep.json", "{\"threads\": " + "[".repeat(100_000) + "]".repeat(100_000) + "}");
    assertThatThrownBy(() -> Space.load(json)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("space file " + json + " is not valid JSON: nested more than");
    Path yaml = write("deep.yaml", "threads: " + "[".repeat(100_000) + "]".repeat(100_000) + "\n");
    assertThatThrownBy(() -> Space.load(yaml)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("space file " + yaml + " is not valid YAML: ");
  }

  @Test
  void invalidYamlOrJsonNamesTheFileAndTheFormat() throws IOException {
    Path yaml = write("broken.yaml", "axes:\n  threads: [1, 2\n");
    assertThatThrownBy(() -> Space.load(yaml)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("space file " + yaml + " is not valid YAML: ");
    Path json = write("broken.json", "{\"threads\": [1, 2}");
    assertThatThrownBy(() -> Space.load(json)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("space file " + json + " is not valid JSON: ");
    Path trailing = write("trailing.json", "{\"threads\": [1, 2]} {\"batch-size\": [1]}");
    assertThatThrownBy(() -> Space.load(trailing)).hasMessageStartingWith("space file " + trailing
        + " is not valid JSON: ");
    Path upper = write("BROKEN.JSON", "{\"threads\": ");
    assertThatThrownBy(() -> Space.load(upper)).as("the format named is the one the file was read as")
        .hasMessageStartingWith("space file " + upper + " is not valid JSON: ");
    Path missing = dir.resolve("missing.yaml");
    assertThatThrownBy(() -> Space.load(missing)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("cannot read the space file " + missing);
  }
}
