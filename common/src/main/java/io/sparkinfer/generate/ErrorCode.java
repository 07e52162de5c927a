package io.sparkinfer.generate;

/** Machine-readable reasons a request produced an error row instead of a completion. */
public final class ErrorCode {
  /** The prompt is null, empty, or tokenizes to no tokens. */
  public static final String EMPTY_PROMPT = "empty_prompt";
  /** The prompt leaves no room for a new token in the model's context, or exceeds the configured limit. */
  public static final String PROMPT_TOO_LONG = "prompt_too_long";
  /**
   * The request itself is malformed: a JSON line or CSV record that cannot be read, a prompt or id of the wrong
   * type, a row without an id, bad option values.
   */
  public static final String INVALID_REQUEST = "invalid_request";
  /** The input row's bytes are not valid UTF-8. */
  public static final String INVALID_ENCODING = "invalid_encoding";
  /** The model failed while generating for this request's batch. */
  public static final String GENERATION_FAILED = "generation_failed";
  /** The request ran out of device memory alone (a batch of one), or with {@code --oom-retry false}. */
  public static final String OUT_OF_MEMORY = "out_of_memory";

  private ErrorCode() {}
}
