package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.junit.jupiter.api.Test;
import scala.jdk.javaapi.CollectionConverters;

/** Runs of equal prompts in an arranged partition made one request ({@link RepeatedPrompts}). */
class RepeatedPromptsTest {

  private static Row request(String prompt, int tokens, String... ids) {
    // as Spark holds arrays; a prompt's token ids as many as its length says
    return RowFactory.create(prompt, tokens, CollectionConverters.asScala(List.of(ids)).toList(),
        PromptTokenIds.toColumn(new long[tokens]));
  }

  private static List<Row> merged(Row... rows) {
    List<Row> out = new ArrayList<>();
    RepeatedPrompts.merge(List.of(rows).iterator()).forEachRemaining(out::add);
    return out;
  }

  @Test
  void adjacentEqualPromptsMergeTheirIdsInOrder() {
    List<Row> out = merged(
        request("a", 5, "1"), request("a", 5, "2"), request("a", 5, "3", "4"),
        request("b", 5, "5"),
        request("c", 3, "6"), request("c", 3, "7"));
    assertThat(out).extracting(r -> r.getString(0)).containsExactly("a", "b", "c");
    assertThat(out).extracting(r -> r.getInt(1)).containsExactly(5, 5, 3);
    assertThat(out.get(0).getList(2)).containsExactly("1", "2", "3", "4");
    assertThat(out.get(1).getList(2)).containsExactly("5");
    assertThat(out.get(2).getList(2)).containsExactly("6", "7");
    assertThat(out).as("each request keeps its prompt's token ids")
        .extracting(r -> PromptTokenIds.fromColumn(r, 3).length).containsExactly(5, 5, 3);
  }

  @Test
  void distinctPromptsPassAsTheyAre() {
    Row x = request("x", 2, "1");
    Row y = request("y", 2, "2");
    assertThat(merged(x, y)).containsExactly(x, y);
  }

  @Test
  void equalPromptsApartAreNotMerged() {
    // merging relies on the sort: the same prompt in two runs stays two requests
    assertThat(merged(request("a", 1, "1"), request("b", 1, "2"), request("a", 1, "3"))).hasSize(3);
  }

  @Test
  void anEmptyPartitionHasNoRequests() {
    Iterator<Row> none = RepeatedPrompts.merge(List.<Row>of().iterator());
    assertThat(none.hasNext()).isFalse();
    assertThatThrownBy(none::next).isInstanceOf(NoSuchElementException.class);
  }
}
