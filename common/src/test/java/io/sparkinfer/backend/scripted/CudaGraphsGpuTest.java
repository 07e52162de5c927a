package io.sparkinfer.backend.scripted;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.fused.FusedOptions;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * CUDA graph decode steps on a GPU: the tokens they give equal transformers' references and the plain
 * scripted calls', across key-length buckets, continuous-batching refills and threads on their own
 * streams. Needs a CUDA GPU, so it is skipped in CI; it runs on the GPU machine (see
 * {@code submit/gpu-tests.sh}).
 */
@Tag("gpu")
class CudaGraphsGpuTest {

  @BeforeAll
  static void needsGpu() {
    assumeTrue(Engine.getEngine("PyTorch").getGpuCount() > 0, "no CUDA GPU: CUDA graphs are checked on the GPU machine");
  }

  static Stream<Arguments> fixtures() {
    return Stream.of(Arguments.of("qwen2-tiny", Fixtures.model("qwen2-tiny")),
        Arguments.of("llama3-tiny", Fixtures.bundled("llama3-tiny")),
        Arguments.of("mistral-tiny (sliding window)", Fixtures.bundled("mistral-tiny")),
        Arguments.of("llama-bias-tiny", Fixtures.bundled("llama-bias-tiny")));
  }

  /** fp32 greedy ids from replayed graphs equal transformers' greedy ids and the plain calls' ids. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("fixtures")
  void replayedGraphsGiveTheReferenceGreedyIds(String name, Path dir) {
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(new GenerationRequest("p" + i, cases.get(i).prompt(), cases.get(i).greedyIds().length,
          SamplingParams.GREEDY, List.of(), true)); // references run past eos
    }
    EngineOptions graphs = EngineOptions.of(dir, Precision.FP32, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine g = LlmEngine.load(graphs); LlmEngine plain = LlmEngine.load(graphs.with(ScriptedOptions.CUDA_GRAPHS, false))) {
      assertThat(g.usesCudaGraphs()).as(g.describe()).isTrue();
      assertThat(plain.usesCudaGraphs()).isFalse();
      List<Completion> replayed = g.generate(requests, 3); // width 3: rows refill as sequences finish
      List<Completion> called = plain.generate(requests, 3);
      for (int i = 0; i < cases.size(); i++) {
        assertThat(replayed.get(i).outputTokenIds()).as(cases.get(i).prompt())
            .containsExactly(cases.get(i).greedyIds())
            .containsExactly(called.get(i).outputTokenIds());
      }
      assertThat(backend(g).acceleration().graphReplays()).as("decode steps replayed").isPositive();
    }
  }

  /** Long completions cross several 128-slot buckets: each gets its graph, and tokens match plain calls. */
  @Test
  void graphsFollowTheKeyLengthAcrossBuckets() {
    Path dir = Fixtures.demoModel();
    List<GenerationRequest> requests = demoRequests(6, 300);
    EngineOptions graphs = EngineOptions.of(dir, Precision.FP32, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine g = LlmEngine.load(graphs); LlmEngine plain = LlmEngine.load(graphs.with(ScriptedOptions.CUDA_GRAPHS, false))) {
      List<Completion> replayed = g.generate(requests, 4);
      List<Completion> called = plain.generate(requests, 4);
      assertSameTokens(replayed, called);
      replayed.forEach(c -> assertThat(c.outputTokenIds()).hasSize(300));
      assertThat(backend(g).acceleration().graphCaptures()).as("one graph per bucket the keys crossed").isGreaterThanOrEqualTo(3);
      assertThat(backend(g).acceleration().graphCaptureSeconds()).as("the captures' time, warm-up runs included")
          .isPositive();
      assertThat(backend(plain).acceleration().graphCaptureSeconds()).as("no graphs, no capture").isZero();
    }
  }

