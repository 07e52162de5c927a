package io.sparkinfer.cuda;

import io.sparkinfer.options.Option;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A newer cuBLAS 12 under DJL's libtorch ({@code --cublas DIR}): the matrix products of every engine in the JVM then
 * run on its kernels. DJL's CUDA build of libtorch 2.5.1 ships cuBLAS 12.4.5 under hashed names
 * ({@code libcublas-4cc45526.so.12}); through this class, cuBLAS 12.6.3 ran the fp16 decode step at batch 256 in 3.00
 * against 3.80 ms on an H200, and 50 of the 55 GPU tests pass on it (five of our own paths' comparisons at bounds set
 * on 12.4.5 do not: {@code bench/results/2026-12-04-cublas-ab-NVIDIA-H200}, from {@code bench/gpu/cublas_ab.sh}).
 *
 * <p>libtorch finds its cuBLAS next to itself ({@code $ORIGIN}), so the override is a directory of its own beside
 * DJL's (a {@link LibtorchOverlay}): each file of DJL's libtorch directory hard-linked (copied where the two lie on
 * different file systems), but the bundled cuBLAS names, which are symbolic links to {@code DIR}'s
 * {@code libcublas.so.12} and {@code libcublasLt.so.12}. DJL is then pointed at it ({@code PYTORCH_LIBRARY_PATH}, as a
 * system property) before it loads PyTorch, so this must run before the JVM's first engine does: {@link #ensure} is
 * called where the engine is first asked for ({@code EngineOptions.gpuCount}).
 */
public final class CublasOverride {

  private static final Logger LOG = LoggerFactory.getLogger(CublasOverride.class);

  /** The option's value that keeps the cuBLAS DJL's libtorch ships. */
  public static final String BUNDLED = "bundled";

  public static final Option<String> CUBLAS = Option.text("cublas", "bundled|DIR", BUNDLED,
      "the cuBLAS of every engine in the JVM: bundled (12.4.5, shipped with DJL's CUDA libtorch) or (experimental) a "
          + "directory holding a newer cuBLAS 12's libcublas.so.12 and libcublasLt.so.12 (a CUDA 12.6+ toolkit's "
          + "lib64); 12.6.3 took 13-21% off the fp16 decode step on an H200 (README, cuBLAS); the same for every "
          + "engine of a JVM; PYTORCH_LIBRARY_PATH, if set, must be a system property, not in the environment")
      .validate(s -> !s.isBlank(), "bundled or a directory");

  /** cuBLAS as DJL's libtorch names it: {@code libcublas-4cc45526.so.12}, {@code libcublasLt-44a813aa.so.12}. */
  static final Pattern BUNDLED_NAME = Pattern.compile("lib(cublas|cublasLt)-[0-9a-f]{8}\\.so\\.12");

  /** A versioned file name of cuBLAS 12: {@code libcublas.so.12.6.4.1}. */
  private static final Pattern VERSIONED = Pattern.compile("libcublas(?:Lt)?\\.so\\.(12)\\.(\\d+)(?:\\.\\d+)*");

  /** The oldest cuBLAS taken: the one libtorch 2.5.1 (CUDA 12.4) ships. */
  static final int MIN_MINOR = 4;

  private static final String LIBRARY_PATH = "PYTORCH_LIBRARY_PATH";

  private static String applied = BUNDLED; // what this JVM's engines run on
  private static String appliedVersion;

  private CublasOverride() {}

  /**
   * Makes this JVM's engines run on the cuBLAS {@code value} names ({@link #CUBLAS}); nothing for {@code bundled}.
   * Idempotent for one value.
   *
   * @throws IllegalArgumentException for a directory without a usable cuBLAS 12, or a libtorch without cuBLAS (the
   *     CPU build)
   * @throws IllegalStateException when PyTorch has loaded already, or the JVM's engines run on another cuBLAS
   */
  public static synchronized void ensure(String value) {
    String wanted = value.equals(BUNDLED) ? BUNDLED : Path.of(value).toAbsolutePath().normalize().toString();
    if (wanted.equals(applied)) {
      return;
    }
    if (!applied.equals(BUNDLED) || DjlLibtorch.loaded()) {
      throw new IllegalStateException("this JVM's engines run on " + (applied.equals(BUNDLED)
          ? "the cuBLAS bundled with libtorch (PyTorch is loaded)" : "the cuBLAS in " + applied)
          + "; --cublas " + value + " has to be set before the JVM's first engine loads, the same for every engine");
    }
    Cublas cublas = Cublas.in(Path.of(wanted));
    if (System.getenv(LIBRARY_PATH) != null) {
      throw new IllegalStateException("--cublas needs " + LIBRARY_PATH + " as a system property (-D" + LIBRARY_PATH
          + "=...), not in the environment, which DJL reads first");
    }
    DjlLibtorch.Found libtorch = DjlLibtorch.find();
    Path overlay;
    try {
      overlay = LibtorchOverlay.write(libtorch.dir(), replacements(libtorch.dir(), cublas), defaultRoot());
    } catch (IOException e) {
      throw new UncheckedIOException("could not write the libtorch directory with the cuBLAS in " + wanted, e);
    }
    System.setProperty(LIBRARY_PATH, overlay.toString());
    // DJL takes the version and flavor of an overridden libtorch from these, else from the driver's CUDA version
    if (System.getProperty("PYTORCH_VERSION") == null && System.getenv("PYTORCH_VERSION") == null) {
      System.setProperty("PYTORCH_VERSION", libtorch.version());
    }
    if (System.getProperty("PYTORCH_FLAVOR") == null && System.getenv("PYTORCH_FLAVOR") == null) {
      System.setProperty("PYTORCH_FLAVOR", libtorch.flavor());
    }
    applied = wanted;
    appliedVersion = cublas.version();
    LOG.info("libtorch {} runs on cuBLAS {} from {} (through {})", libtorch.version(), cublas.version(), wanted,
        overlay);
  }

