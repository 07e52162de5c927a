package io.sparkinfer.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Paths kept for code the process runs (compiled kernels: {@link CubinCache}; libtorch directories:
 * {@link LibtorchOverlay}), which only this user may have written: owned by this user, not a link, writable by the
 * owner alone.
 */
final class OwnerOnly {

  private static final Logger LOG = LoggerFactory.getLogger(OwnerOnly.class);
  private static final Set<PosixFilePermission> RWX_OWNER = PosixFilePermissions.fromString("rwx------");

  private OwnerOnly() {}

  /**
   * Whether a path may be trusted: owned by this process's user, not a link, and writable by its owner alone. On a
   * file system without POSIX attributes, any existing path.
   */
  static boolean usable(Path path) throws IOException {
    PosixFileAttributeView view = Files.getFileAttributeView(path, PosixFileAttributeView.class,
        LinkOption.NOFOLLOW_LINKS);
    if (view == null) {
      return Files.exists(path, LinkOption.NOFOLLOW_LINKS);
    }
    PosixFileAttributes a = view.readAttributes();
    Set<PosixFilePermission> p = a.permissions();
    boolean ours = a.owner().getName().equals(System.getProperty("user.name"));
    boolean othersWrite = p.contains(PosixFilePermission.GROUP_WRITE) || p.contains(PosixFilePermission.OTHERS_WRITE);
    if (a.isSymbolicLink() || !ours || othersWrite) {
      LOG.warn("not using {}: it must be this user's ({}), not a link, and writable by its owner "
          + "alone (owner {}, {})", path, System.getProperty("user.name"), a.owner().getName(),
          PosixFilePermissions.toString(p));
      return false;
    }
    return true;
  }

  /** Makes a directory readable, writable and searchable by its owner alone (where the file system has POSIX modes). */
  static void restrict(Path path) throws IOException {
    if (Files.getFileAttributeView(path, PosixFileAttributeView.class) != null) {
      Files.setPosixFilePermissions(path, RWX_OWNER);
    }
  }
}
