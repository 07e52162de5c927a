package io.sparkinfer.base;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileTreesTest {

  @TempDir
  Path tmp;

  @Test
  void aTreeGoesWithEverythingUnderItButNotWhatItsLinksPointTo() throws IOException {
    Path outside = Files.writeString(Files.createDirectories(tmp.resolve("outside")).resolve("kept.txt"), "kept");
    Path tree = Files.createDirectories(tmp.resolve("tree/a/b"));
    Files.writeString(tree.resolve("file.txt"), "x");
    Files.createSymbolicLink(tmp.resolve("tree/a/link"), outside.getParent());

    FileTrees.delete(tmp.resolve("tree"));

    assertThat(tmp.resolve("tree")).doesNotExist();
    assertThat(outside).hasContent("kept");
  }

  @Test
  void aMissingDirectoryIsNothingToDo() throws IOException {
    FileTrees.delete(tmp.resolve("missing"));
    assertThat(tmp.resolve("missing")).doesNotExist();
    assertThat(tmp).exists();
  }
}
