package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.sparkinfer.tokenizer.TextTokenizer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import scala.jdk.javaapi.CollectionConverters;

/**
 * A prompt is tokenized once per run: the inference tasks generate from the token ids planning found
 * ({@link Tables#PROMPT_TOKEN_IDS}), not from the prompt's text again.
 */
class PlannedTokenIdsTest {

  @Test
  void theInferenceTasksGenerateFromThePlannedIds() {
    SparkSession spark = TestSupport.spark();
    String other = "def add(a, b):\n    return a + b\n";
    long[] otherIds;
    try (TextTokenizer tokenizer = TextTokenizer.load(TestSupport.tinyModel())) {
      otherIds = tokenizer.encode(other);
    }
    assertThat(otherIds.length).isGreaterThan(3);
    // row "a" says one prompt and carries another's ids; row "b" is that other prompt with its own
    List<Row> rows = List.of(
        request("x = 1", otherIds, "a"),
        request(other, otherIds, "b"));
    StructType schema = Completions.arrange(Completions.requests(planned(spark, List.of())), 1, false).schema();
    Dataset<Row> arranged = spark.createDataFrame(rows, schema).coalesce(1);
    ModelLocation model = ModelLocation.check(TestSupport.tinyModel().toString(), new Configuration(), null);
    JobOptions o = TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input", "unused",
        "--output", "unused", "--max-new-tokens", "4", "--dedup=false");
    Map<String, Row> byId = new HashMap<>();
    for (Row r : Completions.infer(arranged, o, model, "planned-ids", JobMetrics.register(spark.sparkContext()), null,
        0).collectAsList()) {
      byId.put(r.getAs(Tables.ID), r);
    }

    assertThat(byId.get("a").<Integer>getAs(Tables.PROMPT_TOKENS)).as("the planned ids' length, not the text's")
        .isEqualTo(otherIds.length);
    assertThat(byId.get("a").getList(byId.get("a").fieldIndex(Tables.OUTPUT_TOKEN_IDS)))
        .as("generated from the planned ids: the other prompt's completion")
        .isEqualTo(byId.get("b").getList(byId.get("b").fieldIndex(Tables.OUTPUT_TOKEN_IDS)))
        .isNotEmpty();
    assertThat(byId.get("a").<String>getAs(Tables.PROMPT)).as("the row's own prompt is written").isEqualTo("x = 1");
  }

  @Test
  void idsSurviveTheCacheLookupsGroupingByPrompt() {
    SparkSession spark = TestSupport.spark();
    Dataset<Row> planned = planned(spark, List.of(
        RowFactory.create("1", "p", 2, null, null, "driver", PromptTokenIds.toColumn(new long[] {7, 9})),
        RowFactory.create("2", "p", 2, null, null, "driver", PromptTokenIds.toColumn(new long[] {7, 9}))));
    List<Row> grouped = Completions.byPrompt(Completions.requests(planned)).collectAsList();
    assertThat(grouped).hasSize(1);
    Row g = grouped.get(0);
    assertThat(PromptTokenIds.fromColumn(g, g.fieldIndex(Tables.PROMPT_TOKEN_IDS))).containsExactly(7, 9);
  }

  private static Dataset<Row> planned(SparkSession spark, List<Row> rows) {
    return spark.createDataFrame(rows, Tables.PLANNED);
  }

  /** An arranged request: (prompt, prompt_tokens, ids, prompt_token_ids). */
  private static Row request(String prompt, long[] tokenIds, String id) {
    return RowFactory.create(prompt, tokenIds.length, CollectionConverters.asScala(List.of(id)).toList(),
        PromptTokenIds.toColumn(tokenIds));
  }
}
