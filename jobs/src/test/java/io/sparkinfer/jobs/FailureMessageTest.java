package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import org.junit.jupiter.api.Test;

class FailureMessageTest {

  @Test
  void aRootCauseThatTheFirstLineDoesNotNameIsAddedAfterIt() {
    Exception e = new IllegalStateException("[TASK_WRITE_FAILED] Task failed while writing rows to /out.\n\tat x.y(Z.java:1)",
        new RuntimeException("wrapper", new IOException("disk full")));

    assertThat(FailureMessage.of(e)).isEqualTo("java.lang.IllegalStateException: [TASK_WRITE_FAILED] Task failed while "
        + "writing rows to /out. | root cause: java.io.IOException: disk full");
  }

  @Test
  void withoutACauseChainTheLastCausedByOfTheStackTraceTextIsTheRootCause() {
    Exception e = new RuntimeException("Job aborted due to stage failure: Task 0 failed 4 times, most recent failure: "
        + "x\n\tat a.b(C.java:1)\nCaused by: java.lang.IllegalStateException: wrapped\n\tat d.e(F.java:2)\n"
        + "Caused by: java.lang.ArithmeticException: / by zero\n\tat g.h(I.java:3)\n");

    assertThat(FailureMessage.of(e)).isEqualTo("java.lang.RuntimeException: Job aborted due to stage failure: Task 0 "
        + "failed 4 times, most recent failure: x | root cause: java.lang.ArithmeticException: / by zero");
  }

  @Test
  void aRootCauseTheFirstLineAlreadyNamesIsNotRepeated() {
    Exception e = new RuntimeException("most recent failure: java.io.IOException: disk full\n\tat a.b(C.java:1)",
        new IOException("disk full"));

    assertThat(FailureMessage.of(e)).isEqualTo("java.lang.RuntimeException: most recent failure: java.io.IOException: "
        + "disk full");
  }

  @Test
  void aJobFailedExceptionIsGivenByItsMessageAlone() {
    Exception e = new JobFailedException("run r1 failed: Job aborted | root cause: java.io.IOException: disk full",
        new IOException("disk full"));

    assertThat(FailureMessage.of(e)).isEqualTo("run r1 failed: Job aborted | root cause: java.io.IOException: disk full");
  }
}
