package io.sparkinfer.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.engine.Engine;
import io.sparkinfer.engine.EngineOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --cublas} without a GPU: the directory of links that puts a newer cuBLAS under DJL's libtorch, made over
 * stand-in files named as DJL's CUDA libtorch and a CUDA toolkit name theirs; the checks of the directory given; and
 * the engine's refusal once PyTorch has loaded. The GPU run with cuBLAS 12.6.3 is
 * {@code bench/results/2026-12-03-cublas-NVIDIA-H200}.
 */
class CublasOverrideTest {

  @TempDir
  Path tmp;

  /** A libtorch directory as DJL's pytorch-native-cu124 2.5.1 lays it out (a few of its files). */
  private Path libtorch() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("libtorch"));
    for (String name : List.of("libtorch.so", "libtorch_cuda.so", "libc10.so", "libcudart-8774224f.so.12",
        "libcublas-4cc45526.so.12", "libcublasLt-44a813aa.so.12", "0.33.0-libdjl_torch.so")) {
      Files.writeString(dir.resolve(name), name);
    }
    return dir;
  }

  /** A toolkit's lib64: versioned files, the .so.12 names links to them. */
  private Path toolkit(String version) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("cuda-" + version));
    for (String lib : List.of("libcublas", "libcublasLt")) {
      Files.writeString(dir.resolve(lib + ".so." + version), lib);
      Files.createSymbolicLink(dir.resolve(lib + ".so.12"), Path.of(lib + ".so." + version));
    }
    return dir;
  }

  private static Object fileKey(Path dir) throws IOException {
    return Files.readAttributes(dir, BasicFileAttributes.class).fileKey();
  }

  /** The symbolic links of a directory, by name, and what each points to. */
  private static Map<String, Path> linksIn(Path dir) throws IOException {
    Map<String, Path> links = new TreeMap<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path p : files.filter(Files::isSymbolicLink).toList()) {
        links.put(p.getFileName().toString(), Files.readSymbolicLink(p));
      }
    }
    return links;
  }

  @Test
  void theLinksPutTheToolkitsCublasUnderLibtorchsNames() throws IOException {
    Path libtorch = libtorch();
    Path cuda = toolkit("12.6.4.1");
    CublasOverride.Cublas cublas = CublasOverride.Cublas.in(cuda);
    assertThat(cublas.version()).isEqualTo("12.6.4.1");

    Path overlay = LibtorchOverlay.write(libtorch, CublasOverride.replacements(libtorch, cublas),
        tmp.resolve("root"));

    Path lib = cuda.resolve("libcublas.so.12.6.4.1").toRealPath();
    Path lt = cuda.resolve("libcublasLt.so.12.6.4.1").toRealPath();
    assertThat(linksIn(overlay)).hasSize(4)
        .containsEntry("libcublas-4cc45526.so.12", lib).containsEntry("libcublasLt-44a813aa.so.12", lt)
        .containsEntry("libcublas.so.12", lib).containsEntry("libcublasLt.so.12", lt);
    for (String kept : List.of("libtorch.so", "libtorch_cuda.so", "libc10.so", "libcudart-8774224f.so.12",
        "0.33.0-libdjl_torch.so")) {
      assertThat(overlay.resolve(kept)).isRegularFile().hasSameTextualContentAs(libtorch.resolve(kept));
      assertThat(Files.isSymbolicLink(overlay.resolve(kept))).as(kept).isFalse();
      assertThat(Files.isSameFile(overlay.resolve(kept), libtorch.resolve(kept))).as(kept + " hard-linked").isTrue();
    }
    try (Stream<Path> files = Files.list(overlay)) {
      assertThat(files).hasSize(9);
    }
  }

  @Test
  void aSecondCallReusesTheOverlayAndAnEntryThatDiffersIsWrittenAgain() throws IOException {
    Path libtorch = libtorch();
    Map<String, Path> replaced = CublasOverride.replacements(libtorch, CublasOverride.Cublas.in(toolkit("12.6.3")));
    Path root = tmp.resolve("root");
    Path first = LibtorchOverlay.write(libtorch, replaced, root);
    Object written = fileKey(first);
    assertThat(LibtorchOverlay.write(libtorch, replaced, root)).isEqualTo(first);
    assertThat(fileKey(first)).as("the same directory, not written again").isEqualTo(written);

    Path tampered = first.resolve("libcublas-4cc45526.so.12");
    Files.delete(tampered);
    Files.createSymbolicLink(tampered, libtorch.resolve("libcublas-4cc45526.so.12"));
    Files.delete(first.resolve("libc10.so"));
    Files.writeString(first.resolve("libc10.so"), "someone else's libc10");
    Path again = LibtorchOverlay.write(libtorch, replaced, root);

    assertThat(again).isEqualTo(first);
    assertThat(fileKey(again)).as("written again").isNotEqualTo(written);
    assertThat(Files.readSymbolicLink(again.resolve("libcublas-4cc45526.so.12")))
        .isEqualTo(replaced.get("libcublas-4cc45526.so.12"));
    assertThat(Files.isSameFile(again.resolve("libc10.so"), libtorch.resolve("libc10.so"))).isTrue();
    try (Stream<Path> left = Files.list(root)) {
      assertThat(left).hasSize(1); // no temporary directory left behind
    }
  }

  @Test
  void aDirectoryWithoutCublas12IsRefusedSayingWhatItHolds() throws IOException {
    Path empty = Files.createDirectories(tmp.resolve("empty"));
    assertThatThrownBy(() -> CublasOverride.Cublas.in(empty)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("no libcublas.so.12 and libcublasLt.so.12");

    Path cuda13 = Files.createDirectories(tmp.resolve("cuda13"));
    Files.writeString(cuda13.resolve("libcublas.so.13"), "13");
    assertThatThrownBy(() -> CublasOverride.Cublas.in(cuda13)).hasMessageContaining("cuBLAS 13");

    assertThatThrownBy(() -> CublasOverride.Cublas.in(toolkit("12.3.4.1")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("12.3.4.1, older than the 12.4");
    assertThatThrownBy(() -> CublasOverride.Cublas.in(tmp.resolve("missing"))).hasMessageContaining("not a directory");
  }

  @Test
  void aLibtorchWithoutCublasIsRefused() throws IOException {
    Path cpu = Files.createDirectories(tmp.resolve("cpu"));
    Files.writeString(cpu.resolve("libtorch_cpu.so"), "cpu");
    CublasOverride.Cublas cublas = CublasOverride.Cublas.in(toolkit("12.6.3"));
    assertThatThrownBy(() -> CublasOverride.replacements(cpu, cublas))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("a CPU build");
  }

  @Test
  void aRootOthersCanWriteIsNotUsed() throws IOException {
    Path root = Files.createDirectories(tmp.resolve("shared-root"));
    Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path libtorch = libtorch();
    Map<String, Path> replaced = CublasOverride.replacements(libtorch, CublasOverride.Cublas.in(toolkit("12.6.3")));
    assertThatThrownBy(() -> LibtorchOverlay.write(libtorch, replaced, root)).isInstanceOf(IOException.class)
        .hasMessageContaining("writable by its owner alone");
  }

  @Test
  void onceThePyTorchEngineHasLoadedTheEngineRefusesAnotherCublas() throws IOException {
    Engine.getEngine("PyTorch"); // as every earlier engine load in this JVM did
    Path cuda = toolkit("12.6.3");
    CublasOverride.ensure(CublasOverride.BUNDLED); // what is loaded: nothing to do
    EngineOptions options = EngineOptions.of(tmp).with(CublasOverride.CUBLAS, cuda.toString());
    assertThatThrownBy(options::gpuCount).isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("before the JVM's first engine loads");
    assertThat(System.getProperty("PYTORCH_LIBRARY_PATH")).isNull();
  }

  @Test
  void djlSaysWhereItsLibtorchIs() {
    Engine.getEngine("PyTorch");
    assertThat(DjlLibtorch.loaded()).isTrue();
    DjlLibtorch.Found found = DjlLibtorch.find();
    assertThat(found.version()).startsWith(Engine.getEngine("PyTorch").getVersion()); // 2.5.1-20241113 from the jar
    assertThat(found.dir().resolve("libtorch.so")).exists();
  }
}
