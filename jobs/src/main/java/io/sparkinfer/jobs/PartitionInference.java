package io.sparkinfer.jobs;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.EnginePool;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReplicaPlan;
import io.sparkinfer.generate.BatchSizer;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.RequestOptions;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.Future;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Inference over one partition: rows of (prompt, prompt_tokens, ids, prompt_token_ids) sorted by prompt length in,
 * longest first ({@link Completions#arrange}), one completion row per id out ({@link Tables#COMPLETIONS}). The prompts
 * come tokenized by planning ({@link PromptTokenIds}): a task's first requests reach the generators as soon as its
 * rows are read, with no tokenizing in between.
 *
 * <p>The task's layout ({@code --layout}, {@link ReplicaPlan}) is laid over the GPUs Spark assigned to the task:
 * one engine per replica from the executor's cache ({@link ExecutorEngines}), and {@code threads} generators on
 * each, every generator on a thread of its own with its own batches. The generators are shared by the run's tasks
 * that run on the same devices at the same time ({@link SharedGenerators}): each task feeds its rows, read ahead,
 * into one stream of requests, longest first; each generator takes the next request whenever a row of its batch is
 * free (continuous batching across the tasks, with a batch as wide as the device's memory holds, however many tasks
 * share it), and each request's rows go back to its task and on to Spark's writer as soon as it is done.
 */
final class PartitionInference implements MapPartitionsFunction<Row, Row> {

  private static final Logger LOG = LoggerFactory.getLogger(PartitionInference.class);

  /** Requests read ahead of the generators, at most. */
  static final int QUEUED = 4096;
  /** How long the task thread waits for a completion before it reads more rows into the stream. */
  static final long POLL_MILLIS = 10;

  private final JobOptions options;
  private final ModelLocation model;
  private final String runId;
  private final JobMetrics metrics;
  private final InjectedFault fault; // a test hook: null unless a test asks for a fault
  private final int longestPromptTokens; // the run's longest prompt that can run; 0 where not known

  /**
   * @param longestPromptTokens the tokens of the run's longest prompt that can run (planning counts them; 0 where not
   *     known): the generators size their first batch's KV cache for it where that narrows the batch little, so a
   *     longer prompt reaching the stream later (from a task that started later) does not end that batch
   */
  PartitionInference(JobOptions options, ModelLocation model, String runId, JobMetrics metrics, InjectedFault fault,
      int longestPromptTokens) {
    this.options = options;
    this.model = model;
    this.runId = runId;
    this.metrics = metrics;
    this.fault = fault;
    this.longestPromptTokens = longestPromptTokens;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    TaskContext task = TaskContext.get();
    if (!input.hasNext()) {
      if (fault != null && fault.applies(task)) {
        fault.trigger(task, 0);
      }
      return Collections.emptyIterator();
    }
    long startMillis = System.currentTimeMillis();
    String executorId = SparkEnv.get().executorId();
    ReplicaPlan plan = replicaPlan(options, model, task);
    List<LlmEngine> engines = new ArrayList<>();
    long waitStart = System.nanoTime();
    for (EngineOptions replica : plan.replicas()) {
      engines.add(ExecutorEngines.engine(new ExecutorEngines.Key(model.uri(), replica), (k, loaded, seconds) ->
          metrics.recordLoad(executorId, seconds, loaded)));
    }
    long waitNanos = System.nanoTime() - waitStart; // loading the engines, or waiting for a preload of them
    metrics.executors.add(executorId);
    metrics.layouts.add(plan.layout().label());
    Pipeline pipeline = new Pipeline(input, engines, plan, executorId, task);
    if (task != null) {
      task.addTaskCompletionListener((TaskCompletionListener) ctx -> {
        if (!ctx.isFailed()) {
          metrics.reportHeldLoads(); // Spark keeps the accumulator updates of a task that succeeded
          metrics.timelines.add(pipeline.timeline(startMillis, waitNanos));
        }
      });
      task.addTaskCompletionListener((TaskCompletionListener) ctx -> pipeline.shutdown());
    } else {
      metrics.reportHeldLoads();
    }
    return pipeline;
  }

  /** The task's layout over the devices Spark assigned to it: the engines it runs on, one per replica. */
  static ReplicaPlan replicaPlan(JobOptions options, ModelLocation model, TaskContext task) {
    String device = DeviceBinding.forTask(options.device(), task);
    return ReplicaPlan.of(options.engineOptions(model.localDir().toString(), device));
  }

  /**
   * Starts loading, in the background, the engines an inference task on this executor would run on
   * ({@link ExecutorEngines#preload}): called by planning tasks, which run where the inference tasks will and
   * are assigned the same devices when the inference stage has no resource profile of its own.
   */
  static void preloadEngines(JobOptions options, ModelLocation model, TaskContext task) {
    ReplicaPlan plan;
    try {
      plan = replicaPlan(options, model, task);
    } catch (RuntimeException e) { // a layout these devices cannot hold: the inference task says so, as without
      LOG.debug("no preload: {}", e.toString());
      return;
    }
    for (EngineOptions replica : plan.replicas()) {
      ExecutorEngines.preload(new ExecutorEngines.Key(model.uri(), replica));
    }
  }

  /**
   * {@link #preloadEngines} on a preload thread, for the driver in local mode: the engines' layout needs the
   * PyTorch engine and its devices, which took 0.6 s of the driver's thread before it planned the run
   * ({@link RunPlan}'s notes). Then the planning tasks' tokenizer ({@link ExecutorEngines#tokenizer}), while the
   * engines load: otherwise the first planning task loads it, the native library too, with the others waiting.
   *
   * @return done when the preload has started (or was refused) and the tokenizer is loaded (or failed to: the
   *     planning tasks load it then); a failure is logged, and the inference tasks load the engines themselves as
   *     without a preload
   */
  static Future<?> preloadEnginesInBackground(JobOptions options, ModelLocation model) {
    return ExecutorEngines.inBackground(() -> {
      try {
        preloadEngines(options, model, null);
      } catch (RuntimeException e) {
        LOG.warn("the driver's preload of {} did not start; the inference tasks load it", model.uri(), e);
      }
      try {
        ExecutorEngines.tokenizer(model.localDir());
      } catch (RuntimeException e) {
        LOG.debug("no tokenizer preloaded: {}", e.toString()); // the planning task says what is wrong with it
      }
    });
  }

  /** One group of rows with the same prompt: one request, or one per id when not deduplicating. */
  private record Group(String prompt, List<String> ids) {}

  /** What a request answers: every id of its group (deduplicated), or the one id {@code id}. */
  private record Tag(Group group, String id) {}

  /**
   * The task's rows as requests into the executor's generators for its devices ({@link SharedGenerators}, shared
   * with the inference tasks running there at the same time), and their completions back out as rows. The task
   * thread reads rows into the shared stream (keeping up to {@link #QUEUED} requests waiting) and hands the finished
   * requests' rows to Spark's writer, detokenizing them; the generators take requests from the stream whenever a row
   * of their batch is free, so no batch drains before the last task's input ends.
   */
  private final class Pipeline implements Iterator<Row> {
    private final Iterator<Row> input;
    private final String layout;
    private final String executorId;
    private final TaskContext task;
    private final String precisionLabel;
    private final boolean oneRequestPerGroup;
    private final SharedGenerators.Lease lease;
    private boolean started;
    private boolean inputEnded;
    private boolean closed;
    private Iterator<Row> current = Collections.emptyIterator();
    private final boolean faulty; // the test hook applies to this attempt
    private long handed; // rows handed to the writer
    private long submitted; // requests put into the stream
    private long answered; // requests whose completion came back

    Pipeline(Iterator<Row> input, List<LlmEngine> engines, ReplicaPlan plan, String executorId, TaskContext task) {
      this.input = input;
      this.layout = plan.layout().label();
      this.executorId = executorId;
      this.task = task;
      this.oneRequestPerGroup = options.dedup() && options.isGreedy();
      this.precisionLabel = engines.get(0).precision().label();
      // the job's generation options over the executor's engines, one set of generators per run, devices and layout
      List<Object> key = new ArrayList<>(List.of(runId, layout));
      plan.replicas().forEach(r -> key.add(new ExecutorEngines.Key(model.uri(), r)));
      String name = "sparkinfer-generate-" + (task == null ? "local" : "stage-" + task.stageId());
      this.lease = SharedGenerators.join(key, () -> EnginePool.over(plan, engines, options.values(), name),
          options.batchSize());
      if (longestPromptTokens > 0) {
        lease.expectLongest(longestPromptTokens + options.values().get(RequestOptions.MAX_NEW_TOKENS));
      }
      this.faulty = fault != null && fault.applies(task);
    }

    @Override
    public boolean hasNext() {
      if (!started) {
        started = true;
        // requests enough for every generator's widest batch first, in one flush: a task with fewer ends its feed
        // here, so generators that start on them make no batch wider than the requests there are
        int widest = options.batchSize() > 0 ? options.batchSize() : BatchSizer.MAX_BATCH;
        feed((int) Math.min(QUEUED, (long) widest * lease.generators()));
      }
      while (!current.hasNext()) {
        List<SharedGenerators.Done> done = awaitFinished();
        if (done.isEmpty()) {
          if (faulty) {
            fault.trigger(task, handed); // fewer rows than the fault waits for: it strikes at the end
          }
          shutdown();
          return false;
        }
        current = rows(done).iterator();
      }
      if (faulty && handed >= fault.afterRows()) {
        fault.trigger(task, handed);
      }
      return true;
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      handed++;
      return current.next();
    }

    /** This task's timeline, from its start to now. */
    TaskTimeline timeline(long startMillis, long waitNanos) {
      return new TaskTimeline(startMillis, System.currentTimeMillis(), waitNanos);
    }

    /** Leaves the shared generators; the last task to leave stops them and reports their run. */
    synchronized void shutdown() {
      if (!closed) {
        closed = true;
        lease.close();
        SharedGenerators.Run run = lease.run();
        if (run != null) {
          metrics.generateNanos.add(run.generateNanos());
          metrics.oomRetries.add(run.oomRetries());
          metrics.generatorRuns.add(run);
        }
      }
    }

    /** Reads rows into the stream until {@link #QUEUED} requests wait; ends the task's feed with the input. */
    private void feed() {
      feed(QUEUED);
    }

    /** Reads rows into the stream until {@code queued} requests wait or the input ends; one flush. */
    private void feed(int queued) {
      if (inputEnded) {
        return;
      }
      int added = 0;
      int waiting = lease.waiting();
      while (waiting + added < queued && input.hasNext()) {
        Row r = input.next();
        Group g = new Group(r.getString(0), r.getList(2));
        long[] promptIds = PromptTokenIds.fromColumn(r, 3);
        for (String id : oneRequestPerGroup ? g.ids().subList(0, 1) : g.ids()) {
          lease.add(options.request(id, g.prompt(), promptIds), new Tag(g, oneRequestPerGroup ? null : id));
          submitted++;
          added++;
        }
      }
      if (!input.hasNext()) {
        inputEnded = true;
        lease.inputEnded(); // flushes what was added
      } else if (added > 0) {
        lease.flush();
      }
    }

    /**
     * The requests finished since the last call, waiting for at least one while feeding the stream; empty once
     * every request of the task is answered. A generator's failure fails the task.
     */
    private List<SharedGenerators.Done> awaitFinished() {
      List<SharedGenerators.Done> done = new ArrayList<>();
      try {
        while (true) {
          if (task != null && task.isInterrupted()) {
            throw new IllegalStateException("task killed while generating");
          }
          feed();
          lease.drainTo(done, 0);
          if (!done.isEmpty() || (inputEnded && answered == submitted)) {
            return done;
          }
          lease.rethrowFailure(layout);
          if (lease.generatorsEnded()) { // never written off as done: the task fails and is retried
            throw new IllegalStateException("the generators ended with " + (submitted - answered) + " of "
                + submitted + " requests unanswered (layout " + layout + ")");
          }
          lease.drainTo(done, POLL_MILLIS);
          if (!done.isEmpty()) {
            return done;
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for generation", e);
      }
    }

    /** The finished requests' completion rows, one per id, and the counters they add. */
    private List<Row> rows(List<SharedGenerators.Done> done) {
      List<Row> out = new ArrayList<>();
      long ok = 0;
      long errors = 0;
      long promptTokens = 0;
      long completionTokens = 0;
      for (SharedGenerators.Done f : done) {
        Completion c = f.completion().get();
        Tag tag = (Tag) f.tag();
        promptTokens += c.promptTokens();
        completionTokens += c.completionTokens();
        // deduplicated: one completion answers every id of the group; otherwise the request's own id
        for (String id : tag.id() == null ? tag.group().ids() : List.of(tag.id())) {
          out.add(row(id, tag.group().prompt(), c, f.device()));
          if (c.isError()) {
            errors++;
          } else {
            ok++;
          }
        }
      }
      answered += done.size();
      metrics.requests.add(done.size());
      metrics.promptTokens.add(promptTokens);
      metrics.completionTokens.add(completionTokens);
      metrics.okRows.add(ok);
      metrics.errorRows.add(errors);
      metrics.rowsDone.add(out.size());
      return out;
    }

    private Row row(String id, String prompt, Completion c, String device) {
      // Spark's row encoder takes a Scala Seq for an array column.
      Object tokens = scala.collection.immutable.ArraySeq$.MODULE$.unsafeWrapArray(c.outputTokenIds());
      return RowFactory.create(id, prompt, c.text(), tokens, c.promptTokens(), c.completionTokens(),
          c.finishReason().label(), c.errorCode(), c.errorMessage(), model.uri(), precisionLabel,
          layout, device, executorId, c.latencyMs(), c.timeToFirstTokenMs(), runId, false);
    }
  }
}
