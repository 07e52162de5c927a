package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.feature.SQLTransformer;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Spark ML stage on local[2]: the batch job's completions for the same rows and options (greedy, and seeded
 * sampling with the job's ids), inside a pipeline with a SQLTransformer that is saved, loaded and run again with the
 * same output, lazy (no model load before an action), and error values for prompts that cannot run.
 */
@Tag("slow")
class TextGeneratorTest {

  static final int MAX_NEW = 6;

  @TempDir
  Path tmp;

  static Map<String, String> prompts() {
    Map<String, String> rows = new LinkedHashMap<>(TestSupport.referenceInput());
    rows.put("dup", rows.values().iterator().next());
    return rows;
  }

  static Dataset<Row> frame(SparkSession spark, Map<String, String> rows) {
    List<Row> list = new ArrayList<>();
    rows.forEach((id, p) -> list.add(RowFactory.create(id, p, id.length())));
    StructType schema = new StructType().add("key", DataTypes.StringType).add("question", DataTypes.StringType)
        .add("extra", DataTypes.IntegerType);
    return spark.createDataFrame(list, schema);
  }

  /** What the batch job writes for the same rows, by id. */
  Map<String, Row> jobOutput(SparkSession spark, Map<String, String> rows, String... extra) {
    Path input = TestSupport.writeJsonl(tmp.resolve("in-" + extra.length + ".jsonl"), rows);
    String out = tmp.resolve("job-" + extra.length).toString();
    List<String> args = new ArrayList<>(List.of("--model", TestSupport.tinyModel().toString(), "--input",
        input.toString(), "--output", out, "--max-new-tokens", "" + MAX_NEW, "--precision", "fp32"));
    args.addAll(List.of(extra));
    BatchInference.run(spark, TestSupport.options(args.toArray(new String[0])));
    Map<String, Row> byId = new HashMap<>();
    spark.read().parquet(out).collectAsList().forEach(r -> byId.put(r.getAs("id"), r));
    return byId;
  }

  @Test
  void givesTheJobsCompletionsGreedyAndSeededSampled() {
    SparkSession spark = TestSupport.spark();
    Map<String, String> rows = prompts();
    for (String[] sampling : new String[][] {{}, {"--temperature", "0.9", "--top-k", "20", "--seed", "7"}}) {
      Map<String, Row> job = jobOutput(spark, rows, sampling);
      TextGenerator g = new TextGenerator().setModel(TestSupport.tinyModel().toString()).setInputCol("question")
          .setIdCol("key").setOutputCol("answer").setOption("max-new-tokens", "" + MAX_NEW)
          .setOption("precision", "fp32");
      for (int i = 0; i < sampling.length; i += 2) {
        g.setOption(sampling[i].substring(2), sampling[i + 1]);
      }
      List<Row> out = g.transform(frame(spark, rows)).collectAsList();
      assertThat(out).hasSize(rows.size());
      for (Row r : out) {
        Row expected = job.get(r.<String>getAs("key"));
        assertThat(r.<String>getAs("answer")).as("%s %s", List.of(sampling), r.<String>getAs("key"))
            .isEqualTo(expected.getAs("completion"));
        assertThat(r.<scala.collection.Seq<Long>>getAs("output_token_ids").mkString(","))
            .isEqualTo(expected.<scala.collection.Seq<Long>>getAs("output_token_ids").mkString(","));
        assertThat(r.<Integer>getAs("extra")).as("the input's other columns stay").isEqualTo(r.<String>getAs("key").length());
      }
    }
  }

  @Test
  void composesInAPipelineThatIsSavedLoadedAndRunAgain() throws Exception {
    SparkSession spark = TestSupport.spark();
    Map<String, String> rows = prompts();
    SQLTransformer keepShort = new SQLTransformer().setStatement("SELECT * FROM __THIS__ WHERE extra < 4");
    TextGenerator g = new TextGenerator().setModel(TestSupport.tinyModel().toString()).setInputCol("question")
        .setOption("max-new-tokens", "" + MAX_NEW).setOption("precision", "fp32").setColumnPrefix("gen_");
    SQLTransformer summary = new SQLTransformer().setStatement(
        "SELECT key, completion, gen_finish_reason, gen_completion_tokens FROM __THIS__");
    PipelineModel model = new Pipeline().setStages(new PipelineStage[] {keepShort, g, summary}).fit(frame(spark, rows));
    List<Row> first = model.transform(frame(spark, rows)).orderBy("key").collectAsList();
    assertThat(first).isNotEmpty().allSatisfy(r -> assertThat(r.<Integer>getAs("gen_completion_tokens")).isPositive());
    assertThat(first).hasSize((int) rows.keySet().stream().filter(k -> k.length() < 4).count());

    String path = tmp.resolve("pipeline").toString();
    model.write().overwrite().save(path);
    PipelineModel loaded = PipelineModel.load(path);
    TextGenerator back = (TextGenerator) loaded.stages()[1];
    assertThat(back.uid()).isEqualTo(g.uid());
    assertThat(back.getOrDefault(back.options())).containsExactly("max-new-tokens=" + MAX_NEW, "precision=fp32");
    List<Row> again = loaded.transform(frame(spark, rows)).orderBy("key").collectAsList();
    assertThat(again).isEqualTo(first);
  }

