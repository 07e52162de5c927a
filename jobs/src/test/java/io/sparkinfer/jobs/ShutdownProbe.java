package io.sparkinfer.jobs;

import java.nio.file.Path;

/**
 * A JVM that exits while threads still tokenize with the executor's cached tokenizer, as an executor killed mid-task
 * does: {@link ExecutorEnginesShutdownTest} runs it in a process of its own. Usage: {@code ShutdownProbe MODEL_DIR}.
 */
public final class ShutdownProbe {

  private ShutdownProbe() {}

  public static void main(String[] args) throws InterruptedException {
    ExecutorEngines.PlanningTokenizer tokenizer = ExecutorEngines.tokenizer(Path.of(args[0]));
    String prompt = "def add(a, b):\n    return a + b\n".repeat(40);
    for (int t = 0; t < 2; t++) {
      Thread worker = new Thread(() -> {
        while (true) {
          tokenizer.tokenizer().encode(prompt);
        }
      }, "tokenizing-" + t);
      worker.setDaemon(true);
      worker.start();
    }
    Thread.sleep(500);
    System.out.println("exiting while tokenizing");
    System.exit(0);
  }
}