  /**
   * The cuBLAS this JVM's engines run on, where {@code --cublas} named one ({@code cuBLAS 12.6.3 from DIR}); empty
   * for the bundled one.
   */
  public static synchronized Optional<String> applied() {
    return applied.equals(BUNDLED) ? Optional.empty() : Optional.of("cuBLAS " + appliedVersion + " from " + applied);
  }

  /** A cuBLAS 12 directory's two libraries, their real paths, and the version its file names tell, if any. */
  record Cublas(Path cublas, Path cublasLt, String version) {

    static Cublas in(Path dir) {
      if (!Files.isDirectory(dir)) {
        throw new IllegalArgumentException("--cublas " + dir + ": not a directory");
      }
      Path lib = dir.resolve("libcublas.so.12");
      Path lt = dir.resolve("libcublasLt.so.12");
      if (!Files.isRegularFile(lib) || !Files.isRegularFile(lt)) {
        String other = Files.exists(dir.resolve("libcublas.so.13")) ? " (it holds cuBLAS 13, of CUDA 13, which "
            + "libtorch 2.5.1, built with CUDA 12, cannot use)" : "";
        throw new IllegalArgumentException("--cublas " + dir + " has no libcublas.so.12 and libcublasLt.so.12"
            + other + ": name the lib64 directory of a CUDA 12.4 or newer toolkit, or a directory holding both");
      }
      try {
        Path realLib = lib.toRealPath();
        Path realLt = lt.toRealPath();
        String version = versionOf(realLib.getFileName().toString());
        Matcher m = VERSIONED.matcher(realLib.getFileName().toString());
        if (m.matches() && Integer.parseInt(m.group(2)) < MIN_MINOR) {
          throw new IllegalArgumentException("--cublas " + dir + " holds cuBLAS " + version
              + ", older than the 12.4 bundled with libtorch");
        }
        return new Cublas(realLib, realLt, version);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /** The version a file name tells ({@code libcublas.so.12.6.4.1}: 12.6.4.1), else "12 (version not named)". */
    static String versionOf(String fileName) {
      return VERSIONED.matcher(fileName).matches() ? fileName.substring(fileName.indexOf(".so.") + 4)
          : "12 (version not named)";
    }
  }

  /**
   * The names of DJL's libtorch directory to replace, and what with: its cuBLAS names, and cuBLAS 12's own names
   * ({@code libcublas.so.12}, {@code libcublasLt.so.12}, by which the newer {@code libcublas} asks for its
   * {@code libcublasLt}).
   *
   * @throws IllegalArgumentException when {@code libtorch} has no bundled cuBLAS to replace
   */
  static Map<String, Path> replacements(Path libtorch, Cublas cublas) throws IOException {
    Map<String, Path> replaced = new TreeMap<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(libtorch)) {
      for (Path file : files) {
        Matcher m = BUNDLED_NAME.matcher(file.getFileName().toString());
        if (m.matches()) {
          Path replacement = m.group(1).equals("cublasLt") ? cublas.cublasLt() : cublas.cublas();
          replaced.put(file.getFileName().toString(), replacement);
        }
      }
    }
    if (replaced.isEmpty()) {
      throw new IllegalArgumentException("--cublas replaces the cuBLAS of DJL's CUDA libtorch, and " + libtorch
          + " has none (a CPU build: pytorch-native-cpu)");
    }
    replaced.put("libcublas.so.12", cublas.cublas());
    replaced.put("libcublasLt.so.12", cublas.cublasLt());
    return replaced;
  }

  /** Where overlays live: {@code $XDG_CACHE_HOME/sparkinfer/libtorch}, else {@code ~/.cache/sparkinfer/libtorch}. */
  static Path defaultRoot() {
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
    return base.resolve("sparkinfer").resolve("libtorch");
  }
}