  @Test
  void nothingLoadsBeforeAnActionAndRowsThatCannotRunGetErrorValues() {
    SparkSession spark = TestSupport.spark();
    ExecutorEngines.closeAll();
    int before = ExecutorEngines.loadCount();
    Map<String, String> rows = new LinkedHashMap<>();
    rows.put("ok", "def f(x):");
    rows.put("empty", "");
    rows.put("null", null);
    Dataset<Row> out = new TextGenerator().setModel(TestSupport.tinyModel().toString()).setInputCol("question")
        .setOption("max-new-tokens", "3").transform(frame(spark, rows));
    assertThat(ExecutorEngines.loadCount()).as("transform is lazy").isEqualTo(before);
    Map<String, Row> byKey = new HashMap<>();
    out.collectAsList().forEach(r -> byKey.put(r.getAs("key"), r));
    assertThat(ExecutorEngines.loadCount()).as("the action loaded the model once").isEqualTo(before + 1);
    assertThat(byKey).hasSize(3);
    assertThat(byKey.get("ok").<String>getAs("error_code")).isNull();
    assertThat(byKey.get("ok").<String>getAs("completion")).isNotNull();
    assertThat(byKey.get("empty").<String>getAs("error_code")).isEqualTo("empty_prompt");
    assertThat(byKey.get("null").<String>getAs("error_code")).isEqualTo("empty_prompt");
    assertThat(byKey.get("null").<String>getAs("finish_reason")).isEqualTo("error");
  }

  @Test
  void theExampleRunsEndToEnd() throws Exception {
    SparkSession spark = TestSupport.spark();
    Path prompts = TestSupport.writeJsonl(tmp.resolve("example.jsonl"), prompts());
    String out = tmp.resolve("example").toString();
    List<Row> summary = io.sparkinfer.jobs.examples.TextGeneratorExample.run(spark, TestSupport.tinyModel().toString(),
        prompts.toString(), out).collectAsList();
    assertThat(summary.stream().mapToLong(r -> r.getLong(1)).sum()).as("every prompt answered")
        .isEqualTo(prompts().size());
    assertThat(spark.read().parquet(out + "/answers").count()).isEqualTo(prompts().size());
    assertThat(spark.read().parquet(out + "/answers").columns()).contains("answer", "finish_reason", "id");
  }

  @Test
  void badSettingsFailWhenSetOrWhenTheSchemaIsChecked() {
    TextGenerator g = new TextGenerator();
    assertThatThrownBy(() -> g.setOption("max-new-tokens", "ten")).hasMessageContaining("option max-new-tokens")
        .hasMessageContaining("ten");
    assertThatThrownBy(() -> g.setOption("output", "/x")).hasMessageContaining("unknown option 'output'");
    StructType schema = new StructType().add("question", DataTypes.IntegerType).add("completion", DataTypes.StringType);
    assertThatThrownBy(() -> g.setInputCol("prompt").transformSchema(schema))
        .hasMessageContaining("input column 'prompt' is not among");
    assertThatThrownBy(() -> g.setInputCol("question").transformSchema(schema)).hasMessageContaining("must be a string");
    StructType clash = new StructType().add("prompt", DataTypes.StringType).add("completion", DataTypes.StringType);
    assertThatThrownBy(() -> new TextGenerator().transformSchema(clash))
        .hasMessageContaining("output column 'completion' is already a column");
    assertThatThrownBy(() -> new TextGenerator().transform(TestSupport.spark().createDataFrame(List.of(),
        new StructType().add("prompt", DataTypes.StringType)))).hasMessageContaining("needs a model");
  }
}
