package io.sparkinfer.generate;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A generator over a {@link RequestStream} (the Spark job's path: one stream of requests per task, taken as rows
 * free up) on the trained demo checkpoint: the tokens are transformers' greedy tokens, whatever the stream's order,
 * pace or number of generators taking from it, and each request is answered once, under its tag.
 */
class GeneratorStreamTest {

  static LlmEngine engine;
  static List<Fixtures.Case> cases;
  /** Different token limits, so rows finish at different steps and waiting requests join mid-batch. */
  static final int[] LIMITS = {3, 24, 7, 24, 12, 24, 5, 20};

  @BeforeAll
  static void load() {
    engine = LlmEngine.load(EngineOptions.of(Fixtures.model("qwen2-code-demo"), Precision.FP32, "cpu"));
    cases = Fixtures.reference(Fixtures.model("qwen2-code-demo"));
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  /** The fixture's prompts as requests, each with its case index for id, by prompt length: longest or shortest first. */
  static List<GenerationRequest> requests(boolean longestFirst) {
    return requests(longestFirst, LIMITS);
  }

  static List<GenerationRequest> requests(boolean longestFirst, int[] limits) {
    List<Integer> at = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      at.add(i);
    }
    at.sort(Comparator.comparingInt(i -> engine.tokenizer().encode(cases.get(i).prompt()).length));
    if (longestFirst) {
      Collections.reverse(at);
    }
    List<GenerationRequest> out = new ArrayList<>();
    for (int i : at) {
      out.add(GenerationRequest.greedy(Integer.toString(i), cases.get(i).prompt(), limits[i]));
    }
    return out;
  }

  static long[] reference(int i, int[] limits) {
    long[] ref = cases.get(i).greedyIds();
    return Arrays.copyOf(ref, Math.min(ref.length, limits[i]));
  }

