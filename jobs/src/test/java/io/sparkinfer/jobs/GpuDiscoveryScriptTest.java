package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code submit/lib/gpu-discovery.sh}, Spark's GPU discovery script, with a fake {@code nvidia-smi} first on the
 * PATH. The fake answers only the query the script must make ({@code --query-gpu=index --format=csv,noheader}) and
 * prints what a real one prints for that query; the script's output is read with Spark's own parser
 * ({@link ResourceInformation#parseJson(String)}), as an executor or standalone worker reads it.
 */
class GpuDiscoveryScriptTest {

  static final String SCRIPT = "submit/lib/gpu-discovery.sh";

  @TempDir
  Path tmp;

  @Test
  void listsEveryGpuIndexNvidiaSmiReports() {
    assertThat(discover(fakeNvidiaSmi("0\n1\n", 0))).isEqualTo(List.of("0", "1"));
    assertThat(discover(fakeNvidiaSmi("0\n", 0))).isEqualTo(List.of("0"));
    assertThat(discover(fakeNvidiaSmi("0\n1\n2\n3\n", 0))).isEqualTo(List.of("0", "1", "2", "3"));
  }

  @Test
  void noGpuGivesAnEmptyAddressList() {
    assertThat(discover(fakeNvidiaSmi("", 0))).as("a query that lists nothing").isEmpty();
    assertThat(discover(fakeNvidiaSmi("No devices were found\n", 6))).as("nvidia-smi's own answer without GPUs")
        .isEmpty();
  }

  @Test
  void failingNvidiaSmiFailsTheScriptWithItsMessage() {
    Shell.Result r = run(fakeNvidiaSmi(
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9));
    assertThat(r.status()).as("%s", r).isEqualTo(1);
    assertThat(r.stdout()).as("no JSON that Spark could take for an answer").isEmpty();
    assertThat(r.stderr()).contains("failed (exit 9)").contains("couldn't communicate with the NVIDIA driver");
  }

  @Test
  void outputThatIsNotAnIndexFailsTheScript() {
    Shell.Result r = run(fakeNvidiaSmi("0\nGPU-5d7e-uuid\n", 0));
    assertThat(r.status()).as("%s", r).isEqualTo(1);
    assertThat(r.stderr()).contains("'GPU-5d7e-uuid', not a GPU index");
  }

  @Test
  void missingNvidiaSmiFailsTheScriptSayingSo() throws IOException {
    Path empty = Files.createDirectories(tmp.resolve("no-nvidia-smi"));
    // bash and the coreutils the script runs, but no nvidia-smi
    Shell.Result r = Shell.run(Map.of("PATH", empty + ":/usr/bin:/bin"), 30, List.of(SCRIPT));
    assertThat(r.status()).as("%s", r).isEqualTo(1);
    assertThat(r.stderr()).contains("nvidia-smi is not on PATH");
  }

  @Test
  void theScriptIsExecutable() {
    assertThat(TestSupport.repo().resolve(SCRIPT)).isExecutable();
  }

  /** The addresses the script reports, as Spark parses them; fails unless it exits 0 with a GPU resource. */
  private List<String> discover(Path fakeDir) {
    Shell.Result r = run(fakeDir);
    assertThat(r.status()).as("%s", r).isZero();
    ResourceInformation info = ResourceInformation.parseJson(r.stdout().strip());
    assertThat(info.name()).isEqualTo("gpu");
    return List.of(info.addresses());
  }

  private Shell.Result run(Path fakeDir) {
    return Shell.run(Map.of("PATH", fakeDir + ":" + System.getenv("PATH")), 30, List.of(SCRIPT));
  }

  /**
   * A directory holding an {@code nvidia-smi} that prints {@code output} and exits {@code status} when asked the
   * discovery query, and fails loudly for any other arguments.
   */
  static Path fakeNvidiaSmi(Path dir, String output, int status) {
    try {
      Files.createDirectories(dir);
      Path out = dir.resolve("nvidia-smi.out");
      Files.writeString(out, output);
      Path smi = dir.resolve("nvidia-smi");
      Files.writeString(smi, "#!/bin/sh\n"
          + "if [ \"$*\" != \"--query-gpu=index --format=csv,noheader\" ]; then\n"
          + "  echo \"fake nvidia-smi: unexpected arguments: $*\" >&2; exit 64\n"
          + "fi\n"
          + "cat '" + out + "'\n"
          + "exit " + status + "\n");
      Files.setPosixFilePermissions(smi, PosixFilePermissions.fromString("rwxr-xr-x"));
      return dir;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private Path fakeNvidiaSmi(String output, int status) {
    return fakeNvidiaSmi(tmp.resolve("fake-" + Math.abs((output + status).hashCode())), output, status);
  }
}
