package io.sparkinfer.generate;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.PriorityBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One request stream that several feeders fill at once (the Spark job's inference tasks on one executor's
 * devices), so the generators taking from it keep one batch full across the feeders instead of a batch each.
 * Requests come out longest first (prompt plus token limit; in arrival order among equals): a batch's KV cache,
 * sized for its first request, then holds the later ones.
 *
 * <p>Each feeder {@link #open opens} a {@link Feed}, adds to it (flushing now and then) and closes it when its input
 * ends. While a feed is
 * open more may come ({@link #knownRemaining} is -1); with none open, what waits is taken for what is left (a batch
 * narrowed to it makes way for a wider one when a later feeder brings more: see {@link Generator}). The stream ends
 * ({@link #end}) when no feeder will come any more: takers then get null once it is empty.
 *
 * @param <T> the requests' tags
 */
public final class SharedRequestStream<T> implements RequestStream<T> {

  /** How long a waiting taker sleeps before it looks again whether the stream ended. */
  static final long POLL_MILLIS = 20;

  private record Entry<T>(Item<T> item, int length, long order) {}

  private final PriorityBlockingQueue<Entry<T>> queue = new PriorityBlockingQueue<>(64,
      (a, b) -> a.length != b.length ? Integer.compare(b.length, a.length) : Long.compare(a.order, b.order));
  private final AtomicLong arrivals = new AtomicLong();
  private int openFeeds; // guarded by this
  private int silentFeeds; // open feeds that have brought nothing yet; guarded by this
  private volatile boolean ended;
  private final AtomicInteger longestExpected = new AtomicInteger(-1);

  /**
   * A feeder's handle. Its requests reach the stream together, at {@link #flush} or {@link #close}: a generator that
   * starts a batch on one of them sees the rest, and whether more may come, at the same time.
   */
  public final class Feed implements AutoCloseable {
    private final List<Entry<T>> pending = new ArrayList<>();
    private boolean closed;
    private boolean heardFrom; // flushed something, or closed; guarded by the stream

    private Feed() {}

    /** Adds a request, tokenized ({@link GenerationRequest#promptTokenIds}, for the ordering), at the next flush. */
    public void add(GenerationRequest request, T tag) {
      if (closed) {
        throw new IllegalStateException("this feed is closed");
      }
      long[] ids = request.promptTokenIds();
      int length = (ids == null ? 0 : ids.length) + request.maxNewTokens();
      pending.add(new Entry<>(new Item<>(request, tag), length, arrivals.getAndIncrement()));
    }

    /** Puts the requests added since the last flush into the stream. */
    public void flush() {
      synchronized (SharedRequestStream.this) {
        queue.addAll(pending);
        if (!pending.isEmpty()) {
          heard();
        }
      }
      pending.clear();
    }

    private void heard() {
      if (!heardFrom) {
        heardFrom = true;
        silentFeeds--;
      }
    }

    /** Flushes, and no more requests come from this feeder (safe to call twice). */
    @Override
    public void close() {
      synchronized (SharedRequestStream.this) {
        if (!closed) {
          closed = true;
          queue.addAll(pending);
          openFeeds--;
          heard();
        }
      }
      pending.clear();
    }
  }

  /** A new feeder's handle. */
  public synchronized Feed open() {
    if (ended) {
      throw new IllegalStateException("the request stream has ended");
    }
    openFeeds++;
    silentFeeds++;
    return new Feed();
  }

  /**
   * Tells the stream that a request of {@code length} prompt tokens plus token limit will come (the longest of those
   * known so far is kept): {@link #longestExpected}.
   */
  public void expectLongest(int length) {
    longestExpected.accumulateAndGet(length, Math::max);
  }

  @Override
  public int longestExpected() {
    return longestExpected.get();
  }

  /** No more feeders: takers return null once the stream is empty. */
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
  public synchronized int knownRemaining() {
    return openFeeds == 0 ? queue.size() : -1;
  }

  @Override
  public int available() {
    return queue.size();
  }

  /** Whether a feed is open that has flushed no request yet. */
  @Override
  public synchronized boolean awaitsFeeders() {
    return silentFeeds > 0;
  }

  @Override
  public int longestAvailable() {
    Entry<T> head = queue.peek(); // the longest, by the queue's order
    return head == null ? -1 : head.length();
  }

  @Override
  public Item<T> next(boolean wait) throws InterruptedException {
    Entry<T> e = queue.poll();
    while (e == null && wait && !(ended && queue.isEmpty())) {
      e = queue.poll(POLL_MILLIS, TimeUnit.MILLISECONDS);
    }
    return e == null ? null : e.item();
  }
}
