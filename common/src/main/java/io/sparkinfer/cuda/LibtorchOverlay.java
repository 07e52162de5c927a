package io.sparkinfer.cuda;

import io.sparkinfer.base.FileTrees;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A libtorch directory with some of its libraries replaced: the libraries a libtorch library asks for by name
 * ({@code NEEDED}) are looked for next to it ({@code RUNPATH $ORIGIN}), so replacing one means a directory of
 * libtorch's files in which that name is another library.
 *
 * <p>The directory's own files are hard links to libtorch's (copies where the two lie on different file systems), not
 * symbolic links: Java loads a library by its canonical path ({@code System.load} resolves links), and a library
 * loaded through a symbolic link would look for its neighbours in the directory the link points into, the original
 * one. A replaced name is a symbolic link to its new library, which so finds its own companions next to itself.
 * Checked on the CPU build's OpenMP runtime ({@code LibtorchOverlayTest}): with symbolic links the JVM mapped the
 * bundled {@code libgomp} beside the replacement; with hard links, only the replacement.
 *
 * <p>Overlays live under a root of the user's alone, one per libtorch directory and set of replacements (hashed),
 * made under a temporary name and moved into place, so processes that start at once share one; one found there is
 * used only when every entry is what it should be.
 */
final class LibtorchOverlay {

  private static final Logger LOG = LoggerFactory.getLogger(LibtorchOverlay.class);

  private LibtorchOverlay() {}

  /**
   * The overlay of {@code libtorch} with {@code replaced} (a file name, and the library it is to be) under
   * {@code root}, written if it is missing or differs.
   */
  static Path write(Path libtorch, Map<String, Path> replaced, Path root) throws IOException {
    if (!Files.isDirectory(root)) {
      Files.createDirectories(root);
      OwnerOnly.restrict(root);
    }
    if (!OwnerOnly.usable(root)) {
      throw new IOException(root + " must be this user's and writable by its owner alone");
    }
    Map<String, Path> kept = kept(libtorch, replaced);
    Path dir = root.resolve(name(libtorch, replaced));
    if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) && holds(dir, kept, replaced)) {
      return dir;
    }
    Path tmp = Files.createTempDirectory(root, dir.getFileName() + ".tmp-");
    boolean copied = false;
    for (Map.Entry<String, Path> file : kept.entrySet()) {
      copied |= linkOrCopy(tmp.resolve(file.getKey()), file.getValue());
    }
    for (Map.Entry<String, Path> name : replaced.entrySet()) {
      Files.createSymbolicLink(tmp.resolve(name.getKey()), name.getValue());
    }
    if (copied) {
      LOG.info("libtorch's files copied into {}: it lies on another file system than {}", root, libtorch);
    }
    try {
      FileTrees.delete(dir); // entries that are not what they should be, if any: replaced
      Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
    } catch (FileAlreadyExistsException | DirectoryNotEmptyException | AtomicMoveNotSupportedException e) {
      FileTrees.delete(tmp); // another process moved its own into place first
      if (!holds(dir, kept, replaced)) {
        throw new IOException("the libtorch overlay " + dir + " holds other files than it should", e);
      }
    }
    return dir;
  }

  /** libtorch's files that stay: every regular file but the replaced names. */
  private static Map<String, Path> kept(Path libtorch, Map<String, Path> replaced) throws IOException {
    Map<String, Path> kept = new TreeMap<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(libtorch)) {
      for (Path file : files) {
        String name = file.getFileName().toString();
        if (!replaced.containsKey(name) && Files.isRegularFile(file)) {
          kept.put(name, file.toRealPath());
        }
      }
    }
    return kept;
  }

  /** A hard link to {@code source}, else (another file system) a copy; whether it copied. */
  private static boolean linkOrCopy(Path link, Path source) throws IOException {
    try {
      Files.createLink(link, source);
      return false;
    } catch (FileSystemException | UnsupportedOperationException e) {
      Files.copy(source, link, StandardCopyOption.COPY_ATTRIBUTES);
      return true;
    }
  }

  private static boolean holds(Path dir, Map<String, Path> kept, Map<String, Path> replaced) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      if (files.count() != kept.size() + replaced.size()) {
        return false;
      }
    }
    for (Map.Entry<String, Path> name : replaced.entrySet()) {
      Path path = dir.resolve(name.getKey());
      if (!Files.isSymbolicLink(path) || !Files.readSymbolicLink(path).equals(name.getValue())) {
        return false;
      }
    }
    for (Map.Entry<String, Path> file : kept.entrySet()) {
      Path path = dir.resolve(file.getKey());
      if (!Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) || !(Files.isSameFile(path, file.getValue())
          || Files.size(path) == Files.size(file.getValue())
          && Files.getLastModifiedTime(path).equals(Files.getLastModifiedTime(file.getValue())))) {
        return false;
      }
    }
    return true;
  }

  /** The SHA-256 of libtorch's real path and the replacements, its first 16 hex digits. */
  private static String name(Path libtorch, Map<String, Path> replaced) throws IOException {
    StringBuilder key = new StringBuilder(libtorch.toRealPath().toString());
    new TreeMap<>(replaced).forEach((name, target) -> key.append('\n').append(name).append('=').append(target));
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(key.toString().getBytes(StandardCharsets.UTF_8));
      return "libtorch-" + HexFormat.of().formatHex(digest).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }
}
