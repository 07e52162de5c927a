package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.xxhash64;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;

/**
 * How requests reach the inference tasks ({@link Completions#arrange}): ranges of prompt length per partition, and
 * inside each the longest prompt first, so that a task's first request sizes the KV cache of the one batch its
 * generator runs all the task's requests in ({@link PartitionInference}).
 */
class CompletionsArrangeTest {

  @Test
  void partitionsAreLengthRangesLongestPromptFirst() {
    SparkSession spark = TestSupport.spark();
    Dataset<Row> requests = spark.range(200).select(
        concat(lit("p"), col("id").cast("string")).as(Tables.PROMPT),
        col("id").multiply(7919).mod(97).plus(1).cast("int").as(Tables.PROMPT_TOKENS),
        array(col("id").cast("string")).as(Tables.IDS))
        .withColumn(Tables.TIEBREAK, xxhash64(col(Tables.PROMPT)));
    List<List<Row>> partitions = Completions.arrange(requests, 3).javaRDD().glom().collect();
    assertThat(partitions).hasSize(3);
    List<Integer> seen = new ArrayList<>();
    int previousLongest = 0;
    for (List<Row> partition : partitions) {
      assertThat(partition).isNotEmpty();
      List<Integer> lengths = partition.stream().map(r -> r.getInt(1)).toList();
      assertThat(lengths).as("longest first inside a partition").isSortedAccordingTo((a, b) -> Integer.compare(b, a));
      assertThat(lengths.get(lengths.size() - 1)).as("partitions are ascending ranges")
          .isGreaterThanOrEqualTo(previousLongest);
      previousLongest = lengths.get(0);
      seen.addAll(lengths);
    }
    assertThat(seen).hasSize(200);
  }
}
