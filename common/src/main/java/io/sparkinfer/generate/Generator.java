package io.sparkinfer.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.model.CausalLmBackend;
import io.sparkinfer.model.ForwardBatch;
import io.sparkinfer.model.KvCache;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Set;

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

  private final ModelWeights weights;
  private final CausalLmBackend backend;
  private final TextTokenizer tokenizer;
  private final Set<Long> eosTokenIds;
  private final NDManager root;
  private final GenerationStats stats = new GenerationStats();
  private final int contextLength;
  private volatile int maxPromptTokens;

  public Generator(ModelWeights weights, CausalLmBackend backend, TextTokenizer tokenizer, GenerationConfig generation) {
    this.weights = weights;
    this.backend = backend;
    this.tokenizer = tokenizer;
    this.eosTokenIds = generation.eosTokenIds();
    this.root = NDManager.newBaseManager(weights.device());
    this.contextLength = weights.config().maxPositionEmbeddings();
    this.maxPromptTokens = contextLength - 1;
  }

  /** Caps prompt length below the model's context (which always leaves room for one new token). */
  public void setMaxPromptTokens(int limit) {
    if (limit <= 0) {
      throw new IllegalArgumentException("max prompt tokens must be > 0, got " + limit);
    }
    this.maxPromptTokens = Math.min(limit, contextLength - 1);
  }

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
   * Completes every request, in batches of at most {@code batchSize} prompts of similar length.
   *
   * @return one completion per request, in the requests' order
   */
  public List<Completion> generate(List<GenerationRequest> requests, int batchSize) {
    if (batchSize <= 0) {
      throw new IllegalArgumentException("batch size must be > 0, got " + batchSize);
    }
    Completion[] out = new Completion[requests.size()];
    List<Sequence> valid = new ArrayList<>();
    for (int i = 0; i < requests.size(); i++) {
      GenerationRequest r = requests.get(i);
      Object prepared = prepare(r);
      if (prepared instanceof Completion error) {
        out[i] = error;
      } else {
        valid.add(new Sequence(i, r, (long[]) prepared));
      }
    }
    stats.addRequests(requests.size(), requests.size() - valid.size());
    valid.sort(Comparator.comparingInt(s -> s.promptIds.length));
    for (int start = 0; start < valid.size(); start += batchSize) {
      List<Sequence> batch = valid.subList(start, Math.min(valid.size(), start + batchSize));
      try {
        runBatch(batch);
        for (Sequence s : batch) {
          out[s.index] = s.completion();
        }
      } catch (RuntimeException e) {
        String message = "generation failed for this batch of " + batch.size() + ": " + e;
        for (Sequence s : batch) {
          out[s.index] = Completion.error(s.request.id(), s.promptIds.length, ErrorCode.GENERATION_FAILED, message);
        }
        stats.addRequests(0, batch.size());
      }
    }
    return Arrays.asList(out);
  }

  /** The prompt's token ids, or an error completion explaining why it cannot run. */
  private Object prepare(GenerationRequest r) {
    if (r.prompt() == null || r.prompt().isEmpty()) {
      return Completion.error(r.id(), 0, ErrorCode.EMPTY_PROMPT, "the prompt is empty");
    }
    long[] ids = tokenizer.encode(r.prompt());
    if (ids.length == 0) {
      return Completion.error(r.id(), 0, ErrorCode.EMPTY_PROMPT, "the prompt has no tokens");
    }
    int limit = maxPromptTokens;
    if (ids.length > limit) {
      return Completion.error(r.id(), ids.length, ErrorCode.PROMPT_TOO_LONG, "the prompt has " + ids.length
          + " tokens; the limit is " + limit + " (model context " + contextLength + " tokens, one kept for output)");
    }
    return ids;
  }

  private void runBatch(List<Sequence> batch) {
    int b = batch.size();
    int longest = 0;
    int capacity = 0;
    long promptTokens = 0;
    for (Sequence s : batch) {
      longest = Math.max(longest, s.promptIds.length);
      capacity = Math.max(capacity, s.promptIds.length + s.maxNew);
      promptTokens += s.promptIds.length;
    }
    ModelConfig config = weights.config();
    long start = System.nanoTime();
    long prefillEnd;
    long steps = 0;
    try (NDManager scope = root.newSubManager();
        KvCache cache = KvCache.allocate(scope, config, b, capacity, weights.precision().dataType())) {
      // Prefill: prompts right-padded to the longest, each row at positions 0..len-1.
      long[] ids = new long[b * longest];
      long[] positions = new long[b * longest];
      long[] last = new long[b];
      for (int i = 0; i < b; i++) {
        long[] p = batch.get(i).promptIds;
        System.arraycopy(p, 0, ids, i * longest, p.length);
        for (int j = 0; j < longest; j++) {
          positions[i * longest + j] = j;
        }
        last[i] = p.length - 1;
      }
      step(scope, cache, batch, ids, positions, last, longest, longest, start);
      prefillEnd = System.nanoTime();

      // Decode: one token per row per step; finished rows idle at their last slot.
      long[] one = new long[b];
      long[] pos = new long[b];
      long[] zero = new long[b];
      while (batch.stream().anyMatch(s -> !s.isFinished())) {
        int keyLength = 0;
        for (int i = 0; i < b; i++) {
          Sequence s = batch.get(i);
          one[i] = s.lastToken();
          pos[i] = s.lastPosition();
          keyLength = (int) Math.max(keyLength, pos[i] + 1);
        }
        step(scope, cache, batch, one, pos, zero, 1, keyLength, start);
        steps++;
      }
    }
    long end = System.nanoTime();
    long generated = batch.stream().mapToLong(s -> s.count).sum();
    stats.addBatch(promptTokens, generated, prefillEnd - start, end - prefillEnd, steps);
  }

  /** Runs one forward pass and appends a token to every unfinished row. */
  private void step(NDManager scope, KvCache cache, List<Sequence> batch, long[] ids, long[] positions, long[] last,
      int width, int keyLength, long batchStart) {
    int b = batch.size();
    try (NDManager step = scope.newSubManager()) {
      ForwardBatch fb = new ForwardBatch(
          step.create(ids, new Shape(b, width)), step.create(positions, new Shape(b, width)), step.create(last), keyLength);
      NDArray logits = backend.forward(step, fb, cache); // (B, V) float32
      long[] next = chooseTokens(logits, batch);
      long now = System.nanoTime();
      for (int i = 0; i < b; i++) {
        Sequence s = batch.get(i);
        if (!s.isFinished()) {
          s.accept(next[i], now, batchStart);
        }
      }
    }
  }

  /** Argmax on the device for greedy rows; host-side sampling with each row's own seed for the others. */
  private long[] chooseTokens(NDArray logits, List<Sequence> batch) {
    long[] greedy = logits.argMax(-1).toLongArray();
    boolean anySampling = batch.stream().anyMatch(s -> !s.isFinished() && s.sampler != null);
    if (!anySampling) {
      return greedy;
    }
    int vocab = (int) logits.getShape().get(1);
    float[] all = logits.toFloatArray();
    for (int i = 0; i < batch.size(); i++) {
      Sequence s = batch.get(i);
      if (!s.isFinished() && s.sampler != null) {
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

    Sequence(int index, GenerationRequest request, long[] promptIds) {
      this.index = index;
      this.request = request;
      this.promptIds = promptIds;
      this.maxNew = Math.min(request.maxNewTokens(), contextLength - promptIds.length);
      this.sampler = request.sampling().isGreedy() ? null : new TokenSampler(request.sampling());
      this.generated = new long[Math.min(maxNew, 256)];
    }

    boolean isFinished() {
      return finish != null;
    }

    long lastToken() {
      return count == 0 ? promptIds[promptIds.length - 1] : generated[count - 1];
    }

    /** Position of the last token fed or generated: the slot the next decode step writes. */
    long lastPosition() {
      return promptIds.length + count - 1;
    }

    void accept(long token, long now, long batchStart) {
      if (count == generated.length) {
        generated = Arrays.copyOf(generated, Math.min(maxNew, generated.length * 2));
      }
      generated[count++] = token;
      double elapsedMs = (now - batchStart) / 1e6;
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
