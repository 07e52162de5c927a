package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Input formats, generated ids, and the job's error paths, on local[2]. */
@Tag("slow")
class BatchInferenceJobInputsTest {

  @TempDir
  Path tmp;

  String model = TestSupport.tinyModel().toString();

  @Test
  void csvWithoutAnIdColumnGetsPositionalIdsAndAnotherPromptColumn() throws IOException {
    SparkSession spark = TestSupport.spark();
    Path csv = tmp.resolve("in/prompts.csv");
    Files.createDirectories(csv.getParent());
    Files.writeString(csv, "text,topic\n\"def add(a, b):\",math\n\"class A:\n    pass\",classes\n");
    String out = tmp.resolve("out").toString();
    JobResult r = BatchInference.run(spark, TestSupport.options("--model", model, "--input", csv.getParent().toString(),
        "--output", out, "--prompt-column", "text", "--max-new-tokens", "2"));
    assertThat(r.rows()).isEqualTo(2);
    List<Row> written = spark.read().parquet(out).orderBy("id").collectAsList();
    assertThat(written).extracting(x -> x.<String>getAs("id")).containsExactly("row-0", "row-1");
    assertThat(written.get(1).<String>getAs("prompt")).isEqualTo("class A:\n    pass");
  }

  @Test
  void parquetInputWithNumericIds() {
    SparkSession spark = TestSupport.spark();
    String in = tmp.resolve("in-parquet").toString();
    spark.sql("SELECT CAST(id AS INT) AS id, concat('def f', id, '():') AS prompt FROM range(3)").write().parquet(in);
    String out = tmp.resolve("out").toString();
    BatchInference.run(spark, TestSupport.options("--model", model, "--input", in, "--output", out,
        "--max-new-tokens", "2", "--format", "jsonl"));
    assertThat(spark.read().json(out).select("id").as(org.apache.spark.sql.Encoders.STRING()).collectAsList())
        .containsExactlyInAnyOrder("0", "1", "2");
  }

  @Test
  void badInputsFailWithMessagesThatNameTheProblem() {
    SparkSession spark = TestSupport.spark();
    Path noPrompt = TestSupport.writeJsonl(tmp.resolve("x.jsonl"), Map.of("a", "hi"));
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input",
        noPrompt.toString(), "--output", tmp.resolve("o1").toString(), "--prompt-column", "question")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("has no column 'question' (columns: id, prompt)");

    Path dupes = tmp.resolve("dupes.jsonl");
    writeLines(dupes, "{\"id\": \"a\", \"prompt\": \"x\"}", "{\"id\": \"a\", \"prompt\": \"y\"}");
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input",
        dupes.toString(), "--output", tmp.resolve("o2").toString())))
        .as("a repeated id is a mistake in the input: the job stops before any work and says where")
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("the input's ids must be unique; found "
            + "'a' x2 at dupes.jsonl:1, dupes.jsonl:2");
    try (var written = Files.list(tmp.resolve("o2"))) {
      assertThat(written.map(p -> p.getFileName().toString())).as("no completions; the failed run's job_runs row")
          .containsExactly("_job_runs");
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }

    Path array = tmp.resolve("array.json");
    writeLines(array, "[", "  {", "    \"id\": \"a\",", "    \"prompt\": \"x\"", "  }", "]");
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input",
        array.toString(), "--output", tmp.resolve("o6").toString())))
        .as("an input of which no row can be read is the wrong input, not three bad rows")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("none of its 6 rows can be read as JSONL (line 1 of array.json: not a JSON object: ");

    Path csvs = tmp.resolve("csvs");
    try {
      Files.createDirectories(csvs);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    writeLines(csvs.resolve("a.csv"), "id,prompt", "a,x");
    writeLines(csvs.resolve("b.csv"), "id,text", "b,y");
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input",
        csvs.toString(), "--output", tmp.resolve("o7").toString())))
        .as("a CSV file's header is its schema: one without the prompt column is a wrong file, not bad rows")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("--input " + csvs + ": b.csv has no column 'prompt' (columns: id, text); name the prompt column "
            + "with --prompt-column");

    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input",
        tmp.resolve("absent.jsonl").toString(), "--output", tmp.resolve("o3").toString())))
        .hasMessageContaining("absent.jsonl: no such file or directory");

    Path notAModel = tmp.resolve("empty-dir");
    try {
      Files.createDirectories(notAModel);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", notAModel.toString(),
        "--input", noPrompt.toString(), "--output", tmp.resolve("o4").toString())))
        .hasMessageContaining("not a Hugging Face checkpoint (no config.json)");

    String out = tmp.resolve("o5").toString();
    BatchInference.run(spark, TestSupport.options("--model", model, "--input", noPrompt.toString(), "--output", out,
        "--max-new-tokens", "1"));
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options("--model", model, "--input",
        noPrompt.toString(), "--output", out, "--format", "jsonl", "--resume")))
        .hasMessageContaining("holds parquet files but --format is jsonl");
  }

  private static void writeLines(Path file, String... lines) {
    try {
      Files.write(file, List.of(lines));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
