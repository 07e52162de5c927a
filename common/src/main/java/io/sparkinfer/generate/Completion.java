package io.sparkinfer.generate;

import java.io.Serializable;

/**
 * The answer to one {@link GenerationRequest}.
 *
 * @param id the request's id
 * @param text the generated text (special tokens skipped, cut before a stop string); null on error
 * @param outputTokenIds the generated token ids, an eos token included when one ended the sequence
 * @param promptTokens tokens in the prompt (0 when it could not be tokenized)
 * @param completionTokens {@code outputTokenIds.length}
 * @param finishReason stop, length or error
 * @param errorCode one of {@link ErrorCode}, null unless the finish reason is error
 * @param errorMessage a sentence for a person, null unless the finish reason is error
 * @param latencyMs from the start of this request's prefill to its last token
 * @param timeToFirstTokenMs from the start of its prefill to its first token
 */
public record Completion(
    String id,
    String text,
    long[] outputTokenIds,
    int promptTokens,
    int completionTokens,
    FinishReason finishReason,
    String errorCode,
    String errorMessage,
    double latencyMs,
    double timeToFirstTokenMs) implements Serializable {

  public Completion {
    outputTokenIds = outputTokenIds == null ? new long[0] : outputTokenIds.clone();
  }

  /** An error completion: nothing generated, the reason recorded. */
  public static Completion error(String id, int promptTokens, String code, String message) {
    return new Completion(id, null, new long[0], promptTokens, 0, FinishReason.ERROR, code, message, 0, 0);
  }

  public boolean isError() {
    return finishReason == FinishReason.ERROR;
  }

  @Override
  public long[] outputTokenIds() {
    return outputTokenIds.clone();
  }
}
