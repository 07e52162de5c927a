package io.sparkinfer.generate;

import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A {@link RequestStream} that a producer fills ({@link #add}) and then ends ({@link #end}); any number of
 * generators take from it. {@link #size} lets the producer keep only so many requests waiting.
 *
 * @param <T> the requests' tags
 */
public final class RequestQueue<T> implements RequestStream<T> {

  /** How long a waiting taker sleeps before it looks again whether the stream ended. */
  static final long POLL_MILLIS = 20;

  private final LinkedBlockingQueue<Item<T>> queue = new LinkedBlockingQueue<>();
  private volatile boolean ended;

  public void add(GenerationRequest request, T tag) {
    if (ended) {
      throw new IllegalStateException("the request stream has ended");
    }
    queue.add(new Item<>(request, tag));
  }

  /** No more requests will come: takers return null once the queue is empty. */
  public void end() {
    ended = true;
  }

  public boolean ended() {
    return ended;
  }

  /** Requests waiting to be taken. */
  public int size() {
    return queue.size();
  }

  @Override
  public int knownRemaining() {
    return ended ? queue.size() : -1;
  }

  @Override
  public Item<T> next(boolean wait) throws InterruptedException {
    Item<T> item = queue.poll();
    while (item == null && wait && !(ended && queue.isEmpty())) {
      item = queue.poll(POLL_MILLIS, TimeUnit.MILLISECONDS);
    }
    return item;
  }
}
