package io.sparkinfer.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@code --cublas} rests on, checked where there is no GPU: in an overlay of DJL's libtorch, a library that
 * libtorch asks for by name is the replacement, and libtorch's own is not loaded at all. The CPU build's libtorch asks
 * for its OpenMP runtime by a hashed name ({@code libgomp-98b21ff3.so.1}), as the CUDA build asks for cuBLAS
 * ({@code libcublas-4cc45526.so.12}); here the system's {@code libgomp} replaces it, in a JVM started with DJL pointed
 * at the overlay, which prints the libraries it mapped.
 */
class LibtorchOverlayTest {

  @TempDir
  Path tmp;

  @Test
  void theJvmMapsTheReplacementAndNotLibtorchsOwnLibrary() throws Exception {
    assumeTrue(Files.isReadable(Path.of("/proc/self/maps")), "Linux's /proc/self/maps lists what a process mapped");
    Engine.getEngine("PyTorch"); // DJL has its libtorch in place
    DjlLibtorch.Found libtorch = DjlLibtorch.find();
    Optional<Path> bundled = hashedGomp(libtorch.dir());
    Optional<Path> system = Stream.of("/usr/lib/x86_64-linux-gnu/libgomp.so.1", "/usr/lib64/libgomp.so.1",
        "/usr/lib/libgomp.so.1").map(Path::of).filter(Files::isRegularFile).findFirst();
    assumeTrue(bundled.isPresent(), "this libtorch asks for a hashed libgomp (DJL's builds for Linux do)");
    assumeTrue(system.isPresent(), "the system has a libgomp (gcc's runtime)");
    String name = bundled.get().getFileName().toString();
    Path replacement = system.get().toRealPath();

    Path overlay = LibtorchOverlay.write(libtorch.dir(), Map.of(name, replacement), tmp.resolve("root"));
    List<String> mapped = runWith(overlay, libtorch);

    assertThat(mapped).contains("sum 262144.0"); // 64 x 64 ones times 64 x 64 ones: libtorch ran
    assertThat(mapped).contains(replacement.toString());
    assertThat(mapped).noneMatch(path -> path.endsWith(name));
    String original = libtorch.dir().toRealPath().toString();
    assertThat(mapped).contains(overlay.resolve("libtorch_cpu.so").toString())
        .noneMatch(path -> path.startsWith(original));
  }

  @Test
  void symbolicLinksWouldNotDo() throws Exception {
    // the reason the overlay hard-links libtorch's files: Java loads a library by its canonical path, and a
    // libtorch_cpu.so loaded through a symbolic link finds its libgomp in the directory the link points into
    assumeTrue(Files.isReadable(Path.of("/proc/self/maps")), "Linux");
    Engine.getEngine("PyTorch");
    DjlLibtorch.Found libtorch = DjlLibtorch.find();
    Optional<Path> bundled = hashedGomp(libtorch.dir());
    assumeTrue(bundled.isPresent() && Files.isRegularFile(Path.of("/usr/lib/x86_64-linux-gnu/libgomp.so.1")));
    Path links = Files.createDirectories(tmp.resolve("links"));
    try (Stream<Path> files = Files.list(libtorch.dir())) {
      for (Path file : files.toList()) {
        Path target = file.equals(bundled.get()) ? Path.of("/usr/lib/x86_64-linux-gnu/libgomp.so.1").toRealPath()
            : file.toRealPath();
        Files.createSymbolicLink(links.resolve(file.getFileName()), target);
      }
    }
    assertThat(runWith(links, libtorch)).anyMatch(path -> path.endsWith(bundled.get().getFileName().toString()));
  }

  private static Optional<Path> hashedGomp(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(p -> p.getFileName().toString().matches("libgomp-[0-9a-f]{8}\\.so\\.1")).findFirst();
    }
  }

  /** What {@link LoadedLibraries} prints in a JVM whose DJL loads libtorch from {@code dir}. */
  private List<String> runWith(Path dir, DjlLibtorch.Found libtorch) throws IOException, InterruptedException {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> command = new ArrayList<>(List.of(java.toString(), "-cp", System.getProperty("java.class.path"),
        "-Dai.djl.offline=true", "-DPYTORCH_LIBRARY_PATH=" + dir, "-DPYTORCH_VERSION=" + libtorch.version(),
        "-DPYTORCH_FLAVOR=" + libtorch.flavor(), "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        LoadedLibraries.class.getName()));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().remove("PYTORCH_LIBRARY_PATH");
    Path log = tmp.resolve("child-" + System.nanoTime() + ".log");
    Process process = builder.redirectOutput(log.toFile()).start();
    assertThat(process.waitFor(120, TimeUnit.SECONDS)).as("the child JVM ends").isTrue();
    List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
    assertThat(process.exitValue()).as(String.join("\n", lines)).isZero();
    return lines;
  }
}
