package io.sparkinfer.jobs;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Identical greedy prompts under one request ({@code --dedup}), inside an arranged partition: requests (prompt,
 * prompt_tokens, ids, prompt_token_ids) sorted so that equal prompts are adjacent ({@link Completions#arrange} ranges
 * and sorts on (length, hash of the prompt, prompt)) become one request each, holding all their ids in order (and
 * the first row's token ids: equal prompts have equal ids). A partition is read once, one request ahead. This takes
 * the place of a grouping shuffle before the range partitioning: equal prompts already meet in one partition there.
 */
final class RepeatedPrompts implements MapPartitionsFunction<Row, Row> {

  @Override
  public Iterator<Row> call(Iterator<Row> sorted) {
    return merge(sorted);
  }

  /** The requests of {@code sorted} with each run of equal prompts made one (ids in order). */
  static Iterator<Row> merge(Iterator<Row> sorted) {
    return new Iterator<>() {
      private Row ahead = sorted.hasNext() ? sorted.next() : null;

      @Override
      public boolean hasNext() {
        return ahead != null;
      }

      @Override
      public Row next() {
        if (ahead == null) {
          throw new NoSuchElementException();
        }
        Row first = ahead;
        ahead = null;
        List<String> ids = null; // only when the prompt repeats
        while (sorted.hasNext()) {
          Row r = sorted.next();
          if (!Objects.equals(r.getString(0), first.getString(0))) {
            ahead = r;
            break;
          }
          if (ids == null) {
            ids = new ArrayList<>(first.getList(2));
          }
          ids.addAll(r.getList(2));
        }
        // a Scala Seq, as Spark's rows hold arrays (the next step may read this row as it is, not re-encoded)
        return ids == null ? first
            : RowFactory.create(first.getString(0), first.getInt(1), CollectionConverters.asScala(ids).toList(),
                first.get(3));
      }
    };
  }
}
