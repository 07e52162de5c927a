package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every statement of every notebook runs against the tables of a real job run. */
@Tag("slow")
class NotebooksTest {

  @TempDir
  Path tmp;

  @Test
  void everyNotebookStatementRunsOnARealRun() throws IOException {
    SparkSession spark = TestSupport.spark();
    Map<String, String> rows = new LinkedHashMap<>(TestSupport.referenceInput());
    rows.put("empty", "");
    String out = tmp.resolve("out").toString();
    BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input",
        TestSupport.writeJsonl(tmp.resolve("in.jsonl"), rows).toString(), "--output", out, "--max-new-tokens", "4"));

    List<Path> notebooks;
    try (Stream<Path> files = Files.list(TestSupport.repo().resolve("notebooks"))) {
      notebooks = files.filter(p -> p.toString().endsWith(".sql")).sorted().toList();
    }
    assertThat(notebooks).isNotEmpty();
    for (Path notebook : notebooks) {
      SqlRunner.Request request = SqlRunner.Request.parse(new String[] {"--view", "completions=" + out, "--view",
          "job_runs=" + out + "/_job_runs", "--file", notebook.toString()});
      assertThat(request.statements()).as("%s has statements", notebook).hasSizeGreaterThan(3);
      ByteArrayOutputStream printed = new ByteArrayOutputStream();
      SqlRunner.run(spark, request, new PrintStream(printed, true, StandardCharsets.UTF_8));
      assertThat(printed.toString(StandardCharsets.UTF_8)).as("%s output", notebook).contains("finish_reason\terror_code\trows");
    }

    // The outcome breakdown counts what was written.
    spark.read().parquet(out).createOrReplaceTempView("completions");
    List<Row> outcome = spark.sql(SqlRunner.splitStatements(Files.readString(notebooks.get(0))).get(0)).collectAsList();
    assertThat(outcome.stream().mapToLong(r -> r.getLong(2)).sum()).isEqualTo(rows.size());
    assertThat(outcome).anySatisfy(r -> assertThat(r.getString(1)).isEqualTo("empty_prompt"));
  }
}
