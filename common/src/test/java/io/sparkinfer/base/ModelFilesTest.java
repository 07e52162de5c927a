package io.sparkinfer.base;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelFilesTest {

  @TempDir Path root;

  @Test
  void aRegularFileInTheDirectoryOrALinkToOneThereIsInside() throws IOException {
    Path dir = Files.createDirectories(root.resolve("model"));
    Files.writeString(dir.resolve("config.json"), "{}");
    Files.createSymbolicLink(dir.resolve("alias.json"), Path.of("config.json"));

    assertThatCode(() -> ModelFiles.checkInside(dir, dir.resolve("config.json"))).doesNotThrowAnyException();
    assertThatCode(() -> ModelFiles.checkInside(dir, dir.resolve("alias.json"))).doesNotThrowAnyException();
  }

  @Test
  void aDirectoryReachedThroughALinkIsItsTargetAndItsFilesAreInside() throws IOException {
    Path real = Files.createDirectories(root.resolve("models/v2"));
    Files.writeString(real.resolve("config.json"), "{}");
    Path current = Files.createSymbolicLink(root.resolve("current"), real);

    assertThatCode(() -> ModelFiles.checkInside(current, current.resolve("config.json"))).doesNotThrowAnyException();
  }

  @Test
  void aLinkToAFileElsewhereIsRefusedNamingBoth() throws IOException {
    Path dir = Files.createDirectories(root.resolve("model"));
    Path secret = Files.writeString(root.resolve("secret.txt"), "x");
    Path link = Files.createSymbolicLink(dir.resolve("tokenizer.json"), secret);

    assertThatThrownBy(() -> ModelFiles.checkInside(dir, link))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining(link + " resolves to " + secret.toRealPath() + ", outside the model directory "
            + dir.toRealPath());
  }

  @Test
  void aLinkThroughDotDotIsRefusedToo() throws IOException {
    Path dir = Files.createDirectories(root.resolve("model"));
    Files.writeString(root.resolve("other.json"), "{}");
    Path link = Files.createSymbolicLink(dir.resolve("config.json"), Path.of("../other.json"));

    assertThatThrownBy(() -> ModelFiles.checkInside(dir, link)).hasMessageContaining("outside the model directory");
  }

  @Test
  void aDanglingLinkAndSomethingThatIsNotARegularFileAreRefused() throws IOException {
    Path dir = Files.createDirectories(root.resolve("model"));
    Path dangling = Files.createSymbolicLink(dir.resolve("config.json"), Path.of("gone.json"));
    Path folder = Files.createDirectories(dir.resolve("tokenizer.json"));

    assertThatThrownBy(() -> ModelFiles.checkInside(dir, dangling))
        .hasMessageContaining(dangling + " is a symbolic link to gone.json, which does not exist");
    assertThatThrownBy(() -> ModelFiles.checkInside(dir, folder)).hasMessageContaining(folder + " is not a regular file");
  }

  @Test
  void aMissingFileIsLeftToTheCallerToReport() {
    assertThatCode(() -> ModelFiles.checkInside(root, root.resolve("absent.json"))).doesNotThrowAnyException();
  }

  @Test
  void aHuggingFaceCacheSnapshotMayLinkIntoItsRepositorysBlobsButNowhereElse() throws IOException {
    Path repo = root.resolve("hub/models--org--name");
    Files.writeString(Files.createDirectories(repo.resolve("blobs")).resolve("3f2a9c"), "{}");
    Path snapshot = Files.createDirectories(repo.resolve("snapshots/abc123"));
    Path config = Files.createSymbolicLink(snapshot.resolve("config.json"), Path.of("../../blobs/3f2a9c"));
    Path otherRepoBlob = Files.writeString(Files.createDirectories(root.resolve("hub/models--x--y/blobs"))
        .resolve("77"), "{}");
    Path stray = Files.createSymbolicLink(snapshot.resolve("tokenizer.json"), otherRepoBlob);

    assertThatCode(() -> ModelFiles.checkInside(snapshot, config)).doesNotThrowAnyException();
    assertThatThrownBy(() -> ModelFiles.checkInside(snapshot, stray)).hasMessageContaining("outside the model directory");
  }
}
