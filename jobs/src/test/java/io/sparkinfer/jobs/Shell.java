package io.sparkinfer.jobs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs the project's shell scripts from tests. */
final class Shell {

  /** What a command printed and its exit status. */
  record Result(int status, String stdout, String stderr) {
    @Override
    public String toString() {
      return "exit " + status + "\n--- stdout\n" + stdout + "\n--- stderr\n" + tail(stderr);
    }
  }

  private Shell() {}

  static Result run(Map<String, String> env, long timeoutSeconds, List<String> command) {
    try {
      Path out = Files.createTempFile("sparkinfer-sh", ".out");
      Path err = Files.createTempFile("sparkinfer-sh", ".err");
      ProcessBuilder pb = new ProcessBuilder(command).directory(TestSupport.repo().toFile())
          .redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
      pb.environment().putAll(env);
      Process p = pb.start();
      p.getOutputStream().close();
      if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError(command + " did not end in " + timeoutSeconds + " s:\n" + tail(Files.readString(err)));
      }
      Result r = new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
          Files.readString(err, StandardCharsets.UTF_8));
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
      return r;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String tail(String s) {
    return s.length() <= 4000 ? s : "..." + s.substring(s.length() - 4000);
  }
}
