package io.sparkinfer.jobs;

import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.udf;
import static org.apache.spark.sql.functions.xxhash64;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.Test;

/**
 * How requests reach the inference tasks ({@link Completions#arrange}): ranges of prompt length per partition, and
 * inside each the longest prompt first, so that a task's first request sizes the KV cache of the one batch its
 * generator runs all the task's requests in ({@link PartitionInference}).
 */
class CompletionsArrangeTest {

  private static Dataset<Row> requests(SparkSession spark) {
    return spark.range(200).select(
        concat(lit("p"), col("id").cast("string")).as(Tables.PROMPT),
        col("id").multiply(7919).mod(97).plus(1).cast("int").as(Tables.PROMPT_TOKENS),
        array(col("id").cast("string")).as(Tables.IDS),
        tokenIds(col("id").cast("int")).as(Tables.PROMPT_TOKEN_IDS))
        .withColumn(Tables.TIEBREAK, xxhash64(col(Tables.PROMPT)));
  }

  /** One token id as planning's column holds it ({@link PromptTokenIds}). */
  private static Column tokenIds(Column id) {
    return udf((UDF1<Integer, byte[]>) i -> PromptTokenIds.toColumn(new long[] {i}), DataTypes.BinaryType).apply(id);
  }

  @Test
  void partitionsAreLengthRangesLongestPromptFirst() {
    assertLengthRangesLongestFirst(Completions.arrange(requests(TestSupport.spark()), 3, false)
        .javaRDD().glom().collect());
  }

  /** With ranges cut from planning's count of the lengths, each request is in the partition its range names. */
  @Test
  void rangesCutFromTheLengthsCountPlaceEachRequest() {
    Dataset<Row> requests = requests(TestSupport.spark());
    SortedMap<Integer, Long> byLength = new TreeMap<>();
    for (Row r : requests.collectAsList()) {
      byLength.merge(r.getInt(1), 1L, Long::sum);
    }
    LengthRanges ranges = LengthRanges.of(byLength, 3);
    java.util.Map<String, Integer> wanted = new java.util.HashMap<>();
    for (Row r : requests.collectAsList()) {
      wanted.put(r.getString(0), ranges.partitionOf(r.getInt(1), r.getLong(4)));
    }

    List<List<Row>> partitions = Completions.arrange(requests, 3, false, ranges).javaRDD().glom().collect();
    assertLengthRangesLongestFirst(partitions);
    for (int p = 0; p < partitions.size(); p++) {
      for (Row r : partitions.get(p)) {
        assertThat(p).as("the partition of " + r.getString(0)).isEqualTo(wanted.get(r.getString(0)));
      }
      assertThat(partitions.get(p).size()).as("a third of 200 requests").isBetween(50, 84);
    }
    assertThatThrownBy(() -> Completions.arrange(requests, 4, false, ranges))
        .isInstanceOf(IllegalArgumentException.class);
  }

  private static void assertLengthRangesLongestFirst(List<List<Row>> partitions) {
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

  @Test
  void identicalPromptsBecomeOneRequestWithEveryIdWhenDeduplicated() {
    SparkSession spark = TestSupport.spark();
    // 300 rows over 7 input partitions: 60 distinct prompts, each asked by 5 ids spread over the partitions, and
    // lengths that repeat across prompts (equal lengths, other prompts)
    Dataset<Row> planned = spark.range(0, 300, 1, 7).select(
        col("id").cast("string").as(Tables.ID),
        concat(lit("prompt "), col("id").mod(60).cast("string")).as(Tables.PROMPT),
        col("id").mod(60).mod(9).plus(1).cast("int").as(Tables.PROMPT_TOKENS),
        lit(null).cast("string").as(Tables.ERROR_CODE),
        tokenIds(col("id").mod(60).cast("int")).as(Tables.PROMPT_TOKEN_IDS));
    Dataset<Row> requests = Completions.requests(planned);
    assertThat(requests.count()).as("one request per row before arranging").isEqualTo(300);

    SortedMap<Integer, Long> byLength = new TreeMap<>();
    for (Row r : requests.collectAsList()) {
      byLength.merge(r.getInt(1), 1L, Long::sum);
    }
    for (LengthRanges ranges : java.util.Arrays.asList(null, LengthRanges.of(byLength, 4))) {
      assertOneRequestPerPrompt(Completions.arrange(requests, 4, true, ranges).javaRDD().glom().collect());
    }

    List<Row> undeduplicated = Completions.arrange(requests, 4, false).collectAsList();
    assertThat(undeduplicated).as("without --dedup every row is its own request").hasSize(300)
        .allSatisfy(r -> assertThat(r.getList(2)).hasSize(1));
  }

  /** Each of the 60 prompts is one request holding its 5 ids. */
  private static void assertOneRequestPerPrompt(List<List<Row>> partitions) {
    java.util.Map<String, List<String>> idsByPrompt = new java.util.HashMap<>();
    for (List<Row> partition : partitions) {
      List<Integer> lengths = partition.stream().map(r -> r.getInt(1)).toList();
      assertThat(lengths).as("still longest first").isSortedAccordingTo((a, b) -> Integer.compare(b, a));
      for (Row r : partition) {
        assertThat(idsByPrompt.put(r.getString(0), r.getList(2))).as("one request for " + r.getString(0)).isNull();
        assertThat(PromptTokenIds.fromColumn(r, 3)).as("its prompt's token ids, carried along")
            .containsExactly(Long.parseLong(r.getString(0).substring("prompt ".length())));
      }
    }
    assertThat(idsByPrompt).hasSize(60);
    for (int p = 0; p < 60; p++) {
      List<String> expected = new ArrayList<>();
      for (int i = p; i < 300; i += 60) {
        expected.add(Integer.toString(i));
      }
      assertThat(idsByPrompt.get("prompt " + p)).as("every id of prompt " + p)
          .containsExactlyInAnyOrderElementsOf(expected);
    }
  }
}
