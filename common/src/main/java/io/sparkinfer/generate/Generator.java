package io.sparkinfer.generate;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.base.OutOfMemory;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The generation loop: tokenizes requests, groups them into length-sorted batches, and for each batch runs
 * one prefill and then one decode step per token over a KV cache allocated once for the batch.
 *
 * <p>Every row of a batch has its own positions, so a prompt gives the same tokens in a batch as alone. Bad
 * requests (empty, too long) become error completions and never stop the others; a batch that fails in
 * the model turns into error completions for its requests only.
 *
 * <p>One generator may serve several threads: each call allocates its own cache and temporaries.
 */
public final class Generator implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(Generator.class);

  private final ModelConfig config;
  private final Device device;
  private final Precision precision;
  private final CausalLmBackend backend;
  private final TextTokenizer tokenizer;
  private final Set<Long> eosTokenIds;
  private final NDManager root;
  private final GenerationStats stats = new GenerationStats();
  private final int contextLength;
  private final int maxPromptTokens;
  /**
   * How long a generator starting a batch waits, at most, for requests still arriving from a stream that may bring
   * more ({@link RequestStream#available}) or for feeders yet to bring their first ({@link RequestStream#awaitsFeeders}),
   * before it sizes the batch for those ready; and the pause between looks. On an H200 the job's first generator had
   * sized a batch for the 502 requests of the first of 16 tasks to tokenize its prompts, then a second for the rest
   * (bench/results/2026-12-02-e2e-NVIDIA-H200-run5).
   */
  static final long SETTLE_MILLIS = 2000;
  static final long SETTLE_STEP_MILLIS = 50;

  private final int maxPrefillTokens;
  private final int sharedPrefix; // 0: no prefix sharing
  private final int decodeChunk;
  private final boolean profileSteps;
  private final boolean oomRetry;
  /** Generators decoding on this device at once, this one included: {@code --batch-size auto} takes its share. */
  private volatile int deviceSharers = 1;
  /** The bytes {@code --batch-size auto} may fill now; null: {@link BatchSizer#budget} of the device (tests set it). */
  private volatile LongSupplier deviceBudget;

  /** A batch's rows and the KV cache slots each row holds. */
  private record Held(int rows, long slots) {}

  /**
   * The largest batch {@code --batch-size auto} made so far (rows times slots), or null. When a batch ends, libtorch's
   * caching allocator keeps its memory for the next one, so the device's free memory no longer shows it: a later batch
   * whose rows need no more slots is sized at least as wide. (Without this, generate.sh's second call of 4,096 fp16
   * prompts saw room for 1,467 rows after its first had run 4,096 on an H200:
   * bench/results/2026-12-02-e2e-NVIDIA-H200-run20.) Forgotten when a batch runs out of memory.
   */
  private volatile Held held;

  /**
   * @param device where inputs are made and logits land: the backend's first device
   * @param precision the dtype of the KV cache
   * @param options the engine's options: {@link GeneratorOptions} (prompt limit, prefill pass size, greedy
   *     chunk, step profiling)
   */
  public Generator(ModelConfig config, Device device, Precision precision, CausalLmBackend backend,
      TextTokenizer tokenizer, GenerationConfig generation, OptionValues options) {
    this.config = config;
    this.device = device;
    this.precision = precision;
    this.backend = backend;
    this.tokenizer = tokenizer;
    this.eosTokenIds = generation.eosTokenIds();
    this.contextLength = config.maxPositionEmbeddings();
    int limit = options.get(GeneratorOptions.MAX_PROMPT_TOKENS);
    this.maxPromptTokens = limit == 0 ? contextLength - 1 : Math.min(limit, contextLength - 1);
    this.maxPrefillTokens = options.get(GeneratorOptions.MAX_PREFILL_TOKENS);
    this.sharedPrefix = options.get(GeneratorOptions.SHARED_PREFIX);
    this.decodeChunk = options.get(GeneratorOptions.DECODE_CHUNK);
    this.profileSteps = options.get(GeneratorOptions.PROFILE_STEPS);
    this.oomRetry = options.get(GeneratorOptions.OOM_RETRY);
    this.root = NDManager.newBaseManager(device);
  }

  /** The longest prompt this generator takes: below the model's context, which always leaves room for one token. */
  public int maxPromptTokens() {
    return maxPromptTokens;
  }

  public GenerationStats stats() {
    return stats;
  }

  public TextTokenizer tokenizer() {
    return tokenizer;
  }

  public CausalLmBackend backend() {
    return backend;
  }

  /**
   * Completes every request with continuous batching: up to {@code batchSize} sequences decode together,
   * shortest prompts first, and as sequences finish, waiting ones are prefilled and take their rows.
   *
   * @param batchSize sequences decoding together; 0 for as many as fit the device's free memory
   *     ({@link BatchSizer}) with the longest prompt and token limit of these requests
   * @return one completion per request, in the requests' order
   */
  public List<Completion> generate(List<GenerationRequest> given, int batchSize) {
    if (batchSize < 0) {
      throw new IllegalArgumentException("batch size must be > 0 (or 0 for auto), got " + batchSize);
    }
    List<GenerationRequest> requests = GenerationRequest.tokenizeAll(given, tokenizer);
    Completion[] out = new Completion[requests.size()];
    List<Sequence> valid = new ArrayList<>();
    for (int i = 0; i < requests.size(); i++) {
      GenerationRequest r = requests.get(i);
      Prepared prepared = prepare(r);
      if (prepared.error() != null) {
        out[i] = prepared.error();
      } else {
        valid.add(new Sequence(i, r, prepared.promptIds()));
      }
    }
    stats.addRequests(requests.size());
    valid.sort(Comparator.comparingInt(s -> s.promptIds.length));
    if (!valid.isEmpty()) {
      AutoSize size = batchSize > 0 ? null : autoSize(valid);
      int width = size == null ? batchSize : size.rows();
      if (size != null) {
        LOG.info("--batch-size auto: {} rows fit for prompts of up to {} tokens plus {} new ({} requests here)",
            width, valid.get(valid.size() - 1).promptIds.length, valid.stream().mapToInt(s -> s.maxNew).max()
                .orElse(0), valid.size());
        holding(Math.min(width, valid.size()), Math.min(contextLength, capacityFor(valid)));
      }
      int prefillTokens = size == null ? maxPrefillTokens : size.prefillTokens();
      for (Sequence s : run(valid, Math.min(width, valid.size()), prefillTokens)) {
        out[s.index] = s.result();
      }
    }
    return Arrays.asList(out);
  }

  /**
   * Completes the requests of {@code stream} as they come, with continuous batching, and hands each completion to
   * {@code sink} as soon as its request is done (bad requests at once, as error completions). A batch takes the
   * stream's next request whenever a row is free, so it never drains between groups of requests; it ends only when
   * the stream does, or when the next request needs more KV cache slots than the batch allocated (its prompt plus
   * token limit is longer than the first request's): then a new batch starts for it. Streams that come longest
   * first run in one batch, and so do streams that say how long their longest request will be
   * ({@link RequestStream#longestExpected}, as the Spark job's tasks do, whose requests come longest first from each
   * task but not across tasks), where holding it costs an auto-sized batch at most an eighth of its rows. A batch
   * made narrower than the batch size because the stream had only so many requests left or ready
   * ({@link RequestStream#knownRemaining}, {@link RequestStream#available}) takes no more once requests wait that it
   * has no row for (the stream got more since): it drains, and a batch as wide as they need follows.
   *
   * <p>Out of device memory (with {@code --oom-retry}), the batch's unfinished requests start again, afresh, and
   * every later batch runs at half the width, down to 1; other failures make the batch's unfinished requests
   * errors, and the stream goes on.
   *
   * @param batchSize sequences decoding together; 0 for as many as fit the device's free memory for the first
   *     request of each batch
   * @return the nanoseconds this call spent waiting for requests with no row to decode
   */
  public <T> long generate(RequestStream<T> stream, int batchSize, CompletionSink<T> sink) throws InterruptedException {
    if (batchSize < 0) {
      throw new IllegalArgumentException("batch size must be > 0 (or 0 for auto), got " + batchSize);
    }
    StreamWaiting<T> waiting = new StreamWaiting<>(stream, sink);
    int widthLimit = Integer.MAX_VALUE; // halved on each out-of-memory retry
    while (true) {
      Sequence first = waiting.peek(true);
      if (first == null) {
        return waiting.waitedNanos;
      }
      AutoSize size = batchSize > 0 ? null : autoSize(first.promptIds.length, first.maxNew);
      int width = Math.min(widthLimit, size == null ? batchSize : size.rows());
      int known = waiting.knownRemaining();
      int expected = known >= 0 ? known : waiting.settledAvailable(width); // -1: the stream cannot tell
      // the KV cache holds the longest request ready, not only the first: a longer one that came meanwhile would
      // otherwise end the batch to start one of its own
      int prompt = Math.max(first.promptIds.length, waiting.longestAvailable() - first.maxNew);
      if (prompt > first.promptIds.length && size != null) {
        size = autoSize(prompt, first.maxNew);
        width = Math.min(widthLimit, size.rows());
      }
      // and, auto-sized, the longest the stream will ever give where it knows that (the Spark job's planning does)
      // and holding it costs at most an eighth of the rows: a longer request coming later stops the batch's refills
      // while it waits, and the batch drains row by row before one of its own starts
      int longestToCome = waiting.longestExpected() - first.maxNew;
      if (size != null && longestToCome > prompt) {
        AutoSize forExpected = autoSize(longestToCome, first.maxNew);
        if (8L * forExpected.rows() >= 7L * size.rows()) {
          prompt = longestToCome;
          size = forExpected;
          width = Math.min(widthLimit, size.rows());
        }
      }
      int need = Math.min(contextLength, prompt + first.maxNew);
      boolean capped = expected > 0 && expected < width;
      if (capped) { // no wider than the requests the stream has (idle rows still cost every step)
        width = expected;
      }
      stats.addBatchWidth(width);
      Batch batch = new Batch(waiting, width, need, waiting::finished);
      batch.reformsWhenOutgrown = capped;
      if (size != null) {
        LOG.info("--batch-size auto: {} rows fit for prompts of up to {} tokens plus {} new (a request stream)", width,
            prompt, first.maxNew);
        holding(width, need);
        batch.prefillTokens = size.prefillTokens();
      }
      try {
        batch.run();
      } catch (RuntimeException e) {
        List<Sequence> unfinished = batch.settleTaken();
        if (isOutOfMemory(e) && oomRetry && width > 1) {
          stats.addOomRetry();
          held = null; // the memory was not there after all
          widthLimit = Math.max(1, width / 2);
          LOG.warn("out of device memory in a batch of width {}: {} unfinished request(s) start again at width {} ({})",
              width, unfinished.size(), widthLimit, e.getMessage());
          waiting.startAgain(unfinished);
        } else {
          if (batch.tookNothing()) { // the batch failed before it took a request: its first one fails, not forever
            waiting.take();
            unfinished = List.of(first);
          }
          fail(unfinished, e, width).forEach(waiting::finished);
        }
      }
    }
  }

  /** Makes {@code unfinished} error completions for the failure {@code e} of a batch of {@code width}. */
  private List<Sequence> fail(List<Sequence> unfinished, RuntimeException e, int width) {
    boolean oom = isOutOfMemory(e);
    String code = oom ? ErrorCode.OUT_OF_MEMORY : ErrorCode.GENERATION_FAILED;
    LOG.warn("a batch failed; its {} unfinished row(s) become {} errors", unfinished.size(), code, e);
    String message = (oom ? "out of memory at batch width " + width + ": " : "generation failed: ") + e;
    for (Sequence s : unfinished) {
      s.failure = Completion.error(s.request.id(), s.promptIds.length, code, message);
    }
    return unfinished;
  }

  /**
   * Runs {@code sorted} in batches of {@code width}; returns each request's final sequence. When the batch runs out
   * of device memory (and {@code --oom-retry}), its finished rows stand and the unfinished ones start again, afresh,
   * at half the width, down to 1; other failures, and out of memory at width 1, make the unfinished rows errors.
   */
  private List<Sequence> run(List<Sequence> sorted, int width, int prefillTokens) {
    try {
      stats.addBatchWidth(width);
      Batch batch = new Batch(new ListWaiting(sorted), width, Math.min(contextLength, capacityFor(sorted)), s -> { });
      batch.prefillTokens = prefillTokens;
      batch.run();
      return sorted;
    } catch (InterruptedException e) { // a list never waits
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (RuntimeException e) {
      List<Sequence> done = new ArrayList<>();
      List<Sequence> unfinished = new ArrayList<>();
      for (Sequence s : sorted) {
        (s.isFinished() ? done : unfinished).add(s);
      }
      boolean oom = isOutOfMemory(e);
      if (oom && oomRetry && width > 1) {
        stats.addOomRetry();
        held = null; // the memory was not there after all
        int half = Math.max(1, width / 2);
        LOG.warn("out of device memory in a batch of width {}: {} unfinished request(s) start again at width {} ({})",
            width, unfinished.size(), half, e.getMessage());
        List<Sequence> fresh = new ArrayList<>();
        for (Sequence s : unfinished) {
          fresh.add(s.afresh());
        }
        done.addAll(run(fresh, Math.min(half, fresh.size()), prefillTokens));
        return done;
      }
      fail(unfinished, e, width);
      return sorted;
    }
  }

  /** Whether {@code e} (or a cause) is the device, or the JVM, running out of memory. */
  static boolean isOutOfMemory(Throwable e) {
    return OutOfMemory.causedBy(e);
  }

  /**
   * A test's stand-in for a device too small: with the system property {@value #SIMULATED_OOM_PROPERTY} set to N,
   * allocating a KV cache for more than N rows fails as CUDA does when out of memory. Unset in production.
   */
  static final String SIMULATED_OOM_PROPERTY = "sparkinfer.test.oomAboveRows";

  private BatchCache allocateCache(NDManager scope, int rows, int capacity) {
    String limit = System.getProperty(SIMULATED_OOM_PROPERTY);
    if (limit != null && rows > Integer.parseInt(limit)) {
      throw new ai.djl.engine.EngineException("CUDA out of memory (simulated: " + rows + " rows > " + limit + ")");
    }
    return backend.allocateCache(scope, rows, capacity);
  }

  /**
   * The width of a batch with {@code --batch-size auto} for prompts of up to {@code promptTokens} and up to
   * {@code newTokens} new ones (the batch's KV cache is allocated for that length): as many rows as fit this
   * generator's share of the device's free memory now, and no fewer than an earlier batch of rows as long held
   * ({@link #held}).
   */
  public int autoBatchSize(int promptTokens, int newTokens) {
    return autoSize(promptTokens, newTokens).rows();
  }

  /**
   * An auto-sized batch: its rows, and the padded tokens it prefills at a time (fewer than {@code --max-prefill-tokens}
   * where a whole group's reserve would crowd out the rows, {@link BatchSizer#prefillTokens}).
   */
  private record AutoSize(int rows, int prefillTokens) {}

  /** {@link #autoBatchSize} with the batch's prefill group, from one reading of this generator's share of the memory. */
  private AutoSize autoSize(int promptTokens, int newTokens) {
    LongSupplier test = deviceBudget;
    long budget = (test != null ? test.getAsLong() : BatchSizer.budget(device)) / deviceSharers;
    int fit = BatchSizer.fit(budget, config, precision.dataType(), backend, promptTokens, newTokens, maxPrefillTokens);
    Held h = held;
    long slots = Math.min(contextLength, (long) promptTokens + newTokens);
    int rows = h != null && slots <= h.slots() ? Math.max(fit, h.rows()) : fit;
    return new AutoSize(rows, BatchSizer.prefillTokens(budget, config, precision.dataType(), promptTokens,
        maxPrefillTokens));
  }

  /** Remembers an auto-sized batch of {@code rows} rows of {@code slots} slots if it holds more than any before. */
  private void holding(int rows, long slots) {
    Held h = held;
    if (h == null || (long) rows * slots > (long) h.rows() * h.slots()) {
      held = new Held(rows, slots);
    }
  }

  /** Sizes {@code --batch-size auto} from {@code bytes} instead of the device's memory (tests). */
  Generator withDeviceBudget(LongSupplier bytes) {
    this.deviceBudget = bytes;
    return this;
  }

  /**
   * Tells this generator that {@code generators} generators (itself included) decode on its device at once, so
   * that {@code --batch-size auto} sizes its batches for a 1/{@code generators} share of the free memory.
   */
  public Generator sharingDeviceWith(int generators) {
    if (generators < 1) {
      throw new IllegalArgumentException("generators must be >= 1, got " + generators);
    }
    this.deviceSharers = generators;
    return this;
  }

  /** {@link #autoSize(int, int)} for {@code sorted} (shortest prompt first): its longest prompt and token limit. */
  private AutoSize autoSize(List<Sequence> sorted) {
    int newTokens = sorted.stream().mapToInt(s -> s.maxNew).max().orElse(1);
    return autoSize(sorted.get(sorted.size() - 1).promptIds.length, newTokens);
  }

  /** A request's prompt ids, or the error completion that answers it. */
  private record Prepared(long[] promptIds, Completion error) {
    static Prepared error(GenerationRequest r, int promptTokens, String code, String message) {
      return new Prepared(null, Completion.error(r.id(), promptTokens, code, message));
    }
  }

  /** The prompt's token ids, or an error completion explaining why it cannot run. */
  private Prepared prepare(GenerationRequest r) {
    long[] ids = r.promptTokenIds();
    if (ids != null) {
      int vocab = config.vocabSize();
      for (long id : ids) {
        if (id < 0 || id >= vocab) {
          return Prepared.error(r, ids.length, ErrorCode.INVALID_REQUEST,
              "prompt token id " + id + " is outside the vocabulary [0, " + vocab + ")");
        }
      }
    } else if (r.prompt() == null || r.prompt().isEmpty()) {
      return Prepared.error(r, 0, ErrorCode.EMPTY_PROMPT, "the prompt is empty");
    } else {
      ids = tokenizer.encode(r.prompt());
    }
    if (ids.length == 0) {
      return Prepared.error(r, 0, ErrorCode.EMPTY_PROMPT, "the prompt has no tokens");
    }
    if (ids.length > maxPromptTokens) {
      return Prepared.error(r, ids.length, ErrorCode.PROMPT_TOO_LONG, "the prompt has " + ids.length
          + " tokens; the limit is " + maxPromptTokens + " (model context " + contextLength
          + " tokens, one kept for output)");
    }
    return new Prepared(ids, null);
  }

  /** The slots a batch's KV cache needs for every one of {@code seqs}: the longest prompt plus token limit. */
  private static int capacityFor(java.util.Collection<Sequence> seqs) {
    int c = 1;
    for (Sequence s : seqs) {
      c = Math.max(c, s.promptIds.length + s.maxNew);
    }
    return c;
  }

  /** Where a batch's waiting sequences come from: a list given at once, or a {@link RequestStream}. */
  private interface Waiting {
    /** The next sequence, left in place: null when none is ready ({@code wait} false) or none will come. */
    Sequence peek(boolean wait) throws InterruptedException;

    /** Takes the sequence {@link #peek} returned. */
    void take();
  }

  /** A list's sequences, shortest prompt first. */
  private static final class ListWaiting implements Waiting {
    private final Deque<Sequence> queue;

    ListWaiting(List<Sequence> sorted) {
      this.queue = new ArrayDeque<>(sorted);
    }

    @Override
    public Sequence peek(boolean wait) {
      return queue.peek();
    }

    @Override
    public void take() {
      queue.poll();
    }
  }

  /**
   * A stream's requests as sequences, prepared as they arrive (bad ones go to the sink as errors at once), and the
   * sequences an out-of-memory batch left unfinished, which come again first.
   */
  private final class StreamWaiting<T> implements Waiting {
    private final RequestStream<T> stream;
    private final CompletionSink<T> sink;
    private final Deque<Sequence> ready = new ArrayDeque<>();
    long waitedNanos;

    StreamWaiting(RequestStream<T> stream, CompletionSink<T> sink) {
      this.stream = stream;
      this.sink = sink;
    }

    @Override
    public Sequence peek(boolean wait) throws InterruptedException {
      while (ready.isEmpty()) {
        long start = System.nanoTime();
        RequestStream.Item<T> item = stream.next(wait);
        if (wait) {
          waitedNanos += System.nanoTime() - start;
        }
        if (item == null) {
          return null;
        }
        stats.addRequests(1);
        Prepared prepared = prepare(item.request());
        if (prepared.error() != null) {
          sink.accept(item.tag(), prepared::error);
        } else {
          ready.add(new Sequence(-1, item.request(), prepared.promptIds(), item.tag()));
        }
      }
      return ready.peek();
    }

    @Override
    public void take() {
      ready.poll();
    }

    /** The sequences still to come, once the stream knows: those ready here and those the stream holds; else -1. */
    int knownRemaining() {
      int inStream = stream.knownRemaining();
      return inStream < 0 ? -1 : ready.size() + inStream;
    }

    /**
     * The requests ready here and in the stream once no more arrive for {@link Generator#SETTLE_STEP_MILLIS} and no
     * feeder that opened is still to bring its first ({@link RequestStream#awaitsFeeders}): at most
     * {@link Generator#SETTLE_MILLIS}, and no longer once {@code enough} are ready; -1 when the stream cannot tell.
     */
    int settledAvailable(int enough) throws InterruptedException {
      int before = stream.available();
      if (before < 0) {
        return -1;
      }
      for (long waited = 0; waited < SETTLE_MILLIS && ready.size() + before < enough; waited += SETTLE_STEP_MILLIS) {
        Thread.sleep(SETTLE_STEP_MILLIS);
        int now = stream.available();
        boolean grew = now > before;
        before = now;
        if (stream.knownRemaining() >= 0 || (!grew && !stream.awaitsFeeders())) {
          break;
        }
      }
      return ready.size() + before;
    }

    /** The prompt tokens plus token limit of the longest request the stream has ready; -1 if it cannot tell. */
    int longestAvailable() {
      return stream.longestAvailable();
    }

    /** The prompt tokens plus token limit of the longest request the stream will give; -1 if it cannot tell. */
    int longestExpected() {
      return stream.longestExpected();
    }

    /** Puts {@code unfinished} back first, afresh, the longest first: the next batch's cache is sized for them all. */
    void startAgain(List<Sequence> unfinished) {
      List<Sequence> longestLast = new ArrayList<>(unfinished);
      longestLast.sort(Comparator.comparingInt(s -> s.promptIds.length + s.maxNew));
      for (Sequence s : longestLast) {
        ready.addFirst(s.afresh());
      }
    }

    @SuppressWarnings("unchecked")
    void finished(Sequence s) {
      sink.accept((T) s.tag, s::result);
    }
  }

  /**
   * The rows of one running batch over a KV cache that lives as long as the batch. Rows are refilled from
   * the waiting sequences once at least {@link #REFILL_FRACTION} of them are free (or none is running), so
   * each refill's prefill pass serves several sequences; a finished row leaves the batch (to {@code onFinished})
   * before its row is refilled.
   */
  private final class Batch {
    static final int REFILL_FRACTION = 8;

    private final Waiting waiting;
    private final Sequence[] rows;
    private final int capacity;
    private final java.util.function.Consumer<Sequence> onFinished;
    private final List<Sequence> taken = new ArrayList<>(); // from waiting, in order
    private final List<Sequence> admitted = new ArrayList<>();
    /** The last shared prefix's keys and values (one row) and its tokens, kept for the batch's later passes. */
    private BatchCache prefix;
    private long[] prefixIds;
    private long prefillNanos;
    private long decodeNanos;
    private long steps;
    private final StepPhases phases = new StepPhases(); // with --profile-steps
    /** Narrowed to what the stream had left: once requests wait that it has no row for, it drains and ends. */
    boolean reformsWhenOutgrown;
    /** Padded tokens prefilled at a time: {@code --max-prefill-tokens}, fewer where auto sizing needs the room. */
    int prefillTokens = maxPrefillTokens;
    private boolean outgrown;

    /**
     * @param capacity the KV cache slots of every row: for the longest sequence of the run, not only of the first
     *     rows, so that one cache (and one set of CUDA graphs captured over it) serves every sequence admitted
     *     later; growing it would copy it, hold both caches at once and capture the graphs again
     */
    Batch(Waiting waiting, int width, int capacity, java.util.function.Consumer<Sequence> onFinished) {
      this.waiting = waiting;
      this.rows = new Sequence[width];
      this.capacity = capacity;
      this.onFinished = onFinished;
    }

    void run() throws InterruptedException {
      int width = rows.length;
      try (NDManager scope = root.newSubManager()) {
        BatchCache cache = allocateCache(scope, width, capacity);
        stats.addKvCacheAllocation();
        try {
          while (true) {
            retireFinished();
            int free = freeRows();
            if (free * REFILL_FRACTION >= width || free == width) {
              admit(scope, cache);
            }
            if (freeRows() == width) {
              retireFinished(); // rows that finished in their prefill go out before the wait for more requests
              Sequence next = outgrown ? null : waiting.peek(true);
              if (next == null || !fits(next)) {
                break; // the run is over, outgrown, or the next sequence needs a longer cache: a new batch
              }
              continue;
            }
            decodeStep(scope, cache);
          }
          retireFinished(); // rows that finished in the last prefill (their first token was their last)
        } finally {
          cache.close();
          if (prefix != null) {
            prefix.close();
          }
        }
      }
      long promptTokens = admitted.stream().mapToLong(s -> s.promptIds.length).sum();
      long generated = admitted.stream().mapToLong(s -> s.count).sum();
      stats.addBatch(promptTokens, generated, prefillNanos, decodeNanos, steps);
      if (profileSteps && steps > 0) {
        System.err.println(phases.report(width, steps));
      }
    }

    private int freeRows() {
      int free = 0;
      for (Sequence s : rows) {
        if (s == null || s.isFinished()) {
          free++;
        }
      }
      return free;
    }

    private boolean fits(Sequence s) {
      return s.promptIds.length + s.maxNew <= capacity;
    }

    /** Hands finished rows to {@code onFinished} and frees them. */
    private void retireFinished() {
      for (int i = 0; i < rows.length; i++) {
        if (rows[i] != null && rows[i].isFinished()) {
          onFinished.accept(rows[i]);
          rows[i].handedOver = true;
          rows[i] = null;
        }
      }
    }

    boolean tookNothing() {
      return taken.isEmpty();
    }

    /**
     * After a failure: hands over the sequences taken that did finish, and returns those that did not (in the
     * rows, or taken for a prefill that failed).
     */
    List<Sequence> settleTaken() {
      List<Sequence> unfinished = new ArrayList<>();
      for (Sequence s : taken) {
        if (!s.isFinished()) {
          unfinished.add(s);
        } else if (!s.handedOver) {
          onFinished.accept(s);
          s.handedOver = true;
        }
      }
      return unfinished;
    }

    /**
     * Prefills waiting sequences into the free rows. Joiners are prefilled in groups of at most
     * {@link #prefillTokens} padded tokens.
     */
    private void admit(NDManager scope, BatchCache cache) {
      if (outgrown) {
        return;
      }
      List<Integer> freeRows = new ArrayList<>();
      for (int i = 0; i < rows.length; i++) {
        if (rows[i] == null || rows[i].isFinished()) {
          freeRows.add(i);
        }
      }
      List<Sequence> joining = new ArrayList<>();
      while (joining.size() < freeRows.size()) {
        Sequence next;
        try {
          next = waiting.peek(false);
        } catch (InterruptedException e) { // peek(false) never waits
          Thread.currentThread().interrupt();
          break;
        }
        if (next == null || !fits(next)) {
          break;
        }
        waiting.take();
        taken.add(next);
        joining.add(next);
      }
      if (reformsWhenOutgrown && joining.size() == freeRows.size() && peekNow() != null) {
        outgrown = true; // requests wait that this batch has no row for: it drains and a wider one follows
      }
      boolean packed = backend.runsPacked();
      int from = 0;
      while (from < joining.size()) {
        // a packed line holds the sum of its prompts' tokens, and where every prompt begins with the batch's kept
        // prefix only their own after it (the prefix is copied into their rows of the batch); padded rows hold the
        // longest prompt in every row, prefix and all (their cache of their own keeps the prefix's slots too)
        int kept = prefixIds != null ? prefixIds.length : 0;
        boolean reuses = true;
        long ownSum = 0;
        long fullSum = 0;
        int longest = 0;
        int to = from;
        while (to < joining.size()) {
          int full = joining.get(to).promptIds.length;
          boolean stillReuses = reuses && reusesKeptPrefix(joining.get(to));
          int len = Math.max(longest, full);
          long line = !packed ? (long) len * (to - from + 1) : stillReuses ? ownSum + full - kept : fullSum + full;
          if (to > from && line > prefillTokens) {
            break;
          }
          reuses = stillReuses;
          ownSum += full - kept;
          fullSum += full;
          longest = len;
          to++;
        }
        prefill(scope, cache, joining.subList(from, to), freeRows.subList(from, to), longest);
        stats.addPrefillPass();
        from = to;
      }
    }

    /** Whether {@code s} begins with the batch's kept prefix and has tokens of its own after it. */
    private boolean reusesKeptPrefix(Sequence s) {
      return prefixIds != null && allBeginWith(List.of(s), prefixIds);
    }

    private Sequence peekNow() {
      try {
        return waiting.peek(false);
      } catch (InterruptedException e) { // peek(false) never waits
        Thread.currentThread().interrupt();
        return null;
      }
    }

    /**
     * Prefills {@code group} (prompts of up to {@code longest} tokens) into rows {@code targets} of the batch: a packed
     * line writes straight into them, padded rows run on a cache of their own that is then copied into them. When
     * the prompts all begin with the same {@link #sharedPrefix} or more tokens, those run once, as one row, their
     * keys and values are copied into each of the prompts' rows, and each
     * prompt's own tokens then run at the positions after them, attending to the shared slots as any token attends
     * to the slots before it. The batch keeps the last such prefix: a later pass whose prompts all begin with it
     * (one prompt alone too) copies it instead of running it again.
     */
    private void prefill(NDManager scope, BatchCache cache, List<Sequence> group, List<Integer> targets, int longest) {
      int k = group.size();
      boolean reuse = prefixIds != null && allBeginWith(group, prefixIds);
      int common = reuse ? prefixIds.length : k > 1 && sharedPrefix > 0 ? commonPrefix(group) : 0;
      int shared = reuse || common >= sharedPrefix ? common : 0; // tokens run once for the whole group, or before
      // packed: one line of every prompt's own tokens back to back; else a row each, right-padded to the longest
      boolean packed = backend.runsPacked();
      int width = longest - shared; // the longest prompt's own tokens
      int total = 0;
      for (Sequence s : group) {
        total += s.promptIds.length - shared;
      }
      int lineLength = packed ? total : width;
      long[] ids = new long[packed ? total : k * width];
      long[] positions = new long[ids.length];
      long[] last = new long[k];
      long[] targetRows = new long[k];
      int at = 0; // where prompt i's own tokens begin
      for (int i = 0; i < k; i++) {
        long[] p = group.get(i).promptIds;
        int own = p.length - shared;
        int rowStart = packed ? at : i * width;
        System.arraycopy(p, shared, ids, rowStart, own); // unpacked rows are right-padded with token 0
        for (int j = 0; j < (packed ? own : width); j++) {
          positions[rowStart + j] = shared + j;
        }
        last[i] = packed ? at + own - 1 : own - 1;
        at += own;
        targetRows[i] = targets.get(i);
      }
      long start = System.nanoTime();
      // a packed line writes straight into its rows of the batch; padded rows run on a cache of their own
      try (NDManager step = scope.newSubManager();
          BatchCache own = packed ? null : allocateCache(step, k, longest)) {
        BatchCache into = packed ? cache : own;
        long[] intoRows = packed ? targetRows : allRows(k);
        if (shared > 0) {
          if (!reuse) {
            runPrefix(scope, step, group.get(0).promptIds, shared);
          }
          into.copyRowsFrom(prefix, intoRows, shared); // one row of shared slots into each row
        }
        // ids, positions: (1, total) packed or (k, width); last: (k) the index of each prompt's last token in its
        // line; packed: (k) each prompt's row of the batch (free rows, in increasing order)
        Shape shape = new Shape(ids.length / lineLength, lineLength);
        ForwardBatch fb = new ForwardBatch(step.create(ids, shape), step.create(positions, shape), step.create(last),
            longest, packed ? step.create(targetRows) : null, shared == 0); // fresh: each prompt from position 0
        NDArray logits = backend.forward(step, fb, into);
        long[] next = chooseTokens(logits, group);
        if (!packed) {
          cache.copyRowsFrom(own, targetRows, longest);
        }
        long now = System.nanoTime();
        for (int i = 0; i < k; i++) {
          Sequence s = group.get(i);
          rows[targets.get(i)] = s;
          admitted.add(s);
          s.admittedAt = start;
          s.accept(next[i], now);
        }
      }
      stats.addSharedPrefixTokens((long) shared * (reuse ? k : k - 1));
      prefillNanos += System.nanoTime() - start;
    }

    /**
     * Runs the first {@code shared} tokens of {@code promptIds} once, as one row, into a cache of the batch's
     * ({@code scope}) that replaces the kept prefix.
     */
    private void runPrefix(NDManager scope, NDManager step, long[] promptIds, int shared) {
      long[] positions = new long[shared];
      for (int j = 0; j < shared; j++) {
        positions[j] = j;
      }
      if (prefix != null) {
        prefix.close();
        prefix = null;
        prefixIds = null;
      }
      BatchCache fresh = allocateCache(scope, 1, shared);
      try {
        // ids, positions: (1, shared)
        backend.forward(step, new ForwardBatch(step.create(Arrays.copyOf(promptIds, shared), new Shape(1, shared)),
            step.create(positions, new Shape(1, shared)), step.create(new long[] {shared - 1}), shared, null, true),
            fresh);
      } catch (RuntimeException e) {
        fresh.close();
        throw e;
      }
      prefix = fresh;
      prefixIds = Arrays.copyOf(promptIds, shared);
    }

    private static long[] allRows(int k) {
      long[] rows = new long[k];
      for (int i = 0; i < k; i++) {
        rows[i] = i;
      }
      return rows;
    }

    /** Whether every prompt of {@code group} begins with {@code ids} and has tokens of its own after them. */
    private static boolean allBeginWith(List<Sequence> group, long[] ids) {
      for (Sequence s : group) {
        if (s.promptIds.length <= ids.length || !Arrays.equals(s.promptIds, 0, ids.length, ids, 0, ids.length)) {
          return false;
        }
      }
      return true;
    }

    /**
     * The tokens every prompt of {@code group} begins with, less one: each prompt keeps at least its last token to
     * prefill, whose logits choose its first new token.
     */
    private int commonPrefix(List<Sequence> group) {
      long[] first = group.get(0).promptIds;
      int n = first.length - 1;
      for (Sequence s : group) {
        n = Math.min(n, s.promptIds.length - 1);
        int i = 0;
        while (i < n && s.promptIds[i] == first[i]) {
          i++;
        }
        n = i;
      }
      return n;
    }

    /** One decode step over every row; idle rows feed a dummy token at slot 0. */
    private void decodeStep(NDManager scope, BatchCache cache) {
      int b = rows.length;
      long[] ids = new long[b];
      long[] positions = new long[b];
      int keyLength = 1;
      List<Sequence> active = new ArrayList<>(b);
      for (int i = 0; i < b; i++) {
        Sequence s = rows[i];
        boolean running = s != null && !s.isFinished();
        ids[i] = running ? s.lastToken() : 0;
        positions[i] = running ? s.lastPosition() : 0;
        keyLength = (int) Math.max(keyLength, positions[i] + 1);
        active.add(running ? s : null);
      }
      int chunk = greedyChunk(active);
      if (chunk > 1) {
        decodeGreedy(scope, cache, ids, positions, Math.min(cache.capacity(), keyLength + chunk - 1), active, chunk);
        return;
      }
      long start = System.nanoTime();
      long t1;
      long t2;
      long t3;
      try (NDManager step = scope.newSubManager()) {
        t1 = System.nanoTime();
        NDArray logits = backend.decode(step, ids, positions, keyLength, cache); // (B, V) float32
        t2 = System.nanoTime();
        long[] next = chooseTokens(logits, active);
        long now = System.nanoTime();
        t3 = now;
        for (int i = 0; i < b; i++) {
          if (active.get(i) != null) {
            active.get(i).accept(next[i], now);
          }
        }
      }
      long end = System.nanoTime();
      decodeNanos += end - start;
      phases.inputs += t1 - start;
      phases.model += t2 - t1;
      phases.tokens += t3 - t2;
      phases.bookkeeping += end - t3;
      steps++;
    }

    /**
     * Greedy steps the running rows can take without the host in between: up to {@link #decodeChunk}, none
     * past any row's token limit (so no row writes past its cache slots), and 1 while any row samples.
     * Rows that stop early (eos, stop strings) ignore the rest of the chunk.
     */
    private int greedyChunk(List<Sequence> active) {
      int chunk = decodeChunk;
      for (Sequence s : active) {
        if (s != null) {
          if (s.sampler != null) {
            return 1;
          }
          chunk = Math.min(chunk, s.maxNew - s.count);
        }
      }
      return Math.max(chunk, 1);
    }

    private void decodeGreedy(NDManager scope, BatchCache cache, long[] ids, long[] positions, int keyLength,
        List<Sequence> active, int chunk) {
      long start = System.nanoTime();
      long[][] tokens;
      try (NDManager step = scope.newSubManager()) {
        tokens = backend.decodeGreedy(step, ids, positions, keyLength, cache, chunk);
      }
      long now = System.nanoTime();
      for (long[] stepTokens : tokens) {
        for (int i = 0; i < stepTokens.length; i++) {
          Sequence s = active.get(i);
          if (s != null && !s.isFinished()) {
            s.accept(stepTokens[i], now);
          }
        }
      }
      long end = System.nanoTime();
      decodeNanos += end - start;
      phases.model += now - start;
      phases.bookkeeping += end - now;
      steps += chunk;
    }
  }

  /** Where a batch's decode steps spent their time, summed over its steps ({@code --profile-steps}). */
  private static final class StepPhases {
    long inputs; // the step's inputs to the device
    long model; // the backend call
    long tokens; // choosing the next tokens
    long bookkeeping; // the rows' progress on the host

    String report(int width, long steps) {
      return String.format(Locale.ROOT, "decode steps of width %d: %d steps, ms per step: inputs %.3f, model %.3f, "
          + "tokens %.3f, bookkeeping %.3f", width, steps, inputs / 1e6 / steps, model / 1e6 / steps,
          tokens / 1e6 / steps, bookkeeping / 1e6 / steps);
    }
  }

  /** Argmax on the device for greedy rows; host-side sampling with each row's own seed for the others. */
  private long[] chooseTokens(NDArray logits, List<Sequence> batch) {
    long[] greedy = logits.argMax(-1).toLongArray();
    boolean anySampling = batch.stream().anyMatch(s -> s != null && !s.isFinished() && s.sampler != null);
    if (!anySampling) {
      return greedy;
    }
    int vocab = (int) logits.getShape().get(1);
    float[] all = logits.toFloatArray();
    for (int i = 0; i < batch.size(); i++) {
      Sequence s = batch.get(i);
      if (s != null && !s.isFinished() && s.sampler != null) {
        greedy[i] = s.sampler.sample(Arrays.copyOfRange(all, i * vocab, (i + 1) * vocab));
      }
    }
    return greedy;
  }

  @Override
  public void close() {
    root.close();
  }

  /** One request's progress through a batch. */
  private final class Sequence {
    final int index;
    final GenerationRequest request;
    final long[] promptIds;
    final int maxNew;
    final TokenSampler sampler;
    long[] generated;
    int count;
    FinishReason finish;
    String text;
    double firstTokenMs;
    double latencyMs;
    long admittedAt;
    Completion failure;
    final Object tag; // the stream's tag, or null
    boolean handedOver; // to the batch's onFinished

    Sequence(int index, GenerationRequest request, long[] promptIds) {
      this(index, request, promptIds, null);
    }

    Sequence(int index, GenerationRequest request, long[] promptIds, Object tag) {
      this.index = index;
      this.request = request;
      this.promptIds = promptIds;
      this.tag = tag;
      this.maxNew = Math.min(request.maxNewTokens(), contextLength - promptIds.length);
      this.sampler = request.sampling().isGreedy() ? null : new TokenSampler(request.sampling());
      this.generated = new long[Math.min(maxNew, 256)];
    }

    boolean isFinished() {
      return finish != null || failure != null;
    }

    /** The same request from the start, with a new sampler: it gives the same tokens again. */
    Sequence afresh() {
      return new Sequence(index, request, promptIds, tag);
    }

    /** The completion, or the error that ended it. */
    Completion result() {
      return failure != null ? failure : completion();
    }

    long lastToken() {
      return count == 0 ? promptIds[promptIds.length - 1] : generated[count - 1];
    }

    /** Position of the last token fed or generated: the slot the next decode step writes. */
    long lastPosition() {
      return promptIds.length + count - 1;
    }

    void accept(long token, long now) {
      if (count == generated.length) {
        generated = Arrays.copyOf(generated, Math.min(maxNew, generated.length * 2));
      }
      generated[count++] = token;
      double elapsedMs = (now - admittedAt) / 1e6;
      if (count == 1) {
        firstTokenMs = elapsedMs;
      }
      if (!request.ignoreEos() && eosTokenIds.contains(token)) {
        finish(FinishReason.STOP, decode(count - 1), elapsedMs);
        return;
      }
      if (!request.stopStrings().isEmpty()) {
        String sofar = decode(count);
        int cut = firstStop(sofar);
        if (cut >= 0) {
          finish(FinishReason.STOP, sofar.substring(0, cut), elapsedMs);
          return;
        }
      }
      if (count >= maxNew) {
        finish(FinishReason.LENGTH, null, elapsedMs);
      }
    }

    private int firstStop(String text) {
      int cut = -1;
      for (String stop : request.stopStrings()) {
        int at = text.indexOf(stop);
        if (at >= 0 && (cut < 0 || at < cut)) {
          cut = at;
        }
      }
      return cut;
    }

    private void finish(FinishReason reason, String finalText, double elapsedMs) {
      finish = reason;
      text = finalText;
      latencyMs = elapsedMs;
    }

    private String decode(int tokens) {
      return tokenizer.decode(Arrays.copyOf(generated, tokens));
    }

    Completion completion() {
      String t = text != null ? text : decode(count);
      return new Completion(request.id(), t, Arrays.copyOf(generated, count), promptIds.length, count, finish,
          null, null, latencyMs, firstTokenMs);
    }
  }
}
