package io.sparkinfer.generate;

/**
 * Requests that arrive while a generator runs ({@link Generator#generate(RequestStream, int, CompletionSink)}): the
 * generator takes the next one whenever a row of its batch is free, so the batch never drains between groups of
 * requests. Each request travels with a tag of the caller's, handed back with its completion. Several generators
 * may take from one stream at once.
 *
 * @param <T> what the caller tags each request with
 */
public interface RequestStream<T> {

  /** A request and the caller's tag for it. */
  record Item<T>(GenerationRequest request, T tag) {}

  /**
   * The next request: with {@code wait} false, one ready now or null; with {@code wait} true, blocks until one is
   * ready and returns null only once the stream has ended and every request is taken.
   */
  Item<T> next(boolean wait) throws InterruptedException;

  /**
   * How many requests the stream will still give, once it knows (it has ended: no more will be added); -1 while
   * more may come. A generator makes no batch wider than this.
   */
  default int knownRemaining() {
    return -1;
  }

  /**
   * Requests ready to be taken now, where the stream can tell cheaply; -1 otherwise. While more may come, a generator
   * starting a batch with fewer than a batch's width ready waits a moment for more ({@link Generator#SETTLE_MILLIS})
   * and makes the batch only as wide as they are; it makes way for a wider one if more come while it runs.
   */
  default int available() {
    return -1;
  }

  /**
   * The prompt tokens plus token limit of the longest request ready now, where the stream can tell cheaply; -1
   * otherwise. A generator starting a batch sizes its KV cache for it.
   */
  default int longestAvailable() {
    return -1;
  }

  /**
   * The prompt tokens plus token limit of the longest request the stream will ever give, where its feeders know it
   * before they bring it (the Spark job's planning counts every prompt's tokens); -1 otherwise. A generator starting
   * an auto-sized batch sizes its KV cache for it when that narrows the batch little, so that a longer request coming
   * later does not end the batch.
   */
  default int longestExpected() {
    return -1;
  }

  /**
   * Whether a feeder has opened that has brought no request yet, so more are sure to come; false where the stream
   * cannot tell. A generator starting a batch waits for them (up to {@link Generator#SETTLE_MILLIS}) before it
   * narrows the batch to the requests ready.
   */
  default boolean awaitsFeeders() {
    return false;
  }
}
