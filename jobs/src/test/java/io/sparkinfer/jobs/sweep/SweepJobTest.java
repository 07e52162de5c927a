package io.sparkinfer.jobs.sweep;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.jobs.JobOptions;
import io.sparkinfer.jobs.SqlRunner;
import io.sparkinfer.jobs.TestSupport;
import io.sparkinfer.tune.Significance;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import io.sparkinfer.layout.Layout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A whole study on {@code local[2]} with the tiny fixture model on the CPU, as the README's example runs it:
 * trials timed, tables written and read back with SQL, the report and best.properties written, and a second
 * study compared with the first.
 */
class SweepJobTest {

  static SweepOptions options(Path out, String... extra) {
    String[] base = {"--model", TestSupport.tinyModel().toString(), "--input",
        TestSupport.repo().resolve("jobs/demo/prompts.jsonl").toString(), "--output", out.toString(),
        "--batch-sizes", "1,4", "--precisions", "fp32,fp16", "--max-new-tokens", "8"};
    String[] args = new String[base.length + extra.length];
    System.arraycopy(base, 0, args, 0, base.length);
    System.arraycopy(extra, 0, args, base.length, extra.length);
    return SweepOptions.parse(args, k -> null, k -> null);
  }

  @Test
  void aCpuStudyWritesOkTrialsThatSqlReadsBackAndAConfigurationTheJobTakes(@TempDir Path tmp) throws Exception {
    SparkSession spark = TestSupport.spark();
    Path out = tmp.resolve("sweep");
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    SweepJob.StudyResult first = SweepJob.run(spark, options(out, "--run-id", "first"),
        new PrintStream(log, true, StandardCharsets.UTF_8));

    List<Row> trials = spark.read().parquet(out.toString()).orderBy("trial").collectAsList();
    assertThat(trials).hasSize(4);
    for (Row r : trials) {
      assertThat(r.<String>getAs("status")).isEqualTo(SweepTables.OK);
      assertThat(r.<Double>getAs("tokens_per_s")).as("trial %s", r.<Integer>getAs("trial")).isPositive();
      assertThat(r.<Double>getAs("tokens_per_s_ci95")).isNotNull();
      assertThat(r.getList(r.fieldIndex("tokens_per_s_samples"))).as("one sample per repeat").hasSize(3);
      assertThat(r.<Double>getAs("token_latency_p99_ms")).isGreaterThanOrEqualTo(r.<Double>getAs("token_latency_p50_ms"));
      assertThat(r.<Double>getAs("peak_gpu_mem_mb")).as("no GPU").isNull();
      assertThat(r.getAs("date").toString()).as("the partition column (read back as a date)")
          .matches("\\d{4}-\\d{2}-\\d{2}");
      if (r.<String>getAs("precision").equals("fp32")) {
        assertThat(r.<Double>getAs("agreement_identical")).as("fp32 gives the fp32 reference's greedy tokens")
            .isEqualTo(1.0);
      }
    }
    assertThat(trials).extracting(r -> r.<Integer>getAs("batch_size")).containsExactly(1, 1, 4, 4);
    assertThat(trials).anyMatch(r -> r.<Boolean>getAs("pareto"));
    assertThat(log.toString(StandardCharsets.UTF_8)).contains("sweep: reference run (fp32)").contains("sweep: trial 4/4");
    assertThat(first.summary()).contains("best under the constraints: trial");

    SqlRunner.register(spark, "sweep_runs", out.resolve(SweepTables.RUNS_DIR).toString());
    Row study = spark.sql("SELECT trials, ok_trials, best_trial, sampler, date FROM sweep_runs").first();
    assertThat(study.getInt(0)).isEqualTo(4);
    assertThat(study.getInt(1)).isEqualTo(4);
    assertThat(study.getInt(2)).isEqualTo(first.best().getInt(first.best().fieldIndex("trial")));
    assertThat(study.getString(3)).isEqualTo("grid");
    assertThat(study.get(4)).as("the partition column of _sweep_runs reads back too").isNotNull();

    Path report = out.resolve(SweepTables.REPORT_DIR).resolve("first");
    assertThat(report.resolve("index.html")).exists();
    assertThat(report.resolve(SweepReport.THROUGHPUT_PNG)).exists();
    assertThat(report.resolve(SweepReport.PARETO_PNG)).exists();
    Properties best = new Properties();
    best.load(new StringReader(Files.readString(report.resolve("best.properties"))));
    Map<String, String> params = first.best().getJavaMap(first.best().fieldIndex("params"));
    assertThat(best.getProperty("spark.sparkinfer.batch-size")).isEqualTo(params.get("batch-size"));
    JobOptions job = JobOptions.parse(new String[] {"--model", "/m", "--input", "/i", "--output", "/o"},
        best::getProperty, k -> null);
    assertThat(job.batchSize()).as("the job takes the best batch size from best.properties")
        .isEqualTo(Integer.parseInt(params.get("batch-size")));
    assertThat(job.precision().label()).isEqualTo(params.get("precision"));

    SweepJob.run(spark, options(out, "--run-id", "second"), new PrintStream(new ByteArrayOutputStream()));
    SweepCompare.Result compared = SweepCompare.compare(spark, out.toString(), "previous", "latest", 0.05);
    assertThat(compared.baseline()).isEqualTo("first");
    assertThat(compared.candidate()).isEqualTo("second");
    assertThat(compared.lines()).as("the 4 configurations both studies ran").hasSize(4);
    for (SweepCompare.Line l : compared.lines()) {
      Significance.Comparison c = l.comparison();
      assertThat(c.meanBefore()).isPositive();
      assertThat(c.welchP()).isBetween(0.0, 1.0);
      assertThat(c.mannWhitneyP()).isBetween(0.0, 1.0);
    }
    assertThat(compared.table(0.05)).contains("first (baseline) -> second (candidate)");

    Path redrawn = tmp.resolve("redrawn");
    SweepJob.Report again = SweepReportCommand.draw(spark, out.toString(), "first", redrawn.toString());
    assertThat(again.charts()).isTrue();
    assertThat(redrawn.resolve(SweepReport.THROUGHPUT_PNG)).as("the report drawn again from the table alone").exists();
    assertThat(Files.readString(redrawn.resolve("best.properties")))
        .isEqualTo(Files.readString(report.resolve("best.properties")));
    assertThat(Files.readString(redrawn.resolve("index.html"))).contains("sparkinfer sweep first");
    assertThat(SweepReportCommand.draw(spark, out.toString(), "latest", tmp.resolve("latest").toString()).runId())
        .isEqualTo("second");
    assertThatThrownBy(() -> SweepReportCommand.draw(spark, out.toString(), "nope", tmp.resolve("x").toString()))
        .hasMessageContaining("holds no trials of study nope");

    // A JRE without its font libraries (as on a GPU machine's minimal JRE): no charts, best.properties all the same.
    Path fontless = tmp.resolve("sweep2/_report/first");
    SweepJob.Report noCharts = SweepJob.writeReport(trials, first.best(), "first", fontless.toString(),
        spark.sparkContext().hadoopConfiguration(), (rows, dir, title) -> {
          try {
            Files.writeString(dir.resolve("throughput.png.tmp"), "half a chart");
          } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
          throw new UnsatisfiedLinkError("libfontmanager.so: libharfbuzz.so.0: cannot open shared object file");
        });
    assertThat(noCharts.charts()).isFalse();
    assertThat(noCharts.describe()).contains("libharfbuzz").contains("best.properties are written")
        .contains("submit/sweep.sh report --output " + tmp.resolve("sweep2") + " --run-id first");
    assertThat(fontless.resolve("best.properties")).exists();
    try (var left = Files.list(fontless)) {
      assertThat(left.map(f -> f.getFileName().toString()).toList()).as("no half-drawn chart")
          .containsExactly("best.properties");
    }
  }

