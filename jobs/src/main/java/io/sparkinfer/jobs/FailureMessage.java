package io.sparkinfer.jobs;

import java.util.HashSet;
import java.util.Set;

/**
 * A failed run's error as one line for people and for {@code job_runs.error}: the failure as Spark reports it
 * (e.g. "Job aborted due to stage failure: Task 0 in stage 3.0 failed 4 times, most recent failure: ..."), then
 * the root cause, the exception the task itself threw, which Spark's message buries under stack traces.
 */
final class FailureMessage {

  private static final String CAUSED_BY = "Caused by: ";

  private FailureMessage() {}

  /** {@code e}'s first line and, when it does not already say it, its root cause's. */
  static String of(Throwable e) {
    String top = firstLine(e instanceof JobFailedException ? e.getMessage() : e.toString());
    String root = rootCause(e);
    return root == null || top.contains(root) ? top : top + " | root cause: " + root;
  }

  /**
   * The deepest cause's first line: from the chain of causes (Spark attaches a task's exception to the job's
   * when it could deserialize it), else from the last "Caused by:" of the stack traces in the message.
   */
  private static String rootCause(Throwable e) {
    Throwable root = e;
    Set<Throwable> seen = new HashSet<>();
    while (root.getCause() != null && seen.add(root)) {
      root = root.getCause();
    }
    if (root != e) {
      return firstLine(root.toString());
    }
    String message = e.getMessage();
    int at = message == null ? -1 : message.lastIndexOf(CAUSED_BY);
    return at < 0 ? null : firstLine(message.substring(at + CAUSED_BY.length()));
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return (nl < 0 ? s : s.substring(0, nl)).strip();
  }
}
