package io.sparkinfer.jobs.sweep;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Debian's Chromium, headless, for the tests that check how a page renders: where it is, and one run of it on a
 * page with its console going to stderr. Chromium 156 prints a console message (any level) as
 * {@code [pid:tid:time:INFO:CONSOLE:12] "message", source: file:///page.html (12)}; older releases wrote
 * {@code CONSOLE(12)}.
 */
final class HeadlessChromium {

  /** Tried in order: Debian's launcher, then these names on PATH. */
  private static final String DEBIAN_LAUNCHER = "/usr/bin/chromium";
  private static final List<String> NAMES_ON_PATH = List.of("chromium", "chromium-browser");
  private static final long TIMEOUT_S = 60;
  private static final Pattern CONSOLE_LINE = Pattern.compile("^\\[[^\\]]*:CONSOLE[^\\]]*\\] (.*)$", Pattern.MULTILINE);

  /** What one run printed. */
  record Result(int exitStatus, String stdout, String stderr) {

    /** The console messages in stderr, each as Chromium printed it after the log prefix. */
    List<String> consoleMessages() {
      List<String> messages = new ArrayList<>();
      Matcher m = CONSOLE_LINE.matcher(stderr);
      while (m.find()) {
        messages.add(m.group(1));
      }
      return messages;
    }
  }

  private HeadlessChromium() {}

  /** The Chromium executable: {@value #DEBIAN_LAUNCHER}, else {@code chromium} or {@code chromium-browser} on PATH. */
  static Optional<Path> find() {
    Path debian = Path.of(DEBIAN_LAUNCHER);
    if (Files.isExecutable(debian)) {
      return Optional.of(debian);
    }
    String path = System.getenv().getOrDefault("PATH", "");
    return NAMES_ON_PATH.stream()
        .flatMap(name -> Stream.of(path.split(File.pathSeparator)).filter(d -> !d.isEmpty())
            .map(d -> Path.of(d, name)))
        .filter(Files::isExecutable).findFirst();
  }

  /**
   * Runs {@code chromium} headless on {@code page} with {@code args} added (such as {@code --dump-dom}), a fresh
   * profile under {@code workDir}, five seconds of virtual time for the page to load, and its log (console
   * included) on stderr.
   *
   * @throws AssertionError when it does not end within 60 s
   */
  static Result run(Path chromium, Path workDir, Path page, List<String> args) throws IOException,
      InterruptedException {
    Path profile = Files.createTempDirectory(workDir, "chromium-profile");
    Path out = Files.createTempFile(workDir, "chromium", ".out");
    Path err = Files.createTempFile(workDir, "chromium", ".err");
    List<String> command = new ArrayList<>(List.of(chromium.toString(), "--headless=new", "--no-sandbox",
        "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=" + profile, "--allow-file-access-from-files",
        "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"));
    command.addAll(args);
    command.add(page.toUri().toString());
    Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    p.getOutputStream().close();
    if (!p.waitFor(TIMEOUT_S, TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      throw new AssertionError(String.join(" ", command) + " did not end in " + TIMEOUT_S + " s; stderr:\n"
          + Files.readString(err, StandardCharsets.UTF_8));
    }
    return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
        Files.readString(err, StandardCharsets.UTF_8));
  }
}