  @Test
  void aLayoutAxisRunsEachLayoutsGeneratorsAndRecordsIt(@TempDir Path tmp) throws Exception {
    SparkSession spark = TestSupport.spark();
    Path out = tmp.resolve("layouts");
    String[] args = {"--model", TestSupport.tinyModel().toString(), "--output", out.toString(), "--batch-sizes", "2",
        "--precisions", "fp32", "--max-new-tokens", "4", "--layouts", "threads=1; replicas=2,threads=2; tp=2",
        "--reference-precision", "none", "--run-id", "layouts"};
    SweepJob.StudyResult result = SweepJob.run(spark, SweepOptions.parse(args, k -> null, k -> null),
        new PrintStream(new ByteArrayOutputStream()));
    List<Row> trials = spark.read().parquet(out.toString()).orderBy("trial").collectAsList();
    assertThat(trials).extracting(r -> r.<String>getAs("status")).containsOnly(SweepTables.OK);
    assertThat(trials).extracting(r -> r.<String>getAs("layout")).containsExactly("replicas=1,tp=1,pp=1,threads=1",
        "replicas=2,tp=1,pp=1,threads=2", "replicas=1,tp=2,pp=1,threads=1");
    assertThat(trials).extracting(r -> r.<Integer>getAs("threads")).containsExactly(1, 2, 1);
    assertThat(trials.get(1).getList(trials.get(1).fieldIndex("tokens_per_s_samples"))).hasSize(3);
    Properties best = new Properties();
    best.load(new StringReader(Files.readString(out.resolve(SweepTables.REPORT_DIR).resolve("layouts")
        .resolve("best.properties"))));
    String bestLayout = result.best().getJavaMap(result.best().fieldIndex("params")).get("layout").toString();
    assertThat(best.getProperty("spark.sparkinfer.layout", "replicas=1,tp=1,pp=1,threads=1"))
        .as("the job takes the best layout").isEqualTo(Layout.parse(bestLayout).label());
  }

