package io.sparkinfer.engine;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.GenerationStats;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.generate.SharedRequestStream;
import io.sparkinfer.options.OptionValues;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The generators of a layout ({@link ReplicaPlan}): {@code threads} generators on each replica's engine, each
 * decoding its own batches on a thread of its own; {@link #generate} streams requests to all of them. Replicas
 * that share a device share one engine, and every generator on a device sizes {@code --batch-size auto} for its
 * share of the free memory.
 */
public final class EnginePool implements AutoCloseable {

  /** A generator and the engine it runs on. */
  public record Member(LlmEngine engine, Generator generator) {}

  private final ReplicaPlan plan;
  private final List<LlmEngine> owned;
  private final List<Member> members = new ArrayList<>();
  private final ExecutorService threads;

  private EnginePool(ReplicaPlan plan, List<LlmEngine> engines, boolean owns, OptionValues generatorOptions,
      String threadName) {
    this.plan = plan;
    this.owned = owns ? List.copyOf(engines) : List.of();
    for (LlmEngine engine : engines) {
      for (int t = 0; t < plan.threads(); t++) {
        members.add(new Member(engine, engine.newGenerator(generatorOptions)
            .sharingDeviceWith(plan.generatorsPerDevice())));
      }
    }
    this.threads = Executors.newFixedThreadPool(members.size(), r -> {
      Thread t = new Thread(r, threadName);
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * Loads an engine per distinct replica of {@code options}' layout and makes its generators; the pool closes
   * the engines with itself.
   */
  public static EnginePool load(EngineOptions options) {
    ReplicaPlan plan = ReplicaPlan.of(options);
    List<LlmEngine> engines = new ArrayList<>();
    List<EngineOptions> loaded = new ArrayList<>();
    try {
      for (EngineOptions replica : plan.replicas()) {
        int same = loaded.indexOf(replica);
        engines.add(same >= 0 ? engines.get(same) : LlmEngine.load(replica));
        loaded.add(replica);
      }
      return new EnginePool(plan, engines, true, options.values(), "sparkinfer-generate");
    } catch (RuntimeException e) {
      engines.stream().distinct().forEach(LlmEngine::close);
      throw e;
    }
  }

  /**
   * Generators over engines the caller owns (an executor's cache), one engine per replica of {@code plan}, in
   * order; closing the pool closes only the generators.
   */
  public static EnginePool over(ReplicaPlan plan, List<LlmEngine> engines, OptionValues generatorOptions,
      String threadName) {
    if (engines.size() != plan.replicas().size()) {
      throw new IllegalArgumentException(plan.replicas().size() + " replicas but " + engines.size() + " engines");
    }
    return new EnginePool(plan, engines, false, generatorOptions, threadName);
  }

  public ReplicaPlan plan() {
    return plan;
  }

  /** Every generator with its engine: replicas in order, each replica's threads together. */
  public List<Member> members() {
    return members;
  }

  /** The pool's threads, one per generator, for callers that schedule work on the members themselves. */
  public ExecutorService threads() {
    return threads;
  }

  /** The first replica's engine: its tokenizer, config and description stand for all. */
  public LlmEngine engine() {
    return members.get(0).engine();
  }

  /**
   * Completes {@code requests} on all the generators at once (each batching in {@code batchSize}, 0: auto):
   * one stream of them, longest prompt first, that every generator takes from as its rows free up, so that none
   * idles while another still has work; completions in request order.
   */
  public List<Completion> generate(List<GenerationRequest> requests, int batchSize) {
    int n = Math.min(members.size(), Math.max(1, requests.size()));
    if (n == 1) {
      return members.get(0).generator().generate(requests, batchSize);
    }
    List<GenerationRequest> tokenized = GenerationRequest.tokenizeAll(requests, engine().tokenizer());
    // longest first: the first request a generator takes sizes its batch's KV cache for every later one
    SharedRequestStream<Integer> queue = new SharedRequestStream<>();
    try (SharedRequestStream<Integer>.Feed feed = queue.open()) {
      for (int i = 0; i < tokenized.size(); i++) {
        feed.add(tokenized.get(i), i);
      }
    }
    queue.end();
    Completion[] out = new Completion[requests.size()];
    List<Future<Long>> futures = new ArrayList<>();
    for (int g = 0; g < n; g++) {
      Generator generator = members.get(g).generator();
      futures.add(threads.submit(() -> generator.generate(queue, batchSize, (i, c) -> out[i] = c.get())));
    }
    try {
      for (Future<Long> f : futures) {
        f.get(); // its completions are in out: each written before its generator ended
      }
    } catch (InterruptedException e) {
      futures.forEach(f -> f.cancel(true));
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while generating", e);
    } catch (ExecutionException e) {
      futures.forEach(f -> f.cancel(true));
      throw new IllegalStateException("a generator failed: " + e.getCause(), e.getCause());
    }
    return List.of(out);
  }

  /** The generators' counters summed. */
  public GenerationStats stats() {
    return GenerationStats.sum(members.stream().map(m -> m.generator().stats()).toList());
  }

  /** The first engine's description and the layout, e.g. {@code ... [fp16, gpu(0), ...], layout replicas=2,...}. */
  public String describe() {
    String engine = engine().describe();
    return plan.layout().equals(io.sparkinfer.layout.Layout.SINGLE) ? engine
        : engine + " x " + members.stream().map(Member::engine).distinct().count() + " engine(s), layout "
            + plan.layout().label();
  }

  /** Seconds the pool's own engines took to load, summed. */
  public double loadSeconds() {
    return owned.stream().distinct().mapToDouble(LlmEngine::loadSeconds).sum();
  }

  /** The first engine's {@link LlmEngine#loadPhases}. */
  public String loadPhases() {
    return engine().loadPhases();
  }

  @Override
  public void close() {
    threads.shutdownNow();
    members.forEach(m -> m.generator().close());
    owned.stream().distinct().forEach(LlmEngine::close);
  }
}
