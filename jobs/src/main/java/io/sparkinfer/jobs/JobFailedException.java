package io.sparkinfer.jobs;

/** A run that failed while Spark executed it (a task or stage failure, a cancelled job); the cause says why. */
public class JobFailedException extends RuntimeException {

  public JobFailedException(String message, Throwable cause) {
    super(message, cause);
  }
}
