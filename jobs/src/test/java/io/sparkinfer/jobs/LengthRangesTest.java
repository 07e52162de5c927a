package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.spark.sql.catalyst.expressions.XXH64;
import org.junit.jupiter.api.Test;

/**
 * Inference partitions cut from planning's count of the prompts' lengths ({@link LengthRanges}): equal shares of the
 * requests, ascending in length, a length's requests split by their tiebreak where a cut falls inside it.
 */
class LengthRangesTest {

  /** A request: its prompt's tokens and its tiebreak (a hash of the prompt, as {@link Completions#requests} makes). */
  private record Request(int tokens, long tiebreak) {}

  private static List<Request> requests(int n, Random random, int minTokens, int maxTokens) {
    List<Request> requests = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int tokens = minTokens + random.nextInt(maxTokens - minTokens + 1);
      requests.add(new Request(tokens, XXH64.hashLong(i, 42)));
    }
    return requests;
  }

  private static SortedMap<Integer, Long> byLength(List<Request> requests) {
    SortedMap<Integer, Long> counts = new TreeMap<>();
    requests.forEach(r -> counts.merge(r.tokens, 1L, Long::sum));
    return counts;
  }

  /** The requests of each partition. */
  private static List<List<Request>> place(LengthRanges ranges, List<Request> requests) {
    List<List<Request>> partitions = new ArrayList<>();
    for (int p = 0; p < ranges.partitions(); p++) {
      partitions.add(new ArrayList<>());
    }
    for (Request r : requests) {
      partitions.get(ranges.partitionOf(r.tokens, r.tiebreak)).add(r);
    }
    return partitions;
  }

  @Test
  void partitionsHoldEqualSharesInAscendingLengths() {
    // skewed lengths: most requests short, a long tail
    Random random = new Random(7);
    List<Request> requests = requests(9000, random, 128, 160);
    requests.addAll(requests(1000, random, 161, 512));
    LengthRanges ranges = LengthRanges.of(byLength(requests), 16);

    List<List<Request>> partitions = place(ranges, requests);
    assertThat(partitions).hasSize(16);
    int previousLongest = 0;
    for (List<Request> p : partitions) {
      assertThat(p.size()).as("a share of 10,000 requests over 16 partitions: 625").isBetween(560, 690);
      int shortest = p.stream().mapToInt(Request::tokens).min().orElseThrow();
      assertThat(shortest).as("ascending ranges").isGreaterThanOrEqualTo(previousLongest);
      previousLongest = p.stream().mapToInt(Request::tokens).max().orElseThrow();
    }
  }

  @Test
  void oneLengthIsSplitByTiebreak() {
    List<Request> requests = requests(4096, new Random(1), 100, 100);
    List<List<Request>> partitions = place(LengthRanges.of(byLength(requests), 8), requests);
    for (List<Request> p : partitions) {
      assertThat(p.size()).as("4,096 requests of one length over 8 partitions: 512").isBetween(450, 575);
    }
  }

  @Test
  void identicalPromptsShareAPartition() {
    List<Request> requests = requests(1000, new Random(3), 10, 20);
    LengthRanges ranges = LengthRanges.of(byLength(requests), 7);
    for (Request r : requests) {
      assertThat(ranges.partitionOf(r.tokens, r.tiebreak)).isEqualTo(ranges.partitionOf(r.tokens, r.tiebreak))
          .isBetween(0, 6);
    }
  }

  @Test
  void fewerRequestsThanPartitionsAndNone() {
    List<Request> three = List.of(new Request(5, -3), new Request(9, 0), new Request(9, Long.MAX_VALUE));
    List<List<Request>> partitions = place(LengthRanges.of(byLength(three), 5), three);
    assertThat(partitions.stream().mapToInt(List::size).sum()).isEqualTo(3);
    assertThat(partitions.stream().filter(p -> !p.isEmpty()).count()).as("each request a partition of its own")
        .isEqualTo(3);

    LengthRanges none = LengthRanges.of(new TreeMap<>(), 4);
    assertThat(none.partitions()).isEqualTo(4);
    assertThat(none.partitionOf(Integer.MAX_VALUE, Long.MAX_VALUE)).isBetween(0, 3);
    assertThat(LengthRanges.of(byLength(three), 1).partitionOf(9, 0)).isZero();
    assertThatThrownBy(() -> LengthRanges.of(byLength(three), 0)).isInstanceOf(IllegalArgumentException.class);
  }
}