  /**
   * fp16 decode steps read each row's written slots (flash attention): one graph serves the whole cache.
   * Graphs of the scripted step give the plain calls' tokens exactly. Graphs of fused steps round
   * differently (their own kernels, summing in their own order), so over 300 greedy tokens they may part
   * from the plain calls, but only at a near-tie of the plain engine's logits ({@link FusedDecodeGpuTest}
   * checks their logits step by step).
   */
  @Test
  void flashDecodeNeedsOneGraphPerCache() {
    Path dir = Fixtures.demoModel();
    List<GenerationRequest> requests = demoRequests(4, 300);
    EngineOptions graphs = EngineOptions.of(dir, Precision.FP16, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine plain = LlmEngine.load(graphs.with(ScriptedOptions.CUDA_GRAPHS, false))) {
      List<Completion> called = plain.generate(requests, 4);
      try (LlmEngine g = withFused(false, graphs)) {
        assertThat(backend(g).decodeReadsWrittenSlotsOnly()).isTrue();
        assertSameTokens(g.generate(requests, 4), called); // one batch, one cache
        assertThat(backend(g).acceleration().graphCaptures()).as("keys crossed 3 buckets, one graph").isEqualTo(1);
      }
      try (LlmEngine g = withFused(true, graphs)) {
        List<Completion> fused = g.generate(requests, 4);
        for (int i = 0; i < called.size(); i++) {
          assertThat(fused.get(i).outputTokenIds()).hasSize(300);
          assertSameUpToNearTie(plain, requests.get(i), called.get(i).outputTokenIds(), fused.get(i).outputTokenIds());
        }
        assertThat(backend(g).acceleration().graphCaptures()).as("keys crossed 3 buckets, one graph").isEqualTo(1);
        assertThat(backend(g).acceleration().fusedCaptures()).isEqualTo(1);
      }
    }
  }

  /** An engine loaded with fused decode steps {@code on} or off ({@code --fused-kernels}). */
  static LlmEngine withFused(boolean on, EngineOptions options) {
    return LlmEngine.load(options.with(FusedOptions.FUSED_KERNELS, on));
  }

