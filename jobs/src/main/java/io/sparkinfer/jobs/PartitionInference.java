package io.sparkinfer.jobs;

import ai.djl.inference.Predictor;
import ai.djl.translate.TranslateException;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.EnginePool;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReplicaPlan;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.Generator;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Inference over one partition: rows of (prompt, prompt_tokens, ids) sorted by prompt length in, one
 * completion row per id out ({@link Tables#COMPLETIONS}).
 *
 * <p>The task's layout ({@code --layout}, {@link ReplicaPlan}) is laid over the GPUs Spark assigned to the task:
 * one engine per replica from the executor's cache ({@link ExecutorEngines}), and {@code threads} generators on
 * each, every generator on a thread of its own with its own batches. Work is pipelined: the task thread reads
 * and tokenizes the next chunks of requests while the generators run the current ones (continuous batching
 * inside each), and chunks' rows are handed to Spark's writer in input order as soon as each is done (at most
 * one chunk more than there are generators is queued: double buffering).
 */
final class PartitionInference implements MapPartitionsFunction<Row, Row> {

  private static final Logger LOG = LoggerFactory.getLogger(PartitionInference.class);

  /** Chunks submitted and not yet written beyond one per generator: one prepared while the others run. */
  static final int PREPARED = 1;
  /** Requests per chunk, as a multiple of the batch size. */
  static final int CHUNK_BATCHES = 4;
  static final int MAX_CHUNK = 4096;

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

  /** A chunk's groups and the requests made of them, in order. */
  private record Chunk(List<Group> groups, List<GenerationRequest> requests, int batchSize) {}

  private record Done(Chunk chunk, List<Completion> completions, long nanos, String device) {}

  /**
   * A generator and the engine it runs on, with the devices its rows name: {@code gpu:0}, or
   * {@code gpu:0+gpu:1} for a split replica (as the engine resolved them: {@code gpu:0} for {@code --device gpu}).
   */
  private record Worker(LlmEngine engine, Generator generator, String device) {
    Worker(EnginePool.Member m) {
      this(m.engine(), m.generator(), JobMetrics.deviceLabel(m.engine().devices()));
    }
  }

  private final class Pipeline implements Iterator<Row> {
    private final Iterator<Row> input;
    private final LlmEngine tokenizing; // the first replica's engine: its tokenizer reads every prompt
    private final String layout;
    private final String executorId;
    private final TaskContext task;
    private final String precisionLabel;
    private final boolean oneRequestPerGroup;
    private final EnginePool pool;
    /** Idle generators: a chunk takes one, runs on it, and gives it back. */
    private final BlockingQueue<Worker> idle;
    private final List<Worker> workers = new ArrayList<>();
    private boolean closed;
    private final Deque<Future<Done>> inFlight = new ArrayDeque<>();
    private Iterator<Row> current = Collections.emptyIterator();
    private final boolean faulty; // the test hook applies to this attempt
    private long handed; // rows handed to the writer
    private long generateNanos; // the generators' time in the chunks written so far
    private final SortedSet<Integer> batchSizes = new TreeSet<>(); // the chunks' batch sizes, auto resolved

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
      this.idle = new ArrayBlockingQueue<>(workers.size(), false, workers);
      this.faulty = fault != null && fault.applies(task);
    }

    @Override
    public boolean hasNext() {
      while (!current.hasNext()) {
        fill();
        if (inFlight.isEmpty()) {
          if (faulty) {
            fault.trigger(task, handed); // fewer rows than the fault waits for: it strikes at the end
          }
          shutdown();
          return false;
        }
        current = rows(await(inFlight.poll())).iterator();
        fill(); // the next chunk is prepared while the writer takes this one's rows
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
      return new TaskTimeline(startMillis, System.currentTimeMillis(), workers.size(), generateNanos, waitNanos,
          new TreeSet<>(batchSizes));
    }

    synchronized void shutdown() {
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

    /** Prepares and submits chunks until every generator has one and {@link #PREPARED} more wait, or the input ends. */
    private void fill() {
      while (inFlight.size() < workers.size() + PREPARED && input.hasNext()) {
        Chunk chunk = readChunk();
        inFlight.add(pool.threads().submit(() -> generate(chunk)));
      }
    }

    private Chunk readChunk() {
      List<Group> groups = new ArrayList<>();
      List<GenerationRequest> requests = new ArrayList<>();
      int chunkSize = -1;
      int longest = 0;
      int requestCount = 0;
      while (input.hasNext() && (chunkSize < 0 || requestCount < chunkSize)) {
        Row r = input.next();
        Group g = new Group(r.getString(0), r.getInt(1), r.getList(2));
        if (chunkSize < 0) {
          int firstBatch = options.batchSize() > 0 ? options.batchSize() : autoBatchSize(g.promptTokens());
          chunkSize = Math.max(1, Math.min(MAX_CHUNK, firstBatch * CHUNK_BATCHES));
        }
        groups.add(g);
        longest = Math.max(longest, g.promptTokens());
        requestCount += oneRequestPerGroup ? 1 : g.ids().size();
      }
      // Tokenized here, on the task thread (in one call, on the tokenizer's threads), while the generators run the
      // previous chunks.
      long[][] promptIds = tokenizing.tokenizer().encodeAll(groups.stream().map(Group::prompt).toList());
      for (int i = 0; i < groups.size(); i++) {
        Group g = groups.get(i);
        for (String id : oneRequestPerGroup ? g.ids().subList(0, 1) : g.ids()) {
          requests.add(options.request(id, g.prompt(), promptIds[i]));
        }
      }
      int batchSize = options.batchSize() > 0 ? options.batchSize() : autoBatchSize(longest);
      batchSizes.add(batchSize);
      return new Chunk(groups, requests, batchSize);
    }

    /**
     * {@code --batch-size auto} for prompts of up to {@code promptTokens}: each generator's share of its device's
     * free memory.
     */
    private int autoBatchSize(int promptTokens) {
      return workers.get(0).generator().autoBatchSize(promptTokens, options.maxNewTokens());
    }

    /** Runs on a generation thread, on an idle generator. */
    private Done generate(Chunk chunk) throws TranslateException, InterruptedException {
      Worker w = idle.take();
      long oomBefore = w.generator().stats().oomRetries();
      try {
        long start = System.nanoTime();
        try (Predictor<List<GenerationRequest>, List<Completion>> predictor =
            w.engine().newPredictor(w.generator(), chunk.batchSize())) {
          List<Completion> completions = predictor.predict(chunk.requests());
          return new Done(chunk, completions, System.nanoTime() - start, w.device());
        }
      } finally {
        metrics.oomRetries.add(w.generator().stats().oomRetries() - oomBefore);
        idle.add(w);
      }
    }

    private Done await(Future<Done> future) {
      try {
        while (true) {
          if (task != null && task.isInterrupted()) {
            future.cancel(true);
            throw new IllegalStateException("task killed while generating");
          }
          try {
            return future.get(1, TimeUnit.SECONDS);
          } catch (TimeoutException e) {
            // poll again, so a killed task stops waiting
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        future.cancel(true);
        throw new IllegalStateException("interrupted while waiting for generation", e);
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof RuntimeException re) {
          throw re;
        }
        throw new IllegalStateException("generation failed (layout " + layout + "): " + cause, cause);
      }
    }

    /** The chunk's completion rows, one per id, and the counters they add. */
    private List<Row> rows(Done done) {
      List<Row> out = new ArrayList<>();
      Iterator<Completion> completions = done.completions().iterator();
      long ok = 0;
      long errors = 0;
      long promptTokens = 0;
      long completionTokens = 0;
      for (Group g : done.chunk().groups()) {
        // deduplicated: one completion answers every id of the group; otherwise one completion per id
        Completion shared = oneRequestPerGroup ? completions.next() : null;
        for (String id : g.ids()) {
          Completion c = shared != null ? shared : completions.next();
          if (shared == null || id.equals(g.ids().get(0))) {
            promptTokens += c.promptTokens();
            completionTokens += c.completionTokens();
          }
          out.add(row(id, g.prompt(), c, done.device()));
          if (c.isError()) {
            errors++;
          } else {
            ok++;
          }
        }
      }
      metrics.requests.add(done.chunk().requests().size());
      metrics.promptTokens.add(promptTokens);
      metrics.completionTokens.add(completionTokens);
      metrics.generateNanos.add(done.nanos());
      generateNanos += done.nanos();
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
