package io.sparkinfer.jobs.examples;

import io.sparkinfer.jobs.TextGenerator;
import java.io.IOException;
import java.util.Map;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.ml.feature.SQLTransformer;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Batch inference from a Spark application of your own (README, "Spark API"): answer a prompt table, query the
 * answers with SQL, and save a pipeline that filters and answers. Run with the job jar on the class path:
 * {@code spark-submit --class io.sparkinfer.jobs.examples.TextGeneratorExample APP.jar MODEL PROMPTS.jsonl OUT}.
 */
public final class TextGeneratorExample {

  private TextGeneratorExample() {}

  public static void main(String[] args) throws IOException {
    SparkSession spark = SparkSession.builder().appName("sparkinfer TextGenerator example").getOrCreate();
    run(spark, args[0], args[1], args[2]).show(false);
  }

  /** Answers the prompts of a JSONL file and saves a pipeline under {@code out}; returns the SQL summary. */
  public static Dataset<Row> run(SparkSession spark, String model, String promptsJsonl, String out)
      throws IOException {
    Dataset<Row> prompts = spark.read().json(promptsJsonl); // columns id, prompt

    // 1. The plain form: the rows with their completions added.
    Dataset<Row> answered = TextGenerator.generate(prompts, model, Map.of("max-new-tokens", "16"));
    answered.createOrReplaceTempView("answered");

    // 2. A pipeline stage among others, saved to be loaded by the next job.
    TextGenerator generator = new TextGenerator().setModel(model).setInputCol("prompt").setOutputCol("answer")
        .setIdCol("id").setOption("max-new-tokens", "16");
    PipelineModel pipeline = new Pipeline().setStages(new PipelineStage[] {
        new SQLTransformer().setStatement("SELECT * FROM __THIS__ WHERE prompt IS NOT NULL"), generator})
        .fit(prompts);
    pipeline.write().overwrite().save(out + "/pipeline");
    PipelineModel.load(out + "/pipeline").transform(prompts).write().mode("overwrite").parquet(out + "/answers");

    // 3. SQL over the answers.
    return spark.sql("SELECT finish_reason, count(*) AS n, sum(completion_tokens) AS tokens FROM answered "
        + "GROUP BY finish_reason ORDER BY finish_reason");
  }
}
