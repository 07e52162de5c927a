package io.sparkinfer.base;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Keeps the files the engine reads from a checkpoint directory inside it. A model directory may come from
 * someone else (a shared volume, a downloaded checkpoint), so a file in it must be a regular file whose real
 * path (every symbolic link resolved) lies under the directory's own real path: a link to another tenant's
 * model, to {@code /etc/...}, or to a FIFO or device that would block or never end, is refused with the file
 * and where it leads. ({@code ..} in shard names of an index is refused by the checkpoint itself.)
 *
 * <p>One exception keeps Hugging Face's cache usable as it is laid out: in a snapshot directory
 * ({@code REPO/snapshots/REVISION}) files are links into the same repository's blob store
 * ({@code REPO/blobs/}), and those are inside the model for this purpose.
 */
public final class ModelFiles {

  private ModelFiles() {}

  /**
   * Checks that {@code file}, in checkpoint directory {@code dir}, stays inside it (see the class comment). A
   * file that does not exist, not even as a link, passes: callers report missing files in their own words.
   *
   * @throws ModelLoadException when the file resolves outside {@code dir}, is a dangling link, or is not a
   *     regular file
   */
  public static void checkInside(Path dir, Path file) {
    if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Path realDir;
    Path real;
    try {
      realDir = dir.toRealPath();
      real = file.toRealPath();
    } catch (NoSuchFileException e) {
      throw new ModelLoadException(file + " is a symbolic link to " + linkTarget(file) + ", which does not exist", e);
    } catch (IOException e) {
      throw new ModelLoadException("cannot resolve " + file + ": " + e.getMessage(), e);
    }
    if (!real.startsWith(realDir) && !isHubBlob(realDir, real)) {
      throw new ModelLoadException(file + " resolves to " + real + ", outside the model directory " + realDir
          + ": a checkpoint's files must be in its directory (copy the file there instead of linking to it)");
    }
    if (!Files.isRegularFile(real)) {
      throw new ModelLoadException(file + " is not a regular file" + (real.equals(file) ? "" : " (it resolves to "
          + real + ")"));
    }
  }

  /** Whether {@code real} is a blob of the Hugging Face cache repository whose snapshot {@code snapshot} is. */
  private static boolean isHubBlob(Path snapshot, Path real) {
    Path snapshots = snapshot.getParent();
    if (snapshots == null || snapshots.getFileName() == null || !snapshots.getFileName().toString().equals("snapshots")
        || snapshots.getParent() == null) {
      return false;
    }
    Path blobs = snapshots.getParent().resolve("blobs");
    return real.startsWith(blobs) && real.getParent().equals(blobs);
  }

  private static String linkTarget(Path file) {
    try {
      return Files.readSymbolicLink(file).toString();
    } catch (IOException | UnsupportedOperationException e) {
      return "a missing file";
    }
  }
}
