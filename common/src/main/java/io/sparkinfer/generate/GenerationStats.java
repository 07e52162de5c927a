package io.sparkinfer.generate;

import java.util.List;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.atomic.AtomicLong;

/** Running totals of a generator's work, for progress lines and benchmarks. Thread-safe. */
public final class GenerationStats {
  private final AtomicLong requests = new AtomicLong();
  private final AtomicLong promptTokens = new AtomicLong();
  private final AtomicLong generatedTokens = new AtomicLong();
  private final AtomicLong prefillNanos = new AtomicLong();
  private final AtomicLong decodeNanos = new AtomicLong();
  private final AtomicLong decodeSteps = new AtomicLong();
  private final AtomicLong kvCacheAllocations = new AtomicLong();
  private final AtomicLong oomRetries = new AtomicLong();
  private final AtomicLong prefillPasses = new AtomicLong();
  private final ConcurrentSkipListSet<Integer> batchWidths = new ConcurrentSkipListSet<>();
  private final AtomicLong sharedPrefixTokens = new AtomicLong();

  /** The totals of several generators' counters, as they are now. */
  public static GenerationStats sum(List<GenerationStats> parts) {
    GenerationStats out = new GenerationStats();
    for (GenerationStats p : parts) {
      out.addRequests(p.requests());
      out.addBatch(p.promptTokens(), p.generatedTokens(), p.prefillNanos(), p.decodeNanos(), p.decodeSteps());
      out.kvCacheAllocations.addAndGet(p.kvCacheAllocations());
      out.oomRetries.addAndGet(p.oomRetries());
      out.prefillPasses.addAndGet(p.prefillPasses());
      out.batchWidths.addAll(p.batchWidths());
      out.sharedPrefixTokens.addAndGet(p.sharedPrefixTokens());
    }
    return out;
  }

  void addRequests(long n) {
    requests.addAndGet(n);
  }

  void addBatch(long prompt, long generated, long prefillNs, long decodeNs, long steps) {
    promptTokens.addAndGet(prompt);
    generatedTokens.addAndGet(generated);
    prefillNanos.addAndGet(prefillNs);
    decodeNanos.addAndGet(decodeNs);
    decodeSteps.addAndGet(steps);
  }

  void addBatchWidth(int width) {
    batchWidths.add(width);
  }

  /** The widths the batches ran at ({@code --batch-size auto} resolved, an out-of-memory retry's half included). */
  public SortedSet<Integer> batchWidths() {
    return new TreeSet<>(batchWidths);
  }

  void addSharedPrefixTokens(long n) {
    sharedPrefixTokens.addAndGet(n);
  }

  /** Prompt tokens not computed because rows prefilled together shared them ({@code --shared-prefix}). */
  public long sharedPrefixTokens() {
    return sharedPrefixTokens.get();
  }

  void addPrefillPass() {
    prefillPasses.incrementAndGet();
  }

  /** Prefill passes run: groups of joining prompts prefilled together ({@code --max-prefill-tokens} apiece at most). */
  public long prefillPasses() {
    return prefillPasses.get();
  }

  void addKvCacheAllocation() {
    kvCacheAllocations.incrementAndGet();
  }

  void addOomRetry() {
    oomRetries.incrementAndGet();
  }

  /** Batches that ran out of device memory and were retried at half their width. */
  public long oomRetries() {
    return oomRetries.get();
  }

  /** Batch KV caches allocated: one per generate call, sized for its longest sequence. */
  public long kvCacheAllocations() {
    return kvCacheAllocations.get();
  }

  public long requests() {
    return requests.get();
  }

  public long promptTokens() {
    return promptTokens.get();
  }

  public long generatedTokens() {
    return generatedTokens.get();
  }

  public long prefillNanos() {
    return prefillNanos.get();
  }

  public long decodeNanos() {
    return decodeNanos.get();
  }

  public long decodeSteps() {
    return decodeSteps.get();
  }
}
