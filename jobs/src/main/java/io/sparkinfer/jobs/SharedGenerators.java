package io.sparkinfer.jobs;

import io.sparkinfer.engine.EnginePool;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SharedRequestStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The generators of one layout over one set of an executor's devices, shared by every inference task that runs
 * there at the same time. The tasks feed one {@link SharedRequestStream} (longest first) and the generators keep
 * their batches full across them, so concurrent tasks neither split a device's memory into small batches (nor run
 * it out) nor leave it to drain at each task's end; each completion goes back to the task that asked.
 *
 * <p>A task {@link #join joins} (the first one makes the generators and starts them), feeds its requests through its
 * {@link Lease}, ends its feed when its input ends, takes its completions, and closes the lease. The last lease to
 * close ends the stream, stops the generators and reports their time ({@link Run}). A generator's failure fails
 * every task attached ({@link Lease#rethrowFailure}); tasks that join after it get new generators.
 */
final class SharedGenerators {

  private static final Logger LOG = LoggerFactory.getLogger(SharedGenerators.class);

  /** The running generators by what they run on (the model, the task's devices and layout). */
  private static final Map<Object, SharedGenerators> RUNNING = new HashMap<>();

  /** A request's completion for a task, and the device that generated it. */
  record Done(Object tag, Supplier<Completion> completion, String device) {}

  /**
   * The generators' time from their start to their end: how many ran, their summed time generating (the rest of
   * {@code generators x seconds} was idle), the widths their batches ran at, and their out-of-memory retries.
   */
  record Run(long startMillis, long endMillis, int generators, long generateNanos, TreeSet<Integer> batchSizes,
      long oomRetries) implements java.io.Serializable {

    double seconds() {
      return Math.max(0, endMillis - startMillis) / 1000.0;
    }

    /** Generator seconds that were not generation. */
    double idleSeconds() {
      return Math.max(0, generators * seconds() - generateNanos / 1e9);
    }
  }

  /** A generator with the devices its rows name ({@code gpu:0}, or {@code gpu:0+gpu:1} for a split replica). */
  private record Worker(io.sparkinfer.generate.Generator generator, String device) {}

  private record Routed(Lease lease, Object tag) {}

  private final Object key;
  private final EnginePool pool;
  private final int batchSize;
  private final List<Worker> workers = new ArrayList<>();
  private final SharedRequestStream<Routed> stream = new SharedRequestStream<>();
  private final List<Future<Long>> running = new ArrayList<>(); // each generator's nanoseconds generating
  private final long startMillis = System.currentTimeMillis();
  private int leases; // guarded by RUNNING
  private Run stopped; // once stopped; guarded by this

  private SharedGenerators(Object key, EnginePool pool, int batchSize) {
    this.key = key;
    this.pool = pool;
    this.batchSize = batchSize;
    pool.members().forEach(m -> workers.add(new Worker(m.generator(), JobMetrics.deviceLabel(m.engine().devices()))));
  }

  /**
   * Attaches a task to the generators running under {@code key}, or to new ones over {@code pool} (made only when
   * none run, or those that do failed) that start at once.
   *
   * @param batchSize the job's {@code --batch-size} (0: auto)
   */
  static Lease join(Object key, Supplier<EnginePool> pool, int batchSize) {
    synchronized (RUNNING) {
      SharedGenerators g = RUNNING.get(key);
      if (g == null || g.failure() != null) {
        g = new SharedGenerators(key, pool.get(), batchSize);
        RUNNING.put(key, g);
        g.start();
      }
      g.leases++;
      return g.new Lease();
    }
  }

  /**
   * Stops every running set of generators, whatever tasks are still attached: their streams end, and this returns
   * once their threads have ended (a batch still running is interrupted after 2 s, {@link #stop}). The engines may then
   * be closed ({@link ExecutorEngines#closeAll}): a generator that still decoded for the aborted tasks of a failed
   * local run, on engines closed under it, crashed the JVM in libtorch (SIGSEGV in TaskFailuresTest, 2026-12-03).
   * Leases still open close later as usual and get the same {@link Run}.
   */
  static void stopAll() {
    List<SharedGenerators> all;
    synchronized (RUNNING) {
      all = new ArrayList<>(RUNNING.values());
      RUNNING.clear();
      all.forEach(g -> g.stream.end());
    }
    all.forEach(SharedGenerators::stop);
  }

  /** Generators running now, for tests. */
  static int runningCount() {
    synchronized (RUNNING) {
      return RUNNING.size();
    }
  }

  private void start() {
    for (Worker w : workers) {
      running.add(pool.threads().submit(() -> {
        long begin = System.nanoTime();
        long waited = w.generator().generate(stream, batchSize, (routed, completion) ->
            routed.lease().finished.add(new Done(routed.tag(), completion, w.device())));
        return System.nanoTime() - begin - waited;
      }));
    }
  }

  /** A task's place in the shared stream: its requests go in, and its completions come back here. */
  final class Lease implements AutoCloseable {
    private final SharedRequestStream<Routed>.Feed feed = stream.open();
    private final BlockingQueue<Done> finished = new LinkedBlockingQueue<>();
    private boolean closed;
    private Run run;

    /** Adds a request, tokenized; its completion comes back with {@code tag}. */
    void add(GenerationRequest request, Object tag) {
      feed.add(request, new Routed(this, tag));
    }

    /** Tells the generators that a request of {@code length} prompt tokens plus token limit will come. */
    void expectLongest(int length) {
      stream.expectLongest(length);
    }

    /** Puts the requests added since the last flush into the stream, together. */
    void flush() {
      feed.flush();
    }

    /** No more requests from this task (those added are flushed). */
    void inputEnded() {
      feed.close();
    }

    /** Whether every generator has ended (they run until the last task leaves, unless they fail). */
    boolean generatorsEnded() {
      return running.stream().allMatch(Future::isDone);
    }

    /** Requests waiting to be taken by a generator, of every task. */
    int waiting() {
      return stream.size();
    }

    /** The generators there are (replicas times threads). */
    int generators() {
      return workers.size();
    }

    /** Moves this task's completions that came back into {@code out}, waiting up to {@code millis} for one. */
    void drainTo(List<Done> out, long millis) throws InterruptedException {
      if (finished.drainTo(out) == 0 && millis > 0) {
        Done first = finished.poll(millis, TimeUnit.MILLISECONDS);
        if (first != null) {
          out.add(first);
          finished.drainTo(out);
        }
      }
    }

    /** Fails the task if a generator failed (every task attached fails with it; Spark retries them). */
    void rethrowFailure(String layout) {
      Throwable t = failure();
      if (t instanceof RuntimeException re) {
        throw re;
      } else if (t != null) {
        throw new IllegalStateException("generation failed (layout " + layout + "): " + t, t);
      }
    }

    /**
     * Detaches the task. The last task ends the stream and stops the generators, and its lease returns their
     * {@link Run} from {@link #run()}; a task that leaves early (failed or killed) leaves its waiting requests to
     * be generated and dropped.
     */
    @Override
    public void close() {
      boolean last;
      synchronized (RUNNING) {
        if (closed) {
          return;
        }
        closed = true;
        feed.close();
        last = --leases == 0;
        if (last) {
          stream.end();
          RUNNING.remove(key, SharedGenerators.this);
        }
      }
      if (last) {
        run = stop();
      }
    }

    /** The generators' run, when this lease was the last to close; else null. */
    Run run() {
      return run;
    }
  }

  /** What a generator that ended with an exception threw; null while none has. */
  private Throwable failure() {
    for (Future<Long> f : running) {
      if (f.isDone() && !f.isCancelled()) {
        try {
          f.get();
        } catch (ExecutionException e) {
          return e.getCause();
        } catch (InterruptedException e) { // done: get() does not wait
          Thread.currentThread().interrupt();
        }
      }
    }
    return null;
  }

  /** Stops the generators once (the last lease, or {@link #stopAll}) and returns their run. */
  private synchronized Run stop() {
    if (stopped != null) {
      return stopped;
    }
    pool.threads().shutdown(); // the stream ended: generators with nothing left return at once
    try {
      if (!pool.threads().awaitTermination(2, TimeUnit.SECONDS)) { // requests of a task that left early
        pool.threads().shutdownNow();
        pool.threads().awaitTermination(10, TimeUnit.SECONDS); // the generators' batches end before they close
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    long generate = 0;
    for (Future<Long> f : running) {
      try {
        generate += f.isDone() && !f.isCancelled() ? f.get() : 0;
      } catch (ExecutionException | InterruptedException e) {
        LOG.debug("a generator ended with {}", e.toString());
      }
    }
    TreeSet<Integer> sizes = new TreeSet<>();
    long oom = 0;
    for (Worker w : workers) {
      sizes.addAll(w.generator().stats().batchWidths());
      oom += w.generator().stats().oomRetries();
    }
    pool.close();
    stopped = new Run(startMillis, System.currentTimeMillis(), workers.size(), generate, sizes, oom);
    return stopped;
  }
}
