package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A JVM that stops while its tasks still use the cached tokenizer (an executor killed, a job stopped with Ctrl-C)
 * exits cleanly: nothing frees the tokenizer's native memory under them at shutdown. (A shutdown hook that closed
 * every engine and tokenizer made such a JVM crash with SIGSEGV in libtokenizers.)
 */
class ExecutorEnginesShutdownTest {

  @Test
  void aJvmExitingWhileThreadsTokenizeExitsCleanly() throws Exception {
    for (int run = 0; run < 3; run++) { // the crash it guards against came at a random moment
      String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
      Process p = new ProcessBuilder(List.of(java, "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
          ShutdownProbe.class.getName(), TestSupport.tinyModel().toString())).redirectErrorStream(true).start();
      assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("the probe exits").isTrue();
      String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(output).as("run %d", run).contains("exiting while tokenizing").doesNotContain("SIGSEGV");
      assertThat(p.exitValue()).as("run %d: %s", run, output).isZero();
    }
  }
}
