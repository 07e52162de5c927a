package io.sparkinfer.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The request stream that several feeders (an executor's inference tasks) fill for one set of generators. */
class SharedRequestStreamTest {

  static GenerationRequest tokens(String id, int promptTokens, int maxNew) {
    return new GenerationRequest(id, null, maxNew, SamplingParams.GREEDY, List.of(), false, new long[promptTokens]);
  }

  @Test
  void requestsOfEveryFeedComeLongestFirstAndInArrivalOrderAmongEquals() throws InterruptedException {
    SharedRequestStream<String> s = new SharedRequestStream<>();
    SharedRequestStream<String>.Feed a = s.open();
    SharedRequestStream<String>.Feed b = s.open();
    a.add(tokens("a-short", 4, 8), "a1");
    b.add(tokens("b-long", 30, 8), "b1");
    a.add(tokens("a-equal", 10, 8), "a2");
    b.add(tokens("b-equal", 12, 6), "b2"); // 18 in all, as a-equal
    a.add(tokens("a-long", 20, 16), "a3");
    assertThat(s.size()).as("nothing before a flush").isZero();
    a.flush();
    b.flush();
    List<String> order = new ArrayList<>();
    for (RequestStream.Item<String> i = s.next(false); i != null; i = s.next(false)) {
      order.add(i.tag());
    }
    assertThat(order).containsExactly("b1", "a3", "a2", "b2", "a1");
  }

  @Test
  void theLongestExpectedRequestIsTheLongestAnyFeederAnnounced() {
    SharedRequestStream<String> s = new SharedRequestStream<>();
    assertThat(s.longestExpected()).as("nothing announced").isEqualTo(-1);
    s.expectLongest(300);
    s.expectLongest(120); // a feeder whose requests are shorter
    assertThat(s.longestExpected()).isEqualTo(300);
    s.expectLongest(640);
    assertThat(s.longestExpected()).isEqualTo(640);
  }

  @Test
  void whatIsLeftIsKnownOnlyWhileNoFeedIsOpen() throws InterruptedException {
    SharedRequestStream<String> s = new SharedRequestStream<>();
    assertThat(s.knownRemaining()).as("nothing open, nothing waiting").isZero();
    SharedRequestStream<String>.Feed a = s.open();
    a.add(tokens("x", 3, 1), "x");
    a.add(tokens("y", 3, 1), "y");
    SharedRequestStream<String>.Feed b = s.open();
    a.close();
    assertThat(s.size()).as("closing flushes").isEqualTo(2);
    assertThat(s.knownRemaining()).as("b may still add").isEqualTo(-1);
    b.close();
    b.close(); // closing twice counts once
    assertThat(s.knownRemaining()).isEqualTo(2);
    s.next(false);
    assertThat(s.knownRemaining()).isEqualTo(1);
    assertThatThrownBy(() -> a.add(tokens("z", 1, 1), "z")).isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
  }

  @Test
  void aFeedIsAwaitedUntilItFlushesARequestOrCloses() {
    SharedRequestStream<String> s = new SharedRequestStream<>();
    assertThat(s.awaitsFeeders()).as("no feed open").isFalse();
    SharedRequestStream<String>.Feed a = s.open();
    SharedRequestStream<String>.Feed b = s.open();
    assertThat(s.awaitsFeeders()).isTrue();
    a.flush();
    assertThat(s.awaitsFeeders()).as("an empty flush brings nothing").isTrue();
    a.add(tokens("x", 3, 1), "x");
    a.flush();
    assertThat(s.awaitsFeeders()).as("b has brought nothing yet").isTrue();
    b.close();
    assertThat(s.awaitsFeeders()).as("a brought a request, b closed").isFalse();
    a.add(tokens("y", 3, 1), "y");
    a.close();
    assertThat(s.awaitsFeeders()).as("closing a feed heard from counts once").isFalse();
    SharedRequestStream<String>.Feed c = s.open();
    assertThat(s.awaitsFeeders()).isTrue();
    c.close();
    assertThat(s.awaitsFeeders()).isFalse();
  }

  @Test
  void aWaitingTakerGetsALaterRequestAndNullOnceTheStreamEnds() throws Exception {
    SharedRequestStream<String> s = new SharedRequestStream<>();
    CompletableFuture<RequestStream.Item<String>> first = CompletableFuture.supplyAsync(() -> take(s));
    Thread.sleep(3 * SharedRequestStream.POLL_MILLIS);
    assertThat(first).as("waits while the stream is open and empty").isNotDone();
    try (SharedRequestStream<String>.Feed f = s.open()) {
      f.add(tokens("a", 2, 1), "a");
      f.flush();
      assertThat(first.get(5, TimeUnit.SECONDS).tag()).isEqualTo("a");
      f.add(tokens("b", 2, 1), "b");
    }
    s.end();
    assertThat(s.next(true).tag()).as("requests added before the end are still taken").isEqualTo("b");
    assertThat(s.next(true)).as("ended and empty: no wait").isNull();
    assertThatThrownBy(s::open).isInstanceOf(IllegalStateException.class).hasMessageContaining("ended");
  }

  private static RequestStream.Item<String> take(SharedRequestStream<String> s) {
    try {
      return s.next(true);
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }
}