  /** Runs {@code requests} through one ended stream on {@code g}; completions by id, each exactly once. */
  static Map<String, Completion> stream(Generator g, List<GenerationRequest> requests, int batchSize) {
    RequestQueue<String> queue = new RequestQueue<>();
    requests.forEach(r -> queue.add(r, r.id()));
    queue.end();
    Map<String, Completion> out = new ConcurrentHashMap<>();
    try {
      g.generate(queue, batchSize,
          (tag, c) -> assertThat(out.put(tag, c.get())).as("answered once: %s", tag).isNull());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    return out;
  }

  /** The same token limit for every case. */
  static int[] uniform(int limit) {
    int[] limits = new int[cases.size()];
    Arrays.fill(limits, limit);
    return limits;
  }

  static void assertReferenceTokens(Map<String, Completion> out) {
    assertReferenceTokens(out, LIMITS);
  }

  static void assertReferenceTokens(Map<String, Completion> out, int[] limits) {
    assertThat(out).hasSize(cases.size());
    for (int i = 0; i < cases.size(); i++) {
      Completion c = out.get(Integer.toString(i));
      assertThat(c.id()).isEqualTo(Integer.toString(i));
      assertThat(c.outputTokenIds()).as(cases.get(i).prompt()).containsExactly(reference(i, limits));
    }
  }

  /**
   * A batch narrowed to the two requests a first feeder had makes way, once a second feeder brings six more while it
   * runs, for a batch as wide as they need (not the first batch's two rows for all eight).
   */
  @Test
  void aBatchNarrowedToWhatWasLeftMakesWayForAWiderOneWhenMoreCome() throws InterruptedException {
    List<GenerationRequest> all = new ArrayList<>();
    for (GenerationRequest r : requests(true)) {
      all.add(new GenerationRequest(r.id(), null, r.maxNewTokens(), r.sampling(), List.of(), false,
          engine.tokenizer().encode(r.prompt())));
    }
    SharedRequestStream<String> shared = new SharedRequestStream<>();
    try (SharedRequestStream<String>.Feed first = shared.open()) {
      all.subList(0, 2).forEach(r -> first.add(r, r.id()));
    }
    Map<String, Completion> out = new ConcurrentHashMap<>();
    try (Generator g = engine.newGenerator()) {
      g.generate(shared, 8, (tag, c) -> {
        assertThat(out.put(tag, c.get())).as("answered once: %s", tag).isNull();
        if (out.size() == 1) { // while the first batch runs
          try (SharedRequestStream<String>.Feed second = shared.open()) {
            all.subList(2, all.size()).forEach(r -> second.add(r, r.id()));
          }
          shared.end();
        }
      });
      assertReferenceTokens(out);
      assertThat(g.stats().batchWidths()).as("two rows, then the five still waiting").containsExactly(2, 5);
    }
  }

  /**
   * A feeder that has opened but brought nothing yet is waited for (the job's tasks open their feeds as they start,
   * then tokenize): its requests, coming 300 ms after the first feeder's two, join the first batch, one batch of all
   * eight, not a batch of two and then one of six.
   */
  @Test
  void aBatchWaitsForFeedersThatOpenedButHaveBroughtNothingYet() throws Exception {
    List<GenerationRequest> all = new ArrayList<>();
    for (GenerationRequest r : requests(true)) {
      all.add(new GenerationRequest(r.id(), null, r.maxNewTokens(), r.sampling(), List.of(), false,
          engine.tokenizer().encode(r.prompt())));
    }
    SharedRequestStream<String> shared = new SharedRequestStream<>();
    SharedRequestStream<String>.Feed late = shared.open();
    try (SharedRequestStream<String>.Feed first = shared.open()) {
      all.subList(0, 2).forEach(r -> first.add(r, r.id()));
    }
    Map<String, Completion> out = new ConcurrentHashMap<>();
    ExecutorService thread = Executors.newSingleThreadExecutor();
    try (Generator g = engine.newGenerator()) {
      Future<Long> running = thread.submit(() -> g.generate(shared, 8,
          (tag, c) -> assertThat(out.put(tag, c.get())).as("answered once: %s", tag).isNull()));
      Thread.sleep(300);
      all.subList(2, all.size()).forEach(r -> late.add(r, r.id()));
      late.close();
      shared.end();
      running.get(120, java.util.concurrent.TimeUnit.SECONDS);
      assertReferenceTokens(out);
      assertThat(g.stats().batchWidths()).as("one batch for the eight").containsExactly(8);
    } finally {
      thread.shutdownNow();
    }
  }

  /**
   * A request whose first token is its last is handed over at once, while the stream stays open (a shared stream
   * ends only when its last feeder leaves, and that feeder waits for this completion).
   */
  @Test
  void aRequestFinishingInItsPrefillIsHandedOverWhileTheStreamStaysOpen() throws Exception {
    SharedRequestStream<String> shared = new SharedRequestStream<>();
    String prompt = cases.get(0).prompt();
    try (SharedRequestStream<String>.Feed feed = shared.open()) {
      feed.add(new GenerationRequest("one", null, 1, SamplingParams.GREEDY, List.of(), false,
          engine.tokenizer().encode(prompt)), "one");
    }
    java.util.concurrent.CompletableFuture<Completion> done = new java.util.concurrent.CompletableFuture<>();
    ExecutorService thread = Executors.newSingleThreadExecutor();
    try (Generator g = engine.newGenerator()) {
      Future<Long> running = thread.submit(() -> g.generate(shared, 0, (tag, c) -> done.complete(c.get())));
      Completion c = done.get(60, java.util.concurrent.TimeUnit.SECONDS);
      assertThat(c.outputTokenIds()).containsExactly(reference(0, uniform(1)));
      assertThat(running).as("still taking from the open stream").isNotDone();
      shared.end();
      running.get(60, java.util.concurrent.TimeUnit.SECONDS);
    } finally {
      thread.shutdownNow();
    }
  }

  /**
   * A stream that gives its shortest request first while longer ones are ready, and says how long the longest is
   * ({@link RequestStream#longestAvailable}): one batch whose cache holds them all, not a new batch for each longer one.
   */
  @Test
  void aBatchIsSizedForTheLongestRequestReadyNotOnlyTheFirst() throws InterruptedException {
    int[] limits = uniform(6);
    try (Generator g = engine.newGenerator()) {
      assertReferenceTokens(streamShortestFirst(g, limits, true, -1), limits);
      assertThat(g.stats().kvCacheAllocations()).as("one cache for the longest, the first to come the shortest")
          .isEqualTo(1);
    }
  }

  /**
   * A stream that gives its shortest request first and cannot say what it has ready, but knows the longest it will
   * give ({@link RequestStream#longestExpected}, as the Spark job's planning does): one auto-sized batch whose cache
   * holds them all, with the reference tokens; without that knowledge, a new cache for longer requests; and where
   * holding the longest would narrow the batch by more than an eighth, the batch is sized for what it has.
   */
  @Test
  void anAutoSizedBatchIsSizedForTheLongestRequestTheStreamExpects() throws InterruptedException {
    int[] limits = uniform(6);
    int longest = 0;
    int shortest = Integer.MAX_VALUE;
    for (GenerationRequest r : requests(false, limits)) {
      int tokens = engine.tokenizer().encode(r.prompt()).length;
      longest = Math.max(longest, tokens);
      shortest = Math.min(shortest, tokens);
    }
    try (Generator g = engine.newGenerator()) {
      assertReferenceTokens(streamShortestFirst(g, limits, false, longest + 6), limits);
      assertThat(g.stats().kvCacheAllocations()).as("one cache, for the longest expected").isEqualTo(1);
    }
    try (Generator g = engine.newGenerator()) {
      assertReferenceTokens(streamShortestFirst(g, limits, false, -1), limits);
      assertThat(g.stats().kvCacheAllocations()).as("nothing expected: longer requests need new caches")
          .isGreaterThan(1);
    }
    long tight = 1L << 20;
    try (Generator g = engine.newGenerator().withDeviceBudget(() -> tight)) {
      assertThat(8L * g.autoBatchSize(longest, 6)).as("holding the longest costs more than an eighth of the rows")
          .isLessThan(7L * g.autoBatchSize(shortest, 6));
      assertReferenceTokens(streamShortestFirst(g, limits, false, longest + 6), limits);
      assertThat(g.stats().kvCacheAllocations()).as("sized for the requests it has, not the longest expected")
          .isGreaterThan(1);
    }
  }

  /**
   * Streams the reference requests shortest first through {@code g} (auto batch size); the stream says how long the
   * longest ready request is only with {@code tellsReady}, and how long the longest to come will be: {@code expected}
   * (-1: it cannot tell).
   */
  private static Map<String, Completion> streamShortestFirst(Generator g, int[] limits, boolean tellsReady,
      int expected) throws InterruptedException {
    java.util.ArrayDeque<RequestStream.Item<String>> items = new java.util.ArrayDeque<>();
    for (GenerationRequest r : requests(false, limits)) {
      items.add(new RequestStream.Item<>(new GenerationRequest(r.id(), null, r.maxNewTokens(), r.sampling(), List.of(),
          false, engine.tokenizer().encode(r.prompt())), r.id()));
    }
    RequestStream<String> stream = new RequestStream<>() {
      @Override
      public synchronized Item<String> next(boolean wait) {
        return items.poll();
      }

      @Override
      public synchronized int knownRemaining() {
        return items.size();
      }

      @Override
      public synchronized int longestAvailable() {
        return !tellsReady ? -1 : items.stream()
            .mapToInt(i -> i.request().promptTokenIds().length + i.request().maxNewTokens()).max().orElse(-1);
      }

      @Override
      public int longestExpected() {
        return expected;
      }
    };
    Map<String, Completion> out = new ConcurrentHashMap<>();
    g.generate(stream, 0, (tag, c) -> assertThat(out.put(tag, c.get())).isNull());
    return out;
  }

  /** The Spark job's case: one token limit, prompts longest first. */
  @Test
  void aStreamLongestFirstRunsInOneBatchWithTheReferenceTokens() {
    int[] limits = uniform(12);
    try (Generator g = engine.newGenerator()) {
      assertReferenceTokens(stream(g, requests(true, limits), 3), limits);
      assertThat(g.stats().kvCacheAllocations()).as("one batch: the first request's cache holds every later one")
          .isEqualTo(1);
      assertThat(g.stats().requests()).isEqualTo(cases.size());
    }
  }

  /** Requests whose first token is their last finish in the prefill, the batch's last one too: none is dropped. */
  @Test
  void requestsFinishingInTheirPrefillAreAllHandedOver() {
    int[] limits = uniform(1);
    try (Generator g = engine.newGenerator()) {
      assertReferenceTokens(stream(g, requests(true, limits), 3), limits);
    }
  }

  /**
   * A stream's auto-sized batch with little memory prefills its requests in smaller groups than
   * {@code --max-prefill-tokens} (BatchSizer.prefillTokens), and gives the reference tokens: the stream's side of
   * GeneratorTest's list case.
   */
  @Test
  void anAutoSizedStreamWithLittleMemoryPrefillsInSmallerGroups() {
    int[] limits = uniform(6);
    List<GenerationRequest> requests = requests(true, limits);
    int longest = engine.tokenizer().encode(requests.get(0).prompt()).length;
    io.sparkinfer.model.ModelConfig config = io.sparkinfer.model.ModelConfig.load(Fixtures.model("qwen2-code-demo"));
    long little = 2 * BatchSizer.prefillBytes(config, ai.djl.ndarray.types.DataType.FLOAT32, longest, 2 * longest);
    try (Generator roomy = engine.newGenerator().withDeviceBudget(() -> 1L << 31);
        Generator tight = engine.newGenerator().withDeviceBudget(() -> little)) {
      assertReferenceTokens(stream(roomy, requests, 0), limits);
      assertReferenceTokens(stream(tight, requests, 0), limits);
      assertThat(roomy.stats().prefillPasses()).as("every request in one group").isEqualTo(1);
      assertThat(tight.stats().batchWidths()).as("all rows still fit").containsExactly(cases.size());
      assertThat(tight.stats().prefillPasses()).as("groups of at most two of the longest prompts")
          .isGreaterThanOrEqualTo(cases.size() / 2);
    }
  }

  /**
   * A stream's auto-sized batch is remembered as GeneratorTest's list batches are: with the free memory gone after it
   * (in libtorch's cache), rows as long still fit as many.
   */
  @Test
  void anAutoSizedStreamBatchCountsForLaterBatches() {
    int[] limits = uniform(6);
    List<GenerationRequest> requests = requests(true, limits);
    int longest = engine.tokenizer().encode(requests.get(0).prompt()).length;
    java.util.concurrent.atomic.AtomicLong free = new java.util.concurrent.atomic.AtomicLong(1L << 31);
    try (Generator g = engine.newGenerator().withDeviceBudget(free::get)) {
      assertReferenceTokens(stream(g, requests, 0), limits);
      free.set(0);
      assertThat(g.autoBatchSize(longest, 6)).as("rows as long as the stream's batch").isEqualTo(cases.size());
      assertReferenceTokens(stream(g, requests, 0), limits);
      assertThat(g.stats().batchWidths()).as("both streams' batches").containsExactly(cases.size());
    }
  }

  /** An ended stream of a few requests runs in a batch of that few, not the width auto would fit. */
  @Test
  void anEndedStreamMakesNoBatchWiderThanItsRequests() {
    int[] limits = uniform(12);
    try (Generator g = engine.newGenerator()) {
      assertThat(g.autoBatchSize(32, 12)).as("auto alone would be wide").isGreaterThan(cases.size());
      assertReferenceTokens(stream(g, requests(true, limits), 0), limits);
      assertThat(g.stats().batchWidths()).containsExactly(cases.size());
    }
  }

  @Test
  void aLongerRequestThanTheBatchHoldsStartsANewBatchWithTheSameTokens() {
    try (Generator g = engine.newGenerator()) {
      assertReferenceTokens(stream(g, requests(false), 3));
      assertThat(g.stats().kvCacheAllocations()).as("shortest first: longer requests need new caches")
          .isGreaterThan(1);
    }
  }

  @Test
  void requestsArrivingWhileTheBatchRunsJoinItAndBadOnesComeBackAsErrors() throws Exception {
    RequestQueue<String> queue = new RequestQueue<>();
    Map<String, Completion> out = new ConcurrentHashMap<>();
    ExecutorService producer = Executors.newSingleThreadExecutor();
    try (Generator g = engine.newGenerator()) {
      Future<?> adding = producer.submit(() -> {
        for (GenerationRequest r : requests(true)) {
          queue.add(r, r.id());
          Thread.sleep(30); // the batch is decoding when the next request comes
        }
        queue.add(GenerationRequest.greedy("empty", "", 4), "empty");
        queue.add(GenerationRequest.greedy("long", "x = 1\n".repeat(2000), 4), "long");
        queue.end();
        return null;
      });
      long waited = g.generate(queue, 4, (tag, c) -> assertThat(out.put(tag, c.get())).isNull());
      adding.get();
      assertThat(waited).as("the generator waited for requests it had not yet been given").isPositive();
    } finally {
      producer.shutdownNow();
    }
    assertThat(out.remove("empty").errorCode()).isEqualTo(ErrorCode.EMPTY_PROMPT);
    assertThat(out.remove("long").errorCode()).isEqualTo(ErrorCode.PROMPT_TOO_LONG);
    assertReferenceTokens(out);
  }

  @Test
  void twoGeneratorsTakingFromOneStreamAnswerEachRequestOnce() throws Exception {
    RequestQueue<String> queue = new RequestQueue<>();
    requests(true).forEach(r -> queue.add(r, r.id()));
    queue.end();
    Map<String, Completion> out = new ConcurrentHashMap<>();
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try (Generator a = engine.newGenerator(); Generator b = engine.newGenerator()) {
      List<Future<Long>> runs = new ArrayList<>();
      for (Generator g : List.of(a, b)) {
        runs.add(threads.submit(() -> g.generate(queue, 2,
            (tag, c) -> assertThat(out.put(tag, c.get())).as("answered once: %s", tag).isNull())));
      }
      for (Future<Long> run : runs) {
        run.get();
      }
      assertThat(a.stats().requests() + b.stats().requests()).isEqualTo(cases.size());
    } finally {
      threads.shutdownNow();
    }
    assertReferenceTokens(out);
  }

  @Test
  void aStreamGivesTheSameTokensAsTheListPathWithSampling() {
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(new GenerationRequest(Integer.toString(i), cases.get(i).prompt(), 8,
          new SamplingParams(0.9, 20, 0.95, 100 + i), List.of(), true));
    }
    List<Completion> listed = engine.generate(requests, 3);
    try (Generator g = engine.newGenerator()) {
      Map<String, Completion> streamed = stream(g, requests, 3);
      for (Completion c : listed) {
        assertThat(streamed.get(c.id()).outputTokenIds()).as(c.id()).containsExactly(c.outputTokenIds());
      }
    }
  }
}
