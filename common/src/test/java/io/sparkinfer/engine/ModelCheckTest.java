package io.sparkinfer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.testing.Fixtures;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelCheckTest {

  @TempDir Path tmp;

  private Path copyOfTiny() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("model"));
    try (var files = Files.list(Fixtures.model("qwen2-tiny"))) {
      for (Path f : files.toList()) {
        Files.copy(f, dir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        dir.resolve(f.getFileName()).toFile().setWritable(true);
      }
    }
    return dir;
  }

  @Test
  void aGoodCheckpointPassesAndGivesItsConfig() throws IOException {
    assertThat(ModelCheck.check(copyOfTiny()).numHiddenLayers()).isEqualTo(2);
  }

  @Test
  void aConfigTheWeightsDoNotMatchFailsOnTheFirstTensorItGetsWrong() throws IOException {
    Path dir = copyOfTiny();
    Files.writeString(dir.resolve("config.json"),
        Files.readString(dir.resolve("config.json")).replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));

    assertThatThrownBy(() -> ModelCheck.check(dir)).isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("has no tensor 'model.layers.2.input_layernorm.weight'");
  }

  @Test
  void aTokenizerThatDoesNotParseOrIsTooBigIsRefusedNamingTheFile() throws IOException {
    Path dir = copyOfTiny();
    Path tokenizer = dir.resolve("tokenizer.json");
    Files.writeString(tokenizer, "{\"model\": [1, 2");
    assertThatThrownBy(() -> ModelCheck.check(dir)).isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("cannot load " + tokenizer);

    try (RandomAccessFile f = new RandomAccessFile(tokenizer.toFile(), "rw")) {
      f.setLength((256L << 20) + 1); // sparse: no disk is written
    }
    assertThatThrownBy(() -> ModelCheck.check(dir)).isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(tokenizer + " has 268435457 bytes, over the 268435456 this engine reads");
  }
}
