package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.EnginePool;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.engine.ReplicaPlan;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The generators that an executor's concurrent inference tasks share: tasks that join while others run feed the same
 * generators (one set, one model's batches), each task gets back exactly its own completions with the tokens the
 * engine gives alone, and the last task to leave stops the generators and gets their run.
 */
class SharedGeneratorsTest {

  static LlmEngine engine;
  static EngineOptions options;

  @BeforeAll
  static void load() {
    options = EngineOptions.of(TestSupport.tinyModel(), Precision.FP32, "cpu");
    engine = LlmEngine.load(options);
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  static GenerationRequest request(String id, String prompt) {
    return new GenerationRequest(id, prompt, 6, SamplingParams.GREEDY, List.of(), false,
        engine.tokenizer().encode(prompt));
  }

  @Test
  void tasksRunningAtOnceShareOneSetOfGeneratorsAndGetTheirOwnCompletions() throws InterruptedException {
    AtomicInteger pools = new AtomicInteger();
    Object key = List.of("run-1", "cpu");
    java.util.function.Supplier<EnginePool> pool = () -> {
      pools.incrementAndGet();
      return EnginePool.over(ReplicaPlan.of(options), List.of(engine), options.values(), "test-generate");
    };
    String[] prompts = {"def add(a, b):", "class Queue:", "import math", "for i in range(10):", "x = [1, 2, 3]"};
    SharedGenerators.Lease a = SharedGenerators.join(key, pool, 0);
    SharedGenerators.Lease b = SharedGenerators.join(key, pool, 0);
    assertThat(pools).as("the second task joins the first one's generators").hasValue(1);
    assertThat(SharedGenerators.runningCount()).isEqualTo(1);
    for (int i = 0; i < prompts.length; i++) {
      (i % 2 == 0 ? a : b).add(request("p" + i, prompts[i]), "tag" + i);
    }
    a.inputEnded();
    b.inputEnded();
    Map<Object, Completion> fromA = collect(a, 3);
    Map<Object, Completion> fromB = collect(b, 2);
    assertThat(fromA).containsOnlyKeys("tag0", "tag2", "tag4");
    assertThat(fromB).containsOnlyKeys("tag1", "tag3");
    List<GenerationRequest> alone = new ArrayList<>();
    for (int i = 0; i < prompts.length; i++) {
      alone.add(request("p" + i, prompts[i]));
    }
    List<Completion> expected = engine.generate(alone, 1);
    Map<Object, Completion> all = new HashMap<>(fromA);
    all.putAll(fromB);
    for (int i = 0; i < prompts.length; i++) {
      assertThat(all.get("tag" + i).outputTokenIds()).as(prompts[i])
          .containsExactly(expected.get(i).outputTokenIds());
    }
    a.close();
    assertThat(a.run()).as("not the last to leave").isNull();
    assertThat(SharedGenerators.runningCount()).as("b still holds them").isEqualTo(1);
    b.close();
    SharedGenerators.Run run = b.run();
    assertThat(run).isNotNull();
    assertThat(run.generators()).isEqualTo(1);
    assertThat(run.generateNanos()).isPositive();
    assertThat(run.batchSizes()).isNotEmpty().allSatisfy(w -> assertThat(w).isBetween(1, prompts.length));
    assertThat(SharedGenerators.runningCount()).isZero();

    SharedGenerators.Lease c = SharedGenerators.join(key, pool, 0);
    assertThat(pools).as("a task after the last one left gets new generators").hasValue(2);
    c.inputEnded();
    c.close();
    assertThat(c.run()).as("nothing asked, still reported").isNotNull();
  }

  /**
   * Stopping every set of generators while a task is still attached (a failed local run's aborted task) returns only
   * once the generators have ended, so that the engines can be closed; the task's lease closes later and gets the run.
   */
  @Test
  void stopAllEndsTheGeneratorsOfTasksStillAttached() {
    Object key = List.of("run-stop-all", "cpu");
    SharedGenerators.Lease a = SharedGenerators.join(key,
        () -> EnginePool.over(ReplicaPlan.of(options), List.of(engine), options.values(), "test-generate"), 0);
    for (int i = 0; i < 8; i++) {
      String prompt = "def f" + i + "(x):";
      a.add(new GenerationRequest("s" + i, prompt, 200, SamplingParams.GREEDY, List.of(), true,
          engine.tokenizer().encode(prompt)), "tag" + i);
    }
    a.flush();
    assertThat(a.generatorsEnded()).as("generating 200 tokens for each of 8 requests").isFalse();

    SharedGenerators.stopAll();

    assertThat(a.generatorsEnded()).as("every generator ended when stopAll returned").isTrue();
    assertThat(SharedGenerators.runningCount()).isZero();
    a.close();
    assertThat(a.run()).as("the lease, closed after, still gets the run").isNotNull();
    assertThat(a.run().generators()).isEqualTo(1);
  }

  /**
   * A task that tells the generators the run's longest request (as planning knows it) gets one batch whose cache
   * holds a longer prompt that comes after the batch started; without that, the longer prompt needs a batch of its
   * own. Both give the engine's tokens.
   */
  @Test
  void theRunsLongestRequestToldByATaskSizesTheFirstBatch() throws InterruptedException {
    String[] shortOnes = {"x = 1", "import os", "y = 2"};
    String longOne = "def fibonacci(n):\n    if n < 2:\n        return n\n"
        + "    return fibonacci(n - 1) + fibonacci(n - 2)";
    int longest = engine.tokenizer().encode(longOne).length + 6;
    List<Completion> expected = engine.generate(List.of(request("l", longOne)), 1);
    for (boolean told : new boolean[] {true, false}) {
      var made = new java.util.concurrent.atomic.AtomicReference<EnginePool>();
      SharedGenerators.Lease lease = SharedGenerators.join(List.of("run-longest-" + told, "cpu"), () -> {
        made.set(EnginePool.over(ReplicaPlan.of(options), List.of(engine), options.values(), "test-generate"));
        return made.get();
      }, 0);
      if (told) {
        lease.expectLongest(longest);
      }
      for (int i = 0; i < shortOnes.length; i++) {
        lease.add(request("s" + i, shortOnes[i]), "s" + i);
      }
      lease.flush();
      long deadline = System.currentTimeMillis() + 30_000;
      while (lease.waiting() > 0 && System.currentTimeMillis() < deadline) { // a batch took the short ones
        Thread.sleep(5);
      }
      lease.add(request("l", longOne), "l");
      lease.inputEnded();
      Map<Object, Completion> out = collect(lease, shortOnes.length + 1);
      assertThat(out.get("l").outputTokenIds()).as("told %s", told).containsExactly(expected.get(0).outputTokenIds());
      lease.close();
      assertThat(made.get().stats().kvCacheAllocations()).as("batches (KV caches), told the longest: %s", told)
          .isEqualTo(told ? 1 : 2);
    }
  }

  private static Map<Object, Completion> collect(SharedGenerators.Lease lease, int n) throws InterruptedException {
    Map<Object, Completion> out = new HashMap<>();
    long deadline = System.currentTimeMillis() + 60_000;
    while (out.size() < n && System.currentTimeMillis() < deadline) {
      List<SharedGenerators.Done> done = new ArrayList<>();
      lease.drainTo(done, 50);
      lease.rethrowFailure("test");
      for (SharedGenerators.Done d : done) {
        assertThat(out.put(d.tag(), d.completion().get())).as("answered once: %s", d.tag()).isNull();
        assertThat(d.device()).isEqualTo("cpu");
      }
    }
    return out;
  }
}
