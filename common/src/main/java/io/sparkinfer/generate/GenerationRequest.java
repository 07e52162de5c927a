package io.sparkinfer.generate;

import io.sparkinfer.tokenizer.TextTokenizer;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * One prompt to complete, with its own limits and sampling settings.
 *
 * @param id the caller's stable identifier, returned with the completion
 * @param prompt the text to complete (null or empty gives an error completion unless token ids are given)
 * @param maxNewTokens the most tokens to generate (fewer if the model's context ends first)
 * @param sampling greedy or sampling settings, with this request's seed
 * @param stopStrings generation stops once the completion contains one of them; the text is cut before it
 * @param ignoreEos keep generating past eos tokens (benchmarks)
 * @param promptTokenIds an already tokenized prompt, used instead of {@code prompt} when not null
 */
public record GenerationRequest(
    String id, String prompt, int maxNewTokens, SamplingParams sampling, List<String> stopStrings, boolean ignoreEos,
    long[] promptTokenIds) implements Serializable {

  public GenerationRequest {
    if (maxNewTokens <= 0) {
      throw new IllegalArgumentException("max new tokens must be > 0, got " + maxNewTokens);
    }
    sampling = sampling == null ? SamplingParams.GREEDY : sampling;
    stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
    if (stopStrings.stream().anyMatch(String::isEmpty)) {
      throw new IllegalArgumentException("stop strings must not be empty");
    }
    promptTokenIds = promptTokenIds == null ? null : promptTokenIds.clone();
  }

  /** A text prompt. */
  public GenerationRequest(
      String id, String prompt, int maxNewTokens, SamplingParams sampling, List<String> stopStrings, boolean ignoreEos) {
    this(id, prompt, maxNewTokens, sampling, stopStrings, ignoreEos, null);
  }

  /** A greedy request for a text prompt. */
  public static GenerationRequest greedy(String id, String prompt, int maxNewTokens) {
    return new GenerationRequest(id, prompt, maxNewTokens, SamplingParams.GREEDY, List.of(), false);
  }

  @Override
  public long[] promptTokenIds() {
    return promptTokenIds == null ? null : promptTokenIds.clone();
  }

  /**
   * {@code requests} with each text prompt tokenized, all in one call ({@link TextTokenizer#encodeAll}: several
   * threads, ids only), the ids {@link TextTokenizer#encode} gives each; requests that carry ids or have no prompt
   * as they are (the generator answers the latter with an error).
   */
  public static List<GenerationRequest> tokenizeAll(List<GenerationRequest> requests, TextTokenizer tokenizer) {
    List<String> texts = new ArrayList<>();
    for (GenerationRequest r : requests) {
      if (r.needsTokens()) {
        texts.add(r.prompt());
      }
    }
    if (texts.isEmpty()) {
      return requests;
    }
    long[][] ids = tokenizer.encodeAll(texts);
    List<GenerationRequest> out = new ArrayList<>(requests.size());
    int next = 0;
    for (GenerationRequest r : requests) {
      out.add(r.needsTokens() ? new GenerationRequest(r.id(), r.prompt(), r.maxNewTokens(), r.sampling(),
          r.stopStrings(), r.ignoreEos(), ids[next++]) : r);
    }
    return out;
  }

  private boolean needsTokens() {
    return promptTokenIds == null && prompt != null && !prompt.isEmpty();
  }
}
