package io.sparkinfer.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.JsonObject;
import io.sparkinfer.base.ModelLoadException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {

  @TempDir Path root;

  private Path model() throws IOException {
    return Files.createDirectories(root.resolve("model"));
  }

  private static SafetensorsWriter shard1() {
    return new SafetensorsWriter().f32("model.embed_tokens.weight", new long[] {2, 2}, 1, 2, 3, 4)
        .f32("model.norm.weight", new long[] {2}, 5, 6);
  }

  private static SafetensorsWriter shard2() {
    return new SafetensorsWriter().f32("lm_head.weight", new long[] {2, 2}, 7, 8, 9, 10);
  }

  /** Writes {@code model.safetensors.index.json} mapping each tensor name to a shard name. */
  private static void writeIndex(Path dir, Map<String, String> weightMap) throws IOException {
    JsonObject map = new JsonObject();
    weightMap.forEach(map::addProperty);
    JsonObject root = new JsonObject();
    JsonObject meta = new JsonObject();
    meta.addProperty("total_size", 32);
    root.add("metadata", meta);
    root.add("weight_map", map);
    Files.writeString(dir.resolve("model.safetensors.index.json"), root.toString());
  }

  private static float[] floats(TensorInfo t) {
    ByteBuffer b = SafetensorsFile.map(t, 0, t.byteLength());
    float[] out = new float[(int) t.elementCount()];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.getFloat(4 * i);
    }
    return out;
  }

  private static final String S1 = "model-00001-of-00002.safetensors";
  private static final String S2 = "model-00002-of-00002.safetensors";

  private static Map<String, String> twoShardMap() {
    return Map.of("model.embed_tokens.weight", S1, "model.norm.weight", S1, "lm_head.weight", S2);
  }

  @Test
  void singleModelSafetensorsIsLoaded() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve("model.safetensors"));

    Checkpoint c = Checkpoint.open(dir);

    assertThat(c.dir()).isEqualTo(dir);
    assertThat(c.tensors().keySet()).containsExactly("model.embed_tokens.weight", "model.norm.weight");
    assertThat(c.has("model.norm.weight")).isTrue();
    assertThat(c.has("lm_head.weight")).isFalse();
    assertThat(c.tensor("model.norm.weight").shape()).containsExactly(2);
    assertThat(c.tensor("model.norm.weight").file()).isEqualTo(dir.resolve("model.safetensors"));
  }

  @Test
  void modelSafetensorsIsPreferredOverOtherSafetensorsFiles() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve("model.safetensors"));
    shard2().write(dir.resolve("adapter.safetensors"));

    assertThat(Checkpoint.open(dir).tensors()).containsOnlyKeys("model.embed_tokens.weight", "model.norm.weight");
  }

  @Test
  void shardedCheckpointLoadsEveryTensorOfEveryShard() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve(S1));
    shard2().write(dir.resolve(S2));
    writeIndex(dir, twoShardMap());

    Checkpoint c = Checkpoint.open(dir);

    assertThat(c.tensors()).containsOnlyKeys("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight");
    assertThat(c.tensor("model.embed_tokens.weight").file().getFileName()).hasToString(S1);
    assertThat(c.tensor("lm_head.weight").file().getFileName()).hasToString(S2);
    assertThat(floats(c.tensor("lm_head.weight"))).containsExactly(7f, 8f, 9f, 10f);
  }

  @Test
  void indexIsPreferredOverAStrayModelSafetensors() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve(S1));
    shard2().write(dir.resolve(S2));
    writeIndex(dir, twoShardMap());
    new SafetensorsWriter().f32("stale", new long[] {1}, 0).write(dir.resolve("model.safetensors"));

    assertThat(Checkpoint.open(dir).has("stale")).isFalse();
  }

  @Test
  void withoutIndexOrModelSafetensorsEverySafetensorsFileIsLoaded() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve("a.safetensors"));
    shard2().write(dir.resolve("b.safetensors"));
    Files.writeString(dir.resolve("config.json"), "{}");

    assertThat(Checkpoint.open(dir).tensors())
        .containsOnlyKeys("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight");
  }

  @Test
  void missingDirectoryIsReported() {
    Path dir = root.resolve("absent");
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("model directory " + dir + " does not exist or is not a directory");
  }

  @Test
  void aFileInsteadOfADirectoryIsReported() throws IOException {
    Path file = Files.writeString(root.resolve("model.safetensors"), "x");
    assertThatThrownBy(() -> Checkpoint.open(file))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("is not a directory");
  }

  @Test
  void directoryWithoutWeightsIsReported() throws IOException {
    Path dir = model();
    Files.writeString(dir.resolve("config.json"), "{}");
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("no weights in " + dir)
        .hasMessageContaining("expected model.safetensors or model.safetensors.index.json");
  }

  @Test
  void pickleOnlyDirectoryIsRefusedSayingWhy() throws IOException {
    Path dir = model();
    Files.write(dir.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 0x02});
    Files.write(dir.resolve("training_args.pt"), new byte[] {(byte) 0x80, 0x02});

    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("pickle-based weights (pytorch_model.bin)")
        .hasMessageContaining("sparkinfer loads only safetensors")
        .hasMessageContaining("can run arbitrary code")
        .hasMessageContaining("safe_serialization=True");
  }

  @Test
  void pthOnlyDirectoryIsRefusedToo() throws IOException {
    Path dir = model();
    Files.write(dir.resolve("consolidated.00.pth"), new byte[] {1});
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("consolidated.00.pth")
        .hasMessageContaining("arbitrary code");
  }

  @Test
  void indexNamingAMissingShardIsRejected() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve(S1));
    writeIndex(dir, twoShardMap());

    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("names shard " + S2 + ", which is missing from " + dir);
  }

  @Test
  void shardPathEscapingTheDirectoryIsRejectedEvenWhenTheFileExists() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve(S1));
    shard2().write(root.resolve("x.safetensors")); // outside the model directory
    writeIndex(dir, Map.of("model.embed_tokens.weight", S1, "lm_head.weight", "../x.safetensors"));

    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("shard '../x.safetensors' must be a .safetensors file in " + dir);
  }

  @Test
  void aWeightsFileLinkedFromOutsideTheDirectoryIsRejected() throws IOException {
    Path dir = model();
    Path outside = shard1().write(root.resolve("elsewhere.safetensors"));
    Files.createSymbolicLink(dir.resolve("model.safetensors"), outside);

    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(dir.resolve("model.safetensors") + " resolves to " + outside.toRealPath())
        .hasMessageContaining("outside the model directory");
  }

  @Test
  void aShardLinkedFromOutsideTheDirectoryIsRejectedThoughTheIndexNamesItPlainly() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve(S1));
    Files.createSymbolicLink(dir.resolve(S2), shard2().write(root.resolve("x.safetensors")));
    writeIndex(dir, twoShardMap());

    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(S2 + " resolves to ")
        .hasMessageContaining("outside the model directory");
  }

  @Test
  void aLinkInsideTheDirectoryIsAccepted() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve("weights-v1.safetensors"));
    Files.createSymbolicLink(dir.resolve("model.safetensors"), Path.of("weights-v1.safetensors"));

    assertThat(Checkpoint.open(dir).tensors()).containsOnlyKeys("model.embed_tokens.weight", "model.norm.weight");
  }

  @Test
  void absoluteOrNestedShardPathsAreRejected() throws IOException {
    Path dir = model();
    Path outside = shard2().write(root.resolve("x.safetensors"));
    writeIndex(dir, Map.of("lm_head.weight", outside.toAbsolutePath().toString()));
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("must be a .safetensors file in");

    Files.createDirectories(dir.resolve("sub"));
    shard2().write(dir.resolve("sub/x.safetensors"));
    writeIndex(dir, Map.of("lm_head.weight", "sub/x.safetensors"));
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("shard 'sub/x.safetensors' must be a .safetensors file in");
  }

  @Test
  void indexNamingAPickleShardIsRejected() throws IOException {
    Path dir = model();
    Files.write(dir.resolve("pytorch_model-00001-of-00001.bin"), new byte[] {1});
    writeIndex(dir, Map.of("lm_head.weight", "pytorch_model-00001-of-00001.bin"));

    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("shard 'pytorch_model-00001-of-00001.bin' must be a .safetensors file");
  }

  @Test
  void tensorInTwoShardsIsRejectedNamingBothFiles() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve(S1));
    new SafetensorsWriter().f32("model.norm.weight", new long[] {2}, 0, 0).write(dir.resolve(S2));
    writeIndex(dir, Map.of("model.embed_tokens.weight", S1, "model.norm.weight", S2));

    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("tensor 'model.norm.weight' appears in both " + S1 + " and " + S2);
  }

  @Test
  void indexThatIsNotJsonIsRejected() throws IOException {
    Path dir = model();
    Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {");
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("model.safetensors.index.json is not valid JSON");
  }

  @Test
  void indexWithoutAWeightMapObjectIsRejected() throws IOException {
    Path dir = model();
    Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": [\"a.safetensors\"]}");
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("expected an object with a weight_map object");
  }

  @Test
  void indexWhoseShardNameIsNotAStringIsRejected() throws IOException {
    Path dir = model();
    Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"lm_head.weight\": {\"a\": 1}}}");
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining("weight_map entry 'lm_head.weight' must name a shard file, got {\"a\":1}");
  }

  @Test
  void corruptShardIsReportedWithItsPath() throws IOException {
    Path dir = model();
    Path bad = Files.write(dir.resolve("model.safetensors"), new byte[] {1, 2, 3});
    assertThatThrownBy(() -> Checkpoint.open(dir))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageContaining(bad.toString())
        .hasMessageContaining("too short");
  }

  @Test
  void missingTensorIsReportedWithTheDirectory() throws IOException {
    Path dir = model();
    shard1().write(dir.resolve("model.safetensors"));
    Checkpoint c = Checkpoint.open(dir);

    assertThatThrownBy(() -> c.tensor("lm_head.weight"))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("checkpoint " + dir + " has no tensor 'lm_head.weight'");
    assertThatThrownBy(() -> c.tensors().clear()).isInstanceOf(UnsupportedOperationException.class);
  }
}
