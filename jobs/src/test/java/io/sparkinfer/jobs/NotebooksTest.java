package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.jobs.sweep.SweepJob;
import io.sparkinfer.jobs.sweep.SweepOptions;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every {@code %%sql} cell of every notebook runs against the tables of a real batch job and a real sweep (two
 * studies, so the trend and regression questions have something to compare), and returns the columns the cell
 * declares; {@code sql.sh --file NOTEBOOK.ipynb} runs them too.
 */
@Tag("slow")
class NotebooksTest {

  @TempDir
  Path tmp;

  @Test
  void everyNotebookCellRunsOnRealTablesWithTheColumnsItDeclares() throws IOException {
    SparkSession spark = TestSupport.spark();
    Map<String, String> rows = new LinkedHashMap<>(TestSupport.referenceInput());
    rows.put("empty", "");
    String out = tmp.resolve("out").toString();
    String cache = tmp.resolve("cache").toString();
    BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input",
        TestSupport.writeJsonl(tmp.resolve("in.jsonl"), rows).toString(), "--output", out, "--max-new-tokens", "4",
        "--cache", cache));
    String sweeps = tmp.resolve("sweeps").toString();
    for (String run : new String[] {"first", "second"}) {
      SweepJob.run(spark, SweepOptions.parse(new String[] {"--model", TestSupport.tinyModel().toString(), "--output",
          sweeps, "--batch-sizes", "1,2", "--max-new-tokens", "4", "--run-id", run}, k -> null,
          k -> null), new PrintStream(new ByteArrayOutputStream()));
    }
    SqlRunner.register(spark, "completions", out);
    SqlRunner.register(spark, "job_runs", out + "/_job_runs");
    SqlRunner.register(spark, "result_cache", cache);
    SqlRunner.register(spark, "sweep_trials", sweeps);
    SqlRunner.register(spark, "sweep_runs", sweeps + "/_sweep_runs");

    List<Path> notebooks;
    try (Stream<Path> files = Files.list(TestSupport.repo().resolve("notebooks"))) {
      notebooks = files.filter(p -> p.toString().endsWith(".ipynb")).sorted().toList();
    }
    assertThat(notebooks).extracting(p -> p.getFileName().toString())
        .containsExactly("batch-inference.ipynb", "sweep.ipynb");
    for (Path notebook : notebooks) {
      List<Notebook.SqlCell> cells = Notebook.sqlCells(Files.readString(notebook));
      assertThat(cells).as("%s has questions", notebook).hasSizeGreaterThan(5);
      for (Notebook.SqlCell cell : cells) {
        Dataset<Row> result = spark.sql(cell.sql());
        assertThat(Arrays.asList(result.columns())).as("%s: %s", notebook.getFileName(), cell.sql())
            .containsExactlyElementsOf(cell.columns());
        result.collectAsList(); // runs to the end
      }
    }

    List<Notebook.SqlCell> batch = Notebook.sqlCells(Files.readString(notebooks.get(0)));
    List<Row> outcome = spark.sql(batch.get(0).sql()).collectAsList();
    assertThat(outcome.stream().mapToLong(r -> r.getLong(2)).sum()).as("the outcome counts every row").isEqualTo(rows.size());
    assertThat(outcome).anySatisfy(r -> assertThat(r.getString(1)).isEqualTo("empty_prompt"));
    Row bySize = spark.sql(batch.stream().filter(c -> c.sql().contains("FROM result_cache\nGROUP BY model_fingerprint\n"))
        .findFirst().orElseThrow().sql()).first();
    assertThat(bySize.<Long>getAs("entries")).as("the cache's size by model: one entry per answered prompt")
        .isEqualTo(rows.size() - 1);
    List<Notebook.SqlCell> sweep = Notebook.sqlCells(Files.readString(notebooks.get(1)));
    assertThat(spark.sql(sweep.get(0).sql()).count()).as("the two studies").isEqualTo(2);
    assertThat(spark.sql(sweep.get(4).sql()).count()).as("each configuration against its previous study").isEqualTo(2);

    ByteArrayOutputStream printed = new ByteArrayOutputStream();
    SqlRunner.run(spark, SqlRunner.Request.parse(new String[] {"--view", "sweep_trials=" + sweeps, "--view",
        "sweep_runs=" + sweeps + "/_sweep_runs", "--file", notebooks.get(1).toString()}),
        new PrintStream(printed, true, StandardCharsets.UTF_8));
    assertThat(printed.toString(StandardCharsets.UTF_8)).as("sql.sh --file runs a notebook's cells")
        .contains("run_id\tstarted_at\twall_s");
  }

  /** An upgrade: job_runs rows of an older version (fewer columns) beside new ones; every question still runs. */
  @Test
  void aJobRunsTableThatAnOlderVersionAppendedToAnswersEveryQuestion() throws IOException {
    SparkSession spark = TestSupport.spark();
    String out = tmp.resolve("mixed").toString();
    BatchInference.run(spark, TestSupport.options("--model", TestSupport.tinyModel().toString(), "--input",
        TestSupport.writeJsonl(tmp.resolve("mixed.jsonl"), Map.of("a", "def add(a, b):")).toString(), "--output", out,
        "--max-new-tokens", "2"));
    String runs = out + "/_job_runs";
    List<String> newer = List.of("oom_retries", "libtorch", "first_inference_s", "inference_span_s",
        "inference_task_s", "engine_wait_s", "engine_idle_s", "batch_sizes", "cache", "cache_hits", "cache_misses",
        "cache_tokens_saved");
    spark.read().parquet(runs).withColumn("run_id", org.apache.spark.sql.functions.lit("older"))
        .drop(newer.toArray(String[]::new)).coalesce(1).write().mode("append").parquet(runs);

    SqlRunner.register(spark, "job_runs", runs);
    Map<String, Row> byRun = new java.util.HashMap<>();
    spark.sql("SELECT * FROM job_runs").collectAsList().forEach(r -> byRun.put(r.getAs("run_id"), r));
    assertThat(byRun).hasSize(2).containsKey("older");
    assertThat(byRun.get("older").<Double>getAs("engine_wait_s")).as("a column the older run did not write").isNull();
    SqlRunner.register(spark, "completions", out);
    for (Notebook.SqlCell cell : Notebook.sqlCells(Files.readString(TestSupport.repo().resolve(
        "notebooks/batch-inference.ipynb")))) {
      if (cell.sql().contains("FROM job_runs")) {
        assertThat(spark.sql(cell.sql()).collectAsList()).as(cell.sql()).isNotNull();
      }
    }
  }

  @Test
  void aFileThatIsNotANotebookIsRefusedWithTheReason() {
    assertThatThrownBy(() -> Notebook.sqlCells("[1, 2]")).hasMessageContaining("not a Jupyter notebook");
    assertThatThrownBy(() -> Notebook.sqlCells("{\"nbformat\": 4}")).hasMessageContaining("no cells list");
    assertThat(Notebook.sqlCells("{\"cells\": [{\"cell_type\": \"code\", \"source\": \"SELECT 1\"}, "
        + "{\"cell_type\": \"code\", \"source\": [\"%%sql\\n\", \"SELECT 2;\"]}]}"))
        .as("only %%sql cells, without the magic line and the final ';'")
        .containsExactly(new Notebook.SqlCell("SELECT 2", List.of()));
  }
}
