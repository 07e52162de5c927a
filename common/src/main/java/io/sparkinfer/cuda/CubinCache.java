package io.sparkinfer.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Compiled kernels kept on disk between processes, so that only a machine's first engine load compiles our kernels
 * with NVRTC (2.9 s of a 4.4 s load on an H200, bench/results/2026-12-02-e2e-NVIDIA-H200-run9): a CUBIN per
 * {@link Key} (the source, the NVRTC options, the GPU architecture and NVRTC's version, hashed), in a directory of the
 * user's alone.
 *
 * <p>A file holds the SHA-256 of the CUBIN, then the CUBIN; one whose digest does not match (cut short, changed) or
 * that is larger than {@link #MAX_BYTES} is compiled again and replaced. Files are written under a temporary name and
 * moved into place, so a reader sees a whole file or none, whatever other processes do at once. The directory is
 * made readable and writable by its owner alone, and a directory or file that others could write, or that another
 * user owns, is not used (the CUBIN is code the GPU runs): the kernels are then compiled as if there were no cache.
 * Failing to read or write the cache never fails a load.
 */
public final class CubinCache {

  private static final Logger LOG = LoggerFactory.getLogger(CubinCache.class);

  /** The largest file read back (the engine's CUBIN is about 1 MB). */
  static final long MAX_BYTES = 64L << 20;

  private static final int DIGEST_BYTES = 32;
  private static final String SUFFIX = ".cubin";

  private final Path dir; // null: no cache

  private CubinCache(Path dir) {
    this.dir = dir;
  }

  /**
   * The cache an option value names: {@code auto} ({@link #defaultDirectory}), {@code none}, or a directory.
   *
   * @throws IllegalArgumentException for an empty value
   */
  public static CubinCache of(String setting) {
    String s = setting == null ? "auto" : setting.trim();
    if (s.isEmpty()) {
      throw new IllegalArgumentException("the kernel cache must be auto, none or a directory");
    }
    return switch (s.toLowerCase(Locale.ROOT)) {
      case "auto" -> new CubinCache(defaultDirectory());
      case "none" -> new CubinCache(null);
      default -> new CubinCache(Path.of(s));
    };
  }

  /** A cache in {@code dir}. */
  public static CubinCache in(Path dir) {
    return new CubinCache(dir);
  }

  /** $XDG_CACHE_HOME/sparkinfer/kernels, else ~/.cache/sparkinfer/kernels. */
  static Path defaultDirectory() {
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
    return base.resolve("sparkinfer").resolve("kernels");
  }

  /** Where files go; empty when caching is off. */
  public Optional<Path> directory() {
    return Optional.ofNullable(dir);
  }

  /** What a compiled module depends on, hashed: the file's name. */
  public record Key(String digest) {

    /**
     * The key of {@code source} compiled with {@code options} for {@code architecture} ("sm_90") by NVRTC
     * {@code compilerVersion}.
     */
    public static Key of(String source, List<String> options, String architecture, String compilerVersion) {
      MessageDigest sha = sha256();
      for (String part : List.of("sparkinfer-cubin-1", architecture, compilerVersion, String.join("\n", options),
          source)) {
        sha.update(part.getBytes(StandardCharsets.UTF_8));
        sha.update((byte) 0); // parts end with a byte none of them holds
      }
      return new Key(HexFormat.of().formatHex(sha.digest()));
    }
  }

  /** A CUBIN and whether it came from the cache (false: compiled now). */
  public record Cubin(byte[] bytes, boolean cached) {}

  /**
   * The CUBIN of {@code key}: the cached one when a whole, intact file is there, else {@code compile}'s, kept for
   * later processes.
   */
  public Cubin get(Key key, Supplier<byte[]> compile) {
    Optional<byte[]> found = read(key);
    return found.isPresent() ? new Cubin(found.get(), true) : replace(key, compile);
  }

  /**
   * {@code compile}'s CUBIN, kept for later processes in place of whatever the cache held for {@code key}: nothing, a
   * file that could not be used, or one the driver refused (written for another driver, say).
   */
  public Cubin replace(Key key, Supplier<byte[]> compile) {
    byte[] compiled = compile.get();
    write(key, compiled);
    return new Cubin(compiled, false);
  }

  private Optional<byte[]> read(Key key) {
    if (dir == null) {
      return Optional.empty();
    }
    Path file = file(key);
    try {
      if (!OwnerOnly.usable(dir) || !OwnerOnly.usable(file)) {
        return Optional.empty();
      }
      long size = Files.size(file);
      if (size <= DIGEST_BYTES || size > MAX_BYTES + DIGEST_BYTES) {
        LOG.info("compiling our CUDA kernels again: {} has {} bytes", file, size);
        return Optional.empty();
      }
      byte[] stored;
      try (InputStream in = Files.newInputStream(file, LinkOption.NOFOLLOW_LINKS)) {
        stored = in.readNBytes((int) size);
      }
      byte[] cubin = Arrays.copyOfRange(stored, DIGEST_BYTES, stored.length);
      if (stored.length != size || !Arrays.equals(Arrays.copyOf(stored, DIGEST_BYTES), sha256().digest(cubin))) {
        LOG.info("compiling our CUDA kernels again: {} does not hold what its digest says", file);
        return Optional.empty();
      }
      LOG.debug("our CUDA kernels from {}", file);
      return Optional.of(cubin);
    } catch (NoSuchFileException e) {
      return Optional.empty();
    } catch (IOException | RuntimeException e) {
      LOG.info("compiling our CUDA kernels: cannot read {} ({})", file, e.toString());
      return Optional.empty();
    }
  }

  private void write(Key key, byte[] cubin) {
    if (dir == null) {
      return;
    }
    Path temp = null;
    try {
      if (!Files.isDirectory(dir)) {
        Files.createDirectories(dir);
        OwnerOnly.restrict(dir);
      }
      if (!OwnerOnly.usable(dir)) {
        return;
      }
      temp = Files.createTempFile(dir, key.digest(), ".tmp"); // owner-only, as createTempFile makes files
      byte[] stored = new byte[DIGEST_BYTES + cubin.length];
      System.arraycopy(sha256().digest(cubin), 0, stored, 0, DIGEST_BYTES);
      System.arraycopy(cubin, 0, stored, DIGEST_BYTES, cubin.length);
      Files.write(temp, stored);
      try {
        Files.move(temp, file(key), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temp, file(key), StandardCopyOption.REPLACE_EXISTING);
      }
      temp = null;
      LOG.info("our CUDA kernels compiled and kept in {}", file(key));
    } catch (IOException | RuntimeException e) {
      LOG.info("our CUDA kernels compiled, not kept: cannot write to {} ({})", dir, e.toString());
    } finally {
      if (temp != null) {
        try {
          Files.deleteIfExists(temp);
        } catch (IOException e) {
          LOG.debug("cannot remove {}", temp, e);
        }
      }
    }
  }

  Path file(Key key) {
    return dir.resolve(key.digest() + SUFFIX);
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }
}
