package io.sparkinfer.jobs;

import java.io.Serializable;
import java.util.Locale;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;

/**
 * A test hook, never set in production: a fault injected into the job's inference tasks, so that tests of
 * retries and lost executors fail a task deterministically, where and when they choose. It is read on the
 * driver from Spark conf keys that only tests set; without {@code spark.sparkinfer.test.fault.action} there
 * is no fault and the tasks run as they always do.
 *
 * <ul>
 *   <li>{@value #ACTION}: {@code fail} (the task throws {@link InjectedFaultException}) or {@code halt} (the
 *       executor's JVM halts at once, as a killed executor would; refused in the driver's JVM, i.e. local mode)
 *   <li>{@value #ATTEMPTS}: {@code first} (default: only a partition's first attempt, in its stage's first
 *       attempt) or {@code every}
 *   <li>{@value #PARTITION}: the partition whose tasks fail, or {@code every} (default)
 *   <li>{@value #AFTER_ROWS}: completion rows the task hands to the writer before the fault (default 0); a
 *       partition with fewer rows faults at its end
 * </ul>
 *
 * @param action what happens
 * @param everyAttempt whether every attempt faults, or only the first
 * @param partition the partition that faults; -1 for every partition
 * @param afterRows rows handed to the writer before the fault
 */
record InjectedFault(Action action, boolean everyAttempt, int partition, long afterRows) implements Serializable {

  static final String PREFIX = "spark.sparkinfer.test.fault.";
  static final String ACTION = PREFIX + "action";
  static final String ATTEMPTS = PREFIX + "attempts";
  static final String PARTITION = PREFIX + "partition";
  static final String AFTER_ROWS = PREFIX + "afterRows";

  /** Exit status of an executor halted by the fault. */
  static final int HALT_STATUS = 86;

  /** What the fault does. */
  enum Action {
    FAIL, HALT
  }

  /** Thrown by a task that the fault fails. */
  static final class InjectedFaultException extends RuntimeException {
    InjectedFaultException(String message) {
      super(message);
    }
  }

  /** The fault the conf asks for; null (the production case) when it asks for none. */
  static InjectedFault from(SparkConf conf) {
    if (!conf.contains(ACTION)) {
      return null;
    }
    Action action = parseAction(conf.get(ACTION));
    String attempts = conf.get(ATTEMPTS, "first").trim().toLowerCase(Locale.ROOT);
    if (!attempts.equals("first") && !attempts.equals("every")) {
      throw new IllegalArgumentException(ATTEMPTS + " must be first or every, got '" + attempts + "'");
    }
    String partition = conf.get(PARTITION, "every").trim();
    try {
      return new InjectedFault(action, attempts.equals("every"),
          partition.equals("every") ? -1 : Integer.parseInt(partition), Long.parseLong(conf.get(AFTER_ROWS, "0").trim()));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(PARTITION + " and " + AFTER_ROWS + " take numbers: " + e.getMessage(), e);
    }
  }

  private static Action parseAction(String value) {
    try {
      return Action.valueOf(value.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(ACTION + " must be fail or halt, got '" + value + "'", e);
    }
  }

  /** Whether this task attempt faults. */
  boolean applies(TaskContext task) {
    return task != null && (partition < 0 || task.partitionId() == partition)
        && (everyAttempt || (task.stageAttemptNumber() == 0 && task.attemptNumber() == 0));
  }

  /** Faults the task (it has handed {@code rows} rows to the writer): throws, or halts the executor's JVM. */
  void trigger(TaskContext task, long rows) {
    String where = "partition " + task.partitionId() + ", attempt " + task.attemptNumber() + " (stage attempt "
        + task.stageAttemptNumber() + "), after " + rows + " rows";
    if (action == Action.HALT) {
      if ("driver".equals(SparkEnv.get().executorId())) {
        throw new InjectedFaultException("injected fault: halt refused in the driver's JVM (local mode), " + where);
      }
      System.err.println("sparkinfer: injected fault: halting this executor's JVM, " + where);
      System.err.flush();
      Runtime.getRuntime().halt(HALT_STATUS);
    }
    throw new InjectedFaultException("injected fault: task failed on purpose, " + where);
  }
}