  /**
   * bf16 on the GPU (weights, caches and casts through ScriptedTensors, decode through flash attention and a
   * replayed graph): the first token follows transformers' reference (computed in fp32 from the same bf16
   * weights) and replayed graphs of the scripted step give the plain calls' tokens. (bf16 fused steps,
   * rounding on their own, are checked by {@link FusedDecodeGpuTest}.)
   */
  @Test
  void bf16DecodeOnTheGpu() {
    Path dir = Fixtures.demoModel();
    List<Fixtures.Case> cases = Fixtures.reference(dir);
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(new GenerationRequest("b" + i, cases.get(i).prompt(), 32, SamplingParams.GREEDY, List.of(), true));
    }
    EngineOptions graphs = EngineOptions.of(dir, Precision.BF16, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED);
    try (LlmEngine g = withFused(false, graphs);
        LlmEngine plain = LlmEngine.load(graphs.with(ScriptedOptions.CUDA_GRAPHS, false))) {
      assertThat(g.usesCudaGraphs()).isTrue();
      List<Completion> replayed = g.generate(requests, 3);
      List<Completion> called = plain.generate(requests, 3);
      for (int i = 0; i < cases.size(); i++) {
        assertThat(replayed.get(i).outputTokenIds()[0]).as(cases.get(i).prompt()).isEqualTo(cases.get(i).greedyIds()[0]);
        assertThat(replayed.get(i).outputTokenIds()).as(cases.get(i).prompt()).containsExactly(called.get(i).outputTokenIds());
      }
    }
  }

  /** Decode threads, each on a stream of its own with graphs of its own, give the single thread's tokens. */
  @Test
  void threadsOnTheirOwnStreamsGiveTheSameTokens() throws Exception {
    Path dir = Fixtures.demoModel();
    List<GenerationRequest> requests = demoRequests(8, 64);
    try (LlmEngine engine = LlmEngine.load(EngineOptions.of(dir, Precision.FP16, "gpu").with(EngineOptions.BACKEND, BackendKind.SCRIPTED))) {
      List<Completion> alone = engine.generate(requests, 4);
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        List<Future<List<Completion>>> futures = new ArrayList<>();
        for (int t = 0; t < 2; t++) {
          Generator generator = engine.newGenerator();
          futures.add(pool.submit(() -> generator.generate(requests, 4)));
        }
        for (Future<List<Completion>> f : futures) {
          List<Completion> together = f.get();
          assertSameTokens(together, alone);
        }
      } finally {
        pool.shutdown();
      }
    }
  }

  private static List<GenerationRequest> demoRequests(int n, int maxNew) {
    String[] prompts = {"def fibonacci(n):", "class Stack:", "import os\n", "def add(a, b):\n    return",
        "for i in range(10):", "# sort a list\n", "def main():\n", "x = [1, 2, 3]\n"};
    List<GenerationRequest> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(new GenerationRequest("d" + i, prompts[i % prompts.length], maxNew, SamplingParams.GREEDY, List.of(), true));
    }
    return out;
  }

  private static void assertSameTokens(List<Completion> actual, List<Completion> expected) {
    assertThat(actual).hasSameSizeAs(expected);
    for (int i = 0; i < expected.size(); i++) {
      assertThat(actual.get(i).outputTokenIds()).as("prompt %d", i).containsExactly(expected.get(i).outputTokenIds());
    }
  }

  /**
   * Largest gap between two tokens' fp16 logits that counts as a tie: twice what a fused step's logits may
   * differ from the scripted step's in one step ({@link FusedDecodeGpuTest}).
   */
  private static final float NEAR_TIE = 0.1f;

  /**
   * {@code actual} greedy tokens follow {@code expected} (the plain engine's) until they part, and where they
   * part the plain engine's logits after the common prefix, teacher-forced, nearly tie between the two tokens.
   */
  private static void assertSameUpToNearTie(LlmEngine plain, GenerationRequest r, long[] expected, long[] actual) {
    int s = 0;
    while (s < Math.min(expected.length, actual.length) && expected[s] == actual[s]) {
      s++;
    }
    if (s == expected.length && s == actual.length) {
      return;
    }
    assertThat(s).as("%s parts from the plain calls at token %d: not at the first token", r.id(), s).isPositive();
    long[] prompt = plain.tokenizer().encode(r.prompt());
    long[] ids = Arrays.copyOf(prompt, prompt.length + s); // the prompt and the common tokens
    System.arraycopy(expected, 0, ids, prompt.length, s);
    int t = ids.length;
    long[] positions = new long[t];
    for (int j = 0; j < t; j++) {
      positions[j] = j;
    }
    try (NDManager m = NDManager.newBaseManager(Engine.getEngine("PyTorch").defaultDevice());
        KvCache cache = KvCache.allocate(m, plain.config(), 1, t,
            Precision.FP16.dataType())) {
      float[] logits = backend(plain).forward(m, new ForwardBatch(
          m.create(ids, new Shape(1, t)), m.create(positions, new Shape(1, t)),
          m.create(new long[] {t - 1}), t), cache).toFloatArray(); // (1, V)
      float gap = logits[(int) expected[s]] - logits[(int) actual[s]];
      System.out.printf("%s: parts from the plain calls at token %d (%d, not %d), plain logits %.4f vs %.4f%n", r.id(),
          s, actual[s], expected[s], logits[(int) actual[s]], logits[(int) expected[s]]);
      assertThat(gap).as("%s parts at token %d (%d, not %d): the plain logits must nearly tie", r.id(), s, actual[s],
          expected[s]).isLessThanOrEqualTo(NEAR_TIE);
    }
  }

  private static ScriptedCausalLm backend(LlmEngine engine) {
    return (ScriptedCausalLm) engine.newGenerator().backend();
  }
}
