package io.sparkinfer.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The compiled-kernel cache without a GPU: a compiler that counts its calls and makes bytes of its own stands in for
 * NVRTC ({@link CudaKernels.Module} runs the real one on the GPU machine, {@code CubinCacheGpuTest}).
 */
class CubinCacheTest {

  private static final CubinCache.Key KEY = CubinCache.Key.of("__global__ void k() {}", List.of("-DX=1"), "sm_90",
      "12.4");

  @TempDir
  Path tmp;

  private final AtomicInteger compiles = new AtomicInteger();

  private Supplier<byte[]> compiler(String content) {
    return () -> {
      compiles.incrementAndGet();
      return content.getBytes(StandardCharsets.UTF_8);
    };
  }

  @Test
  void aSecondLoadTakesTheCubinTheFirstCompiled() {
    CubinCache cache = CubinCache.in(tmp.resolve("kernels"));
    CubinCache.Cubin first = cache.get(KEY, compiler("cubin one"));
    CubinCache.Cubin second = CubinCache.in(tmp.resolve("kernels")).get(KEY, compiler("cubin two"));
    assertThat(first.cached()).isFalse();
    assertThat(second.cached()).isTrue();
    assertThat(new String(second.bytes(), StandardCharsets.UTF_8)).isEqualTo("cubin one");
    assertThat(compiles).hasValue(1);
  }

  @Test
  void theKeyChangesWithTheSourceTheOptionsTheArchitectureAndTheCompiler() {
    List<CubinCache.Key> keys = List.of(KEY,
        CubinCache.Key.of("__global__ void k() { }", List.of("-DX=1"), "sm_90", "12.4"),
        CubinCache.Key.of("__global__ void k() {}", List.of("-DX=2"), "sm_90", "12.4"),
        CubinCache.Key.of("__global__ void k() {}", List.of("-DX=1", "-DY"), "sm_90", "12.4"),
        CubinCache.Key.of("__global__ void k() {}", List.of("-DX=1"), "sm_89", "12.4"),
        CubinCache.Key.of("__global__ void k() {}", List.of("-DX=1"), "sm_90", "12.6"));
    assertThat(keys).doesNotHaveDuplicates();
    assertThat(CubinCache.Key.of("__global__ void k() {}", List.of("-DX=1"), "sm_90", "12.4")).isEqualTo(KEY);
    CubinCache cache = CubinCache.in(tmp);
    for (CubinCache.Key k : keys) {
      assertThat(cache.get(k, compiler("c")).cached()).isFalse();
    }
    assertThat(compiles).hasValue(keys.size());
  }

  @Test
  void aDamagedOrOversizedFileIsCompiledAgainAndReplaced() throws IOException {
    CubinCache cache = CubinCache.in(tmp);
    cache.get(KEY, compiler("the real cubin"));
    Path file = cache.file(KEY);
    byte[] stored = Files.readAllBytes(file);
    stored[stored.length - 1] ^= 1; // one bit changed
    Files.write(file, stored);
    CubinCache.Cubin again = cache.get(KEY, compiler("compiled again"));
    assertThat(again.cached()).isFalse();
    assertThat(new String(cache.get(KEY, compiler("x")).bytes(), StandardCharsets.UTF_8)).isEqualTo("compiled again");

    Files.write(file, new byte[10]); // shorter than a digest
    assertThat(cache.get(KEY, compiler("short")).cached()).isFalse();
    try (var out = Files.newOutputStream(file)) {
      out.write(new byte[(int) CubinCache.MAX_BYTES + 64]); // over the bound: not read at all
    }
    assertThat(cache.get(KEY, compiler("big")).cached()).isFalse();
    assertThat(Files.size(file)).isLessThan(100);
    assertThat(compiles).hasValue(4);
  }

  @Test
  void theDirectoryIsMadeForItsOwnerAlone() throws IOException {
    Path dir = tmp.resolve("a").resolve("kernels");
    CubinCache.in(dir).get(KEY, compiler("c"));
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir))).isEqualTo("rwx------");
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(CubinCache.in(dir).file(KEY))))
        .isEqualTo("rw-------");
    try (var files = Files.list(dir)) {
      assertThat(files.map(p -> p.getFileName().toString())).containsExactly(KEY.digest() + ".cubin"); // no temp left
    }
  }

  @Test
  void aDirectoryOthersCanWriteIsNotUsed() throws IOException {
    Path dir = Files.createDirectory(tmp.resolve("shared"));
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
    CubinCache cache = CubinCache.in(dir);
    cache.get(KEY, compiler("c"));
    assertThat(dir).isEmptyDirectory();
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    cache.get(KEY, compiler("c"));
    Files.setPosixFilePermissions(cache.file(KEY), PosixFilePermissions.fromString("rw-rw-rw-"));
    assertThat(cache.get(KEY, compiler("c")).cached()).as("a file others can write").isFalse();
    assertThat(compiles).hasValue(3);
  }

  @Test
  void aLinkedFileIsNotRead() throws IOException {
    CubinCache cache = CubinCache.in(tmp.resolve("kernels"));
    cache.get(KEY, compiler("c"));
    Path elsewhere = Files.write(tmp.resolve("planted.cubin"), Files.readAllBytes(cache.file(KEY)));
    Files.delete(cache.file(KEY));
    Files.createSymbolicLink(cache.file(KEY), elsewhere);
    assertThat(cache.get(KEY, compiler("c")).cached()).isFalse();
  }

  @Test
  void aCacheThatCannotBeWrittenStillGivesTheCompiledKernels() throws IOException {
    Path file = Files.writeString(tmp.resolve("not-a-directory"), "x");
    CubinCache cache = CubinCache.in(file.resolve("kernels"));
    CubinCache.Cubin c = cache.get(KEY, compiler("compiled"));
    assertThat(new String(c.bytes(), StandardCharsets.UTF_8)).isEqualTo("compiled");
    assertThat(cache.get(KEY, compiler("compiled")).cached()).isFalse();
  }

  @Test
  void noneCompilesEveryTimeAndWritesNothing() {
    CubinCache none = CubinCache.of("none");
    assertThat(none.directory()).isEmpty();
    none.get(KEY, compiler("c"));
    assertThat(none.get(KEY, compiler("c")).cached()).isFalse();
    assertThat(compiles).hasValue(2);
  }

  @Test
  void theSettingNamesTheDirectory() {
    assertThat(CubinCache.of("auto").directory()).contains(CubinCache.defaultDirectory());
    assertThat(CubinCache.of(" AUTO ").directory()).contains(CubinCache.defaultDirectory());
    assertThat(CubinCache.defaultDirectory()).endsWithRaw(Path.of("sparkinfer", "kernels"));
    assertThat(CubinCache.of(tmp.toString()).directory()).contains(tmp);
    assertThatThrownBy(() -> CubinCache.of(" ")).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void processesWritingAtOnceLeaveOneWholeFile() throws Exception {
    Path dir = tmp.resolve("kernels");
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<CubinCache.Cubin>> runs = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        runs.add(pool.submit(() -> CubinCache.in(dir).get(KEY, compiler("x".repeat(100_000)))));
      }
      for (Future<CubinCache.Cubin> r : runs) {
        assertThat(r.get().bytes()).hasSize(100_000);
      }
    } finally {
      pool.shutdown();
    }
    assertThat(CubinCache.in(dir).get(KEY, compiler("y")).cached()).isTrue();
    try (var files = Files.list(dir)) {
      assertThat(files).hasSize(1);
    }
  }
}
