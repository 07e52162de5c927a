package io.sparkinfer.jobs;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.EnginePool;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReplicaPlan;
import io.sparkinfer.generate.BatchSizer;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.generate.RequestQueue;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.TreeSet;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Inference over one partition: rows of (prompt, prompt_tokens, ids) sorted by prompt length in, longest first
 * ({@link Completions#arrange}), one completion row per id out ({@link Tables#COMPLETIONS}).
 *
 * <p>The task's layout ({@code --layout}, {@link ReplicaPlan}) is laid over the GPUs Spark assigned to the task:
 * one engine per replica from the executor's cache ({@link ExecutorEngines}), and {@code threads} generators on
 * each, every generator on a thread of its own with its own batches. Work is pipelined: the task's rows are one
 * stream of requests ({@link Pipeline}) that the task thread reads and tokenizes ahead of the generators; each
 * generator takes the next request whenever a row of its batch is free (continuous batching from the task's first
 * request to its last, in one batch: the first, longest, request sizes its KV cache), and each request's rows go
 * to Spark's writer as soon as it is done.
 */
final class PartitionInference implements MapPartitionsFunction<Row, Row> {

  private static final Logger LOG = LoggerFactory.getLogger(PartitionInference.class);

  /** Requests read and tokenized ahead of the generators, at most (plus one block). */
  static final int QUEUED = 4096;
  /** Rows the task thread reads and tokenizes at once. */
  static final int FEED_BLOCK = 256;
  /** How long the task thread waits for a completion before it reads more rows into the stream. */
  static final long POLL_MILLIS = 10;

  private final JobOptions options;
  private final ModelLocation model;
  private final String runId;
  private final JobMetrics metrics;
  private final InjectedFault fault; // a test hook: null unless a test asks for a fault

  PartitionInference(JobOptions options, ModelLocation model, String runId, JobMetrics metrics, InjectedFault fault) {
    this.options = options;
    this.model = model;
    this.runId = runId;
    this.metrics = metrics;
    this.fault = fault;
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

  /** One group of rows with the same prompt: one request, or one per id when not deduplicating. */
  private record Group(String prompt, int promptTokens, List<String> ids) {}

  /** What a request answers: every id of its group (deduplicated), or the one id {@code id}. */
  private record Tag(Group group, String id) {}

  /** A request's completion, made on the task thread, and the device that generated it. */
  private record Finished(Tag tag, Supplier<Completion> completion, String device) {}

  /**
   * A generator with the devices its rows name: {@code gpu:0}, or {@code gpu:0+gpu:1} for a split replica (as its
   * engine resolved them: {@code gpu:0} for {@code --device gpu}).
   */
  private record Worker(Generator generator, String device) {
    Worker(EnginePool.Member m) {
      this(m.generator(), JobMetrics.deviceLabel(m.engine().devices()));
    }
  }

  /**
   * The task's rows as one stream of requests into its generators, and their completions back out as rows. The
   * task thread reads and tokenizes rows into the stream (keeping up to {@link #QUEUED} requests waiting) and
   * hands the finished requests' rows to Spark's writer, detokenizing them; every generator runs on a thread of
   * its own and takes requests from the stream whenever a row of its batch is free, from the task's first request
   * to its last (no batch drains before the input ends).
   */
  private final class Pipeline implements Iterator<Row> {
    private final Iterator<Row> input;
    private final LlmEngine tokenizing; // the first replica's engine: its tokenizer reads every prompt
    private final String layout;
    private final String executorId;
    private final TaskContext task;
    private final String precisionLabel;
    private final boolean oneRequestPerGroup;
    private final EnginePool pool;
    private final List<Worker> workers = new ArrayList<>();
    private final RequestQueue<Tag> requests = new RequestQueue<>();
    private final BlockingQueue<Finished> finished = new LinkedBlockingQueue<>();
    private final List<Future<Long>> running = new ArrayList<>(); // each generator's nanoseconds generating
    private boolean started;
    private boolean closed;
    private Iterator<Row> current = Collections.emptyIterator();
    private final boolean faulty; // the test hook applies to this attempt
    private long handed; // rows handed to the writer
    private long submitted; // requests put into the stream
    private long answered; // requests whose completion came back
    private long generateNanos; // the generators' time generating, once they are done

    Pipeline(Iterator<Row> input, List<LlmEngine> engines, ReplicaPlan plan, String executorId, TaskContext task) {
      this.input = input;
      this.layout = plan.layout().label();
      this.executorId = executorId;
      this.task = task;
      this.oneRequestPerGroup = options.dedup() && options.isGreedy();
      String name = "sparkinfer-generate-" + (task == null ? "local" : task.partitionId() + "-" + task.taskAttemptId());
      // the job's generation options over the executor's engines
      this.pool = EnginePool.over(plan, engines, options.values(), name);
      this.tokenizing = pool.engine();
      this.precisionLabel = tokenizing.precision().label();
      pool.members().forEach(m -> workers.add(new Worker(m)));
      this.faulty = fault != null && fault.applies(task);
    }

    @Override
    public boolean hasNext() {
      if (!started) {
        started = true;
        // requests enough for every generator's widest batch first: a task with fewer ends its stream here, so each
        // batch is no wider than the task's requests (idle rows cost every decode step)
        int widest = options.batchSize() > 0 ? options.batchSize() : BatchSizer.MAX_BATCH;
        feed((int) Math.min(QUEUED, (long) widest * workers.size()));
        workers.forEach(w -> running.add(pool.threads().submit(() -> generate(w))));
      }
      while (!current.hasNext()) {
        List<Finished> done = awaitFinished();
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
      TreeSet<Integer> batchSizes = new TreeSet<>();
      workers.forEach(w -> batchSizes.addAll(w.generator().stats().batchWidths()));
      return new TaskTimeline(startMillis, System.currentTimeMillis(), workers.size(), generateNanos, waitNanos,
          batchSizes);
    }

    synchronized void shutdown() {
      requests.end();
      pool.threads().shutdownNow();
      if (!closed) {
        closed = true;
        try {
          pool.threads().awaitTermination(10, TimeUnit.SECONDS); // the generators' batches end before they close
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        pool.close();
      }
    }

    /**
     * Reads and tokenizes rows into the stream, {@link #FEED_BLOCK} groups at a time (one tokenizer call each),
     * until {@link #QUEUED} requests wait; ends the stream with the input.
     */
    private void feed() {
      feed(QUEUED);
    }

    /** Reads and tokenizes rows into the stream until {@code queued} requests wait or the input ends. */
    private void feed(int queued) {
      while (requests.size() < queued && input.hasNext()) {
        List<Group> groups = new ArrayList<>();
        while (groups.size() < FEED_BLOCK && input.hasNext()) {
          Row r = input.next();
          groups.add(new Group(r.getString(0), r.getInt(1), r.getList(2)));
        }
        long[][] promptIds = tokenizing.tokenizer().encodeAll(groups.stream().map(Group::prompt).toList());
        for (int i = 0; i < groups.size(); i++) {
          Group g = groups.get(i);
          for (String id : oneRequestPerGroup ? g.ids().subList(0, 1) : g.ids()) {
            requests.add(options.request(id, g.prompt(), promptIds[i]), new Tag(g, oneRequestPerGroup ? null : id));
            submitted++;
          }
        }
      }
      if (!input.hasNext() && !requests.ended()) {
        requests.end();
      }
    }

    /** Runs on a generation thread: the generator's share of the stream; returns its nanoseconds generating. */
    private long generate(Worker w) throws InterruptedException {
      long oomBefore = w.generator().stats().oomRetries();
      long start = System.nanoTime();
      try {
        long waited = w.generator().generate(requests, options.batchSize(),
            (tag, completion) -> finished.add(new Finished(tag, completion, w.device())));
        return System.nanoTime() - start - waited;
      } finally {
        metrics.oomRetries.add(w.generator().stats().oomRetries() - oomBefore);
      }
    }

    /**
     * The requests finished since the last call, waiting for at least one while feeding the stream; empty once
     * every generator is done and every completion is taken. A generator's failure fails the task.
     */
    private List<Finished> awaitFinished() {
      List<Finished> done = new ArrayList<>();
      try {
        while (true) {
          if (task != null && task.isInterrupted()) {
            throw new IllegalStateException("task killed while generating");
          }
          feed();
          finished.drainTo(done);
          if (!done.isEmpty()) {
            return done;
          }
          if (generatorsDone()) {
            finished.drainTo(done);
            if (done.isEmpty() && answered != submitted) { // never written off as done: the task fails and is retried
              throw new IllegalStateException("the generators ended with " + (submitted - answered) + " of "
                  + submitted + " requests unanswered (layout " + layout + ")");
            }
            return done;
          }
          Finished first = finished.poll(POLL_MILLIS, TimeUnit.MILLISECONDS);
          if (first != null) {
            done.add(first);
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for generation", e);
      }
    }

    /**
     * Whether every generator is done, adding up their time once they are; a generator's failure fails the task at
     * once, whatever the others are doing.
     */
    private boolean generatorsDone() throws InterruptedException {
      long total = 0;
      boolean all = true;
      for (Future<Long> f : running) {
        if (!f.isDone()) {
          all = false;
          continue;
        }
        try {
          total += f.get();
        } catch (ExecutionException e) {
          Throwable cause = e.getCause();
          if (cause instanceof RuntimeException re) {
            throw re;
          }
          throw new IllegalStateException("generation failed (layout " + layout + "): " + cause, cause);
        }
      }
      if (all && !running.isEmpty()) {
        running.clear();
        generateNanos = total;
        metrics.generateNanos.add(total);
      }
      return all;
    }

    /** The finished requests' completion rows, one per id, and the counters they add. */
    private List<Row> rows(List<Finished> done) {
      List<Row> out = new ArrayList<>();
      long ok = 0;
      long errors = 0;
      long promptTokens = 0;
      long completionTokens = 0;
      for (Finished f : done) {
        Completion c = f.completion().get();
        promptTokens += c.promptTokens();
        completionTokens += c.completionTokens();
        // deduplicated: one completion answers every id of the group; otherwise the request's own id
        for (String id : f.tag().id() == null ? f.tag().group().ids() : List.of(f.tag().id())) {
          out.add(row(id, f.tag().group().prompt(), c, f.device()));
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
