package io.sparkinfer.jobs;

import ai.djl.inference.Predictor;
import ai.djl.translate.TranslateException;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
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
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;

/**
 * Inference over one partition: rows of (prompt, prompt_tokens, ids) sorted by prompt length in, one
 * completion row per id out ({@link Tables#COMPLETIONS}).
 *
 * <p>The engine comes from the executor's cache ({@link ExecutorEngines}), bound to the GPU Spark assigned to
 * the task. Work is pipelined: the task thread reads and tokenizes the next chunk of requests while a
 * generation thread runs the current one (continuous batching inside the engine), and each chunk's rows are handed to Spark's writer as soon as the
 * chunk is done (at most {@link #IN_FLIGHT} chunks are queued: double buffering).
 */
final class PartitionInference implements MapPartitionsFunction<Row, Row> {

  /** Chunks submitted to the generation thread and not yet written: one running, one prepared. */
  static final int IN_FLIGHT = 2;
  /** Requests per chunk, as a multiple of the batch size. */
  static final int CHUNK_BATCHES = 4;
  static final int MAX_CHUNK = 4096;

  private final JobOptions options;
  private final ModelLocation model;
  private final String runId;
  private final JobMetrics metrics;

  PartitionInference(JobOptions options, ModelLocation model, String runId, JobMetrics metrics) {
    this.options = options;
    this.model = model;
    this.runId = runId;
    this.metrics = metrics;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    if (!input.hasNext()) {
      return Collections.emptyIterator();
    }
    TaskContext task = TaskContext.get();
    String device = DeviceBinding.forTask(options.device(), task);
    String executorId = SparkEnv.get().executorId();
    EngineOptions engineOptions = options.engineOptions(model.localDir().toString(), device);
    LlmEngine engine = ExecutorEngines.engine(new ExecutorEngines.Key(model.uri(), engineOptions), (k, loaded, seconds) ->
        metrics.recordLoad(executorId, seconds, loaded));
    metrics.executors.add(executorId);
    // The rows name the device the engine resolved (gpu:0 for --device gpu), as job_runs does.
    Pipeline pipeline = new Pipeline(input, engine, JobMetrics.deviceLabel(engine.device()), executorId, task);
    if (task != null) {
      task.addTaskCompletionListener((TaskCompletionListener) ctx -> pipeline.shutdown());
    }
    return pipeline;
  }

  /** One group of rows with the same prompt: one request, or one per id when not deduplicating. */
  private record Group(String prompt, int promptTokens, List<String> ids) {}

  /** A chunk's groups and the requests made of them, in order. */
  private record Chunk(List<Group> groups, List<GenerationRequest> requests, int batchSize) {}

  private record Done(Chunk chunk, List<Completion> completions, long nanos) {}

  private final class Pipeline implements Iterator<Row> {
    private final Iterator<Row> input;
    private final LlmEngine engine;
    private final String device;
    private final String executorId;
    private final TaskContext task;
    private final String precisionLabel;
    private final boolean oneRequestPerGroup;
    private final ExecutorService generation;
    private final Generator generator; // the job's generation options over the executor's engine
    private boolean closed;
    private final Deque<Future<Done>> inFlight = new ArrayDeque<>();
    private Iterator<Row> current = Collections.emptyIterator();

    Pipeline(Iterator<Row> input, LlmEngine engine, String device, String executorId, TaskContext task) {
      this.input = input;
      this.engine = engine;
      this.device = device;
      this.executorId = executorId;
      this.task = task;
      this.precisionLabel = engine.precision().label();
      this.oneRequestPerGroup = options.dedup() && options.isGreedy();
      this.generator = engine.newGenerator(options.values());
      String name = "sparkinfer-generate-" + (task == null ? "local" : task.partitionId() + "-" + task.taskAttemptId());
      this.generation = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
      });
    }

    @Override
    public boolean hasNext() {
      while (!current.hasNext()) {
        fill();
        if (inFlight.isEmpty()) {
          shutdown();
          return false;
        }
        current = rows(await(inFlight.poll())).iterator();
        fill(); // the next chunk is prepared while the writer takes this one's rows
      }
      return true;
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return current.next();
    }

    synchronized void shutdown() {
      generation.shutdownNow();
      if (!closed) {
        closed = true;
        try {
          generation.awaitTermination(10, TimeUnit.SECONDS); // the generator's batch ends before it closes
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        generator.close();
      }
    }

    /** Prepares and submits chunks until {@link #IN_FLIGHT} are queued or the input ends. */
    private void fill() {
      while (inFlight.size() < IN_FLIGHT && input.hasNext()) {
        Chunk chunk = readChunk();
        inFlight.add(generation.submit(() -> generate(chunk)));
      }
    }

    private Chunk readChunk() {
      List<Group> groups = new ArrayList<>();
      List<GenerationRequest> requests = new ArrayList<>();
      int chunkSize = -1;
      int longest = 0;
      while (input.hasNext() && (chunkSize < 0 || requests.size() < chunkSize)) {
        Row r = input.next();
        Group g = new Group(r.getString(0), r.getInt(1), r.getList(2));
        if (chunkSize < 0) {
          int firstBatch = options.batchSize() > 0 ? options.batchSize()
              : generator.autoBatchSize(g.promptTokens(), options.maxNewTokens());
          chunkSize = Math.max(1, Math.min(MAX_CHUNK, firstBatch * CHUNK_BATCHES));
        }
        groups.add(g);
        longest = Math.max(longest, g.promptTokens());
        // Tokenized here, on the task thread, while the generation thread runs the previous chunk.
        long[] promptIds = engine.tokenizer().encode(g.prompt());
        List<String> requestIds = oneRequestPerGroup ? g.ids().subList(0, 1) : g.ids();
        for (String id : requestIds) {
          requests.add(options.request(id, g.prompt(), promptIds));
        }
      }
      int batchSize = options.batchSize() > 0 ? options.batchSize()
          : generator.autoBatchSize(longest, options.maxNewTokens());
      return new Chunk(groups, requests, batchSize);
    }

    /** Runs on the generation thread. */
    private Done generate(Chunk chunk) throws TranslateException {
      long start = System.nanoTime();
      try (Predictor<List<GenerationRequest>, List<Completion>> predictor =
          engine.newPredictor(generator, chunk.batchSize())) {
        List<Completion> completions = predictor.predict(chunk.requests());
        return new Done(chunk, completions, System.nanoTime() - start);
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
        throw new IllegalStateException("generation failed on " + device + ": " + cause, cause);
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
          out.add(row(id, g.prompt(), c));
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
      metrics.okRows.add(ok);
      metrics.errorRows.add(errors);
      metrics.rowsDone.add(out.size());
      return out;
    }

    private Row row(String id, String prompt, Completion c) {
      // Spark's row encoder takes a Scala Seq for an array column.
      Object tokens = scala.collection.immutable.ArraySeq$.MODULE$.unsafeWrapArray(c.outputTokenIds());
      return RowFactory.create(id, prompt, c.text(), tokens, c.promptTokens(), c.completionTokens(),
          c.finishReason().label(), c.errorCode(), c.errorMessage(), model.uri(), precisionLabel,
          Tables.LAYOUT_REPLICA, device, executorId, c.latencyMs(), c.timeToFirstTokenMs(), runId);
    }
  }
}
