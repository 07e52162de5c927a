package io.sparkinfer.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A request stream one producer fills in order while generators take from it. */
class RequestQueueTest {

  static final GenerationRequest A = GenerationRequest.greedy("a", "x", 1);
  static final GenerationRequest B = GenerationRequest.greedy("b", "y", 1);

  @Test
  void takersGetRequestsInOrderWithTheirTags() throws InterruptedException {
    RequestQueue<Integer> q = new RequestQueue<>();
    q.add(A, 1);
    q.add(B, 2);
    assertThat(q.size()).isEqualTo(2);
    assertThat(q.next(false)).isEqualTo(new RequestStream.Item<>(A, 1));
    assertThat(q.next(true)).isEqualTo(new RequestStream.Item<>(B, 2));
    assertThat(q.next(false)).as("none ready, not ended").isNull();
  }

  @Test
  void whatIsLeftIsKnownOnceTheStreamEnds() throws InterruptedException {
    RequestQueue<Integer> q = new RequestQueue<>();
    q.add(A, 1);
    q.add(B, 2);
    assertThat(q.knownRemaining()).as("more may come").isEqualTo(-1);
    q.end();
    assertThat(q.knownRemaining()).isEqualTo(2);
    q.next(false);
    assertThat(q.knownRemaining()).isEqualTo(1);
  }

  @Test
  void aWaitingTakerGetsALaterRequestAndNullOnceTheStreamEnds() throws Exception {
    RequestQueue<String> q = new RequestQueue<>();
    CompletableFuture<RequestStream.Item<String>> first = CompletableFuture.supplyAsync(() -> take(q));
    Thread.sleep(3 * RequestQueue.POLL_MILLIS);
    assertThat(first).as("waits while the stream is open and empty").isNotDone();
    q.add(A, "a");
    assertThat(first.get(5, TimeUnit.SECONDS).tag()).isEqualTo("a");

    CompletableFuture<RequestStream.Item<String>> last = CompletableFuture.supplyAsync(() -> take(q));
    q.add(B, "b");
    q.end();
    assertThat(last.get(5, TimeUnit.SECONDS).tag()).as("requests added before the end are still taken").isEqualTo("b");
    assertThat(q.next(true)).as("ended and empty: no wait").isNull();
    assertThatThrownBy(() -> q.add(A, "late")).isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("ended");
  }

  private static RequestStream.Item<String> take(RequestQueue<String> q) {
    try {
      return q.next(true);
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }
}