  @Test
  void badAxesAndMissingBudgetsFailBeforeAnyWork() {
    Path out = Path.of("/tmp/never-written");
    assertThatThrownBy(() -> options(out, "--axis", "warp-speed=1,2"))
        .hasMessageContaining("axis 'warp-speed' is not an engine option");
    assertThatThrownBy(() -> options(out, "--axis", "precision=int4"))
        .hasMessageContaining("axis precision: --precision must be one of");
    assertThatThrownBy(() -> options(out, "--threads", "0,2")).hasMessageContaining("axis threads takes positive integers");
    assertThatThrownBy(() -> options(out, "--sampler", "sobol")).hasMessageContaining("--sampler sobol needs --trials N");
    assertThatThrownBy(() -> options(out, "--sampler", "annealing")).hasMessageContaining("--sampler must be one of");
    assertThatThrownBy(() -> options(out, "--axis", "batch-size")).hasMessageContaining("--axis takes NAME=VALUES");
    assertThatThrownBy(() -> SweepOptions.parse(new String[] {"--model", "m", "--output", "o"}, k -> null, k -> null))
        .hasMessageContaining("the search space is empty");
  }

  @Test
  void aSpaceFileGivesTheAxesAndFlagsReplaceItsAxesOfTheSameName(@TempDir Path tmp) throws Exception {
    Path file = tmp.resolve("space.yaml");
    Files.writeString(file, "axes:\n  batch-size: 1..64:log\n  precision: [fp16, bf16]\n  decode-chunk: [1, 16]\n");
    SweepOptions o = SweepOptions.parse(new String[] {"--model", "m", "--output", "o", "--space", file.toString(),
        "--precisions", "fp32"}, k -> null, k -> null);
    assertThat(o.space().axes()).extracting(a -> a.name()).containsExactly("batch-size", "precision", "decode-chunk");
    assertThat(o.space().axis("precision").grid()).containsExactly("fp32");
    assertThat(o.space().axis("batch-size").grid()).containsExactly("1", "2", "4", "8", "16", "32", "64");
    assertThat(o.space().gridSize()).isEqualTo(14);
    for (String conf : new String[] {"nightly.yaml", "decode.yaml", "kernels.json", "kv-cache.yaml"}) {
      SweepOptions shipped = SweepOptions.parse(new String[] {"--model", "m", "--output", "o", "--space",
          TestSupport.repo().resolve("conf/sweep").resolve(conf).toString()}, k -> null, k -> null);
      assertThat(shipped.space().gridSize()).as(conf).isGreaterThan(1);
    }
  }

  @Test
  void constraintsBoundTheP99TokenLatencyTheRequestLatencyAndTheGpuMemory() {
    TrialSpec spec = new Study(options(Path.of("/o")), null, s -> List.of(), 1,
        new PrintStream(new ByteArrayOutputStream())).spec(1, Map.of("batch-size", "4"), List.of(), 3);
    TrialResult r = StudyTest.ok(spec, 10); // p99 10 ms per token, 200 ms per request, no GPU memory
    assertThat(SweepJob.satisfies(options(Path.of("/o")), r)).as("no constraints").isTrue();
    assertThat(SweepJob.satisfies(options(Path.of("/o"), "--latency-budget-ms", "10"), r)).as("at the budget").isTrue();
    assertThat(SweepJob.satisfies(options(Path.of("/o"), "--latency-budget-ms", "9.9"), r)).isFalse();
    assertThat(SweepJob.satisfies(options(Path.of("/o"), "--request-budget-ms", "150"), r)).isFalse();
    assertThat(SweepJob.satisfies(options(Path.of("/o"), "--request-budget-ms", "250"), r)).isTrue();
    assertThat(SweepJob.satisfies(options(Path.of("/o"), "--memory-cap-gb", "1"), r)).as("nothing measured on a CPU")
        .isTrue();
    TrialResult heavy = new TrialResult(r.trial(), r.params(), r.status(), null, 0, 1, "0", "gpu:0", "fp16", "scripted",
        "x", Map.of(), 1, 4, 128, 8, r.tokensPerS(), 1.0, r.ttftMs(), r.tokenLatencyMs(), r.latencyMs(),
        new TrialResult.Gpu("NVIDIA H200", "580", 1), 2048.0, 90.0, 1500.0, "h", "d", "l", List.of());
    assertThat(SweepJob.satisfies(options(Path.of("/o"), "--memory-cap-gb", "1"), heavy)).as("2 GiB over 1").isFalse();
    assertThat(SweepJob.satisfies(options(Path.of("/o"), "--memory-cap-gb", "2"), heavy)).isTrue();
  }

  @Test
  void agreementCountsIdenticalOutputsFirstTokensAndTheCommonPrefix() {
    List<long[]> reference = List.of(new long[] {1, 2, 3, 4}, new long[] {5, 6, 7, 8}, new long[] {9, 9});
    List<long[]> trial = List.of(new long[] {1, 2, 3, 4}, new long[] {5, 6, 0, 0}, new long[] {1, 9});
    assertThat(SweepJob.agreement(reference, trial)).containsExactly(1 / 3.0, 2 / 3.0, (4 + 2 + 0) / 3.0);
    assertThat(SweepJob.agreement(List.of(new long[] {1, 2, 3}), List.of(new long[] {1, 2})))
        .as("a shorter output is compared over its own length").containsExactly(1.0, 1.0, 2.0);
  }
}
