package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The result cache ({@code --cache}) end to end on local[2] with the tiny checkpoint: a run over prompts answered
 * before computes nothing and writes what the first run wrote; only new or changed requests are computed; sampled
 * requests without a given seed never touch the cache; two runs appending at once leave every key once.
 */
@Tag("slow")
class ResultCacheTest {

  static final String MAX_NEW = "4";

  @TempDir
  Path tmp;

  /** The first {@code n} reference prompts as ids p0... */
  static Map<String, String> prompts(int n) {
    Map<String, String> rows = new LinkedHashMap<>();
    TestSupport.referenceInput().entrySet().stream().limit(n).forEach(e -> rows.put(e.getKey(), e.getValue()));
    return rows;
  }

  /** A run of {@code input} into a new output, with the cache at {@code cache} and {@code more} options. */
  JobResult run(String name, Map<String, String> input, String cache, String... more) {
    return BatchInference.run(TestSupport.spark(), TestSupport.options(args(name, input, cache, more)));
  }

  String[] args(String name, Map<String, String> input, String cache, String... more) {
    return args(TestSupport.tinyModel().toString(), name, input, cache, more);
  }

  String[] args(String model, String name, Map<String, String> input, String cache, String... more) {
    List<String> all = new ArrayList<>(List.of("--model", model, "--input",
        TestSupport.writeJsonl(tmp.resolve(name + ".jsonl"), input).toString(), "--output", out(name),
        "--cache", cache, "--progress-seconds", "0"));
    all.addAll(List.of(more));
    if (!all.contains("--max-new-tokens")) {
      all.addAll(List.of("--max-new-tokens", MAX_NEW));
    }
    return all.toArray(String[]::new);
  }

  String out(String name) {
    return tmp.resolve("out-" + name).toString();
  }

  String cache(String name) {
    return tmp.resolve("cache-" + name).toString();
  }

  @Test
  void aSecondRunOverTheSamePromptsComputesNothingAndARunWithOneNewPromptComputesOne() {
    SparkSession spark = TestSupport.spark();
    Map<String, String> input = prompts(8);
    input.put("dup-of-p3", input.get("p3"));
    input.put("empty", "");
    String cache = cache("same");

    JobResult first = run("first", input, cache, "--commit-every", "5");
    assertThat(first.requests()).as("the duplicate greedy prompt computed once").isEqualTo(8);
    assertThat(ResultCache.committed(cache, spark.sparkContext().hadoopConfiguration()))
        .as("a commit of the cache per output commit").hasSize(2);
    assertThat(List.of(first.cacheHits(), first.cacheMisses())).as("hits, misses: every valid row missed")
        .containsExactly(0L, 9L);
    assertThat(ResultCache.read(spark, cache).count()).as("one entry per distinct prompt").isEqualTo(8);

    JobResult second = run("second", input, cache);
    assertThat(second.requests()).as("engine requests of the second run").isZero();
    assertThat(second.modelLoads()).as("no inference, no model load").isZero();
    assertThat(List.of(second.cacheHits(), second.cacheMisses())).containsExactly(9L, 0L);
    assertThat(second.okRows()).as("ok rows count the hits").isEqualTo(9);
    assertThat(second.rows()).isEqualTo(10);
    long distinctTokens = spark.read().parquet(out("first")).where("id <> 'dup-of-p3' AND error_code IS NULL")
        .selectExpr("sum(completion_tokens)").first().getLong(0);
    assertThat(second.cacheTokensSaved()).as("completion tokens of the 8 distinct requests").isEqualTo(distinctTokens)
        .isPositive();

    assertThat(TestSupport.answers(spark, out("second"))).as("the second run's completions are the first run's, id for id")
        .containsExactlyInAnyOrderEntriesOf(TestSupport.answers(spark, out("first")));
    Map<String, Boolean> hit = new HashMap<>();
    spark.read().parquet(out("second")).collectAsList().forEach(r -> hit.put(r.getAs("id"), r.getAs("cache_hit")));
    assertThat(hit).as("every answered row a hit; the error row not").containsEntry("empty", false)
        .containsEntry("dup-of-p3", true).containsEntry("p0", true).hasSize(10);
    assertThat(spark.read().parquet(out("first")).where("cache_hit").count()).as("the first run hit nothing").isZero();
    Row hitRow = spark.read().parquet(out("second")).where("id = 'p0'").first();
    assertThat(hitRow.<String>getAs("run_id")).isEqualTo(second.runId());
    assertThat(hitRow.<String>getAs("precision")).isEqualTo("fp32");
    assertThat(hitRow.<String>getAs("device")).as("where the answer was computed").isEqualTo("cpu");
    assertThat(hitRow.<Double>getAs("latency_ms")).isZero();

    Row runs = spark.read().parquet(out("second") + "/_job_runs").first();
    assertThat(runs.<String>getAs("cache")).isEqualTo(cache);
    assertThat(runs.<Long>getAs("cache_hits")).isEqualTo(9L);
    assertThat(runs.<Long>getAs("cache_misses")).isZero();
    assertThat(runs.<Long>getAs("cache_tokens_saved")).isEqualTo(distinctTokens);
    assertThat(runs.<Long>getAs("requests")).isZero();
    assertThat(second.summary()).contains("9 rows answered from it | 0 not found there");
    assertThat(ResultCache.read(spark, cache).count()).as("nothing new to add").isEqualTo(8);

    Map<String, String> oneNew = prompts(3);
    oneNew.put("new", "def one_new_prompt(x):");
    oneNew.put("other-id-for-p1", oneNew.get("p1"));
    JobResult third = run("one-new", oneNew, cache);
    assertThat(third.requests()).as("only the new prompt is computed").isEqualTo(1);
    assertThat(List.of(third.cacheHits(), third.cacheMisses())).as("p1's prompt under another id hits too")
        .containsExactly(4L, 1L);
    assertThat(spark.read().parquet(out("one-new")).where("NOT cache_hit").select("id").first().<String>getAs(0))
        .isEqualTo("new");
    assertThat(ResultCache.read(spark, cache).count()).isEqualTo(9);
    Row added = ResultCache.read(spark, cache).where("prompt = 'def one_new_prompt(x):'").first();
    assertThat(added.<String>getAs("run_id")).isEqualTo(third.runId());
    assertThat(added.<String>getAs("model_fingerprint")).isEqualTo(ModelFingerprint.ofLocal(TestSupport.tinyModel()));
    assertThat(added.<String>getAs("completion")).isEqualTo(
        spark.read().parquet(out("one-new")).where("id = 'new'").first().getAs("completion"));
    assertThat(added.isNullAt(added.fieldIndex("seed"))).as("greedy entries have no seed").isTrue();
  }

  @Test
  void changingPrecisionMaxNewTokensTheWeightsOrTheSeedMisses() throws IOException {
    Path model = tmp.resolve("model");
    Files.createDirectories(model);
    try (var files = Files.list(TestSupport.tinyModel())) {
      for (Path f : files.toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
        model.resolve(f.getFileName()).toFile().setWritable(true);
      }
    }
    String m = model.toString();
    Map<String, String> input = prompts(2);
    String cache = cache("changes");
    assertThat(requests(m, "base", input, cache)).isEqualTo(2);
    assertThat(requests(m, "fp16", input, cache, "--precision", "fp16")).as("another precision").isEqualTo(2);
    assertThat(requests(m, "max2", input, cache, "--max-new-tokens", "2")).as("another max_new_tokens").isEqualTo(2);

    byte[] weights = Files.readAllBytes(model.resolve("model.safetensors"));
    weights[weights.length - 1] ^= 1; // the lowest bit of the last value of the last tensor
    Files.write(model.resolve("model.safetensors"), weights);
    assertThat(requests(m, "new-weights", input, cache)).as("new weights at the same path").isEqualTo(2);

    String[] sampled = {"--temperature", "0.9", "--top-k", "20"};
    assertThat(requests(m, "seed7", input, cache, TestSupport.with(sampled, "--seed", "7"))).isEqualTo(2);
    assertThat(requests(m, "seed7-again", input, cache, TestSupport.with(sampled, "--seed", "7"))).as("the same seed hits")
        .isZero();
    SparkSession spark = TestSupport.spark();
    assertThat(TestSupport.answers(spark, out("seed7-again"))).as("seeded samples from the cache equal the computed ones")
        .containsExactlyInAnyOrderEntriesOf(TestSupport.answers(spark, out("seed7")));
    assertThat(requests(m, "seed8", input, cache, TestSupport.with(sampled, "--seed", "8"))).as("another seed").isEqualTo(2);
    assertThat(ResultCache.read(spark, cache).where("seed IS NOT NULL").count()).as("entries of the two seeds")
        .isEqualTo(4);
  }

  @Test
  void sampledRequestsWithoutASeedAreNeverServedFromTheCache() {
    SparkSession spark = TestSupport.spark();
    Map<String, String> input = prompts(3);
    String cache = cache("unseeded");
    String[] sampled = {"--temperature", "0.9", "--top-k", "20"};
    JobResult seeded = run("seed0", input, cache, TestSupport.with(sampled, "--seed", "0", "--format", "jsonl")); // read back as JSON
    assertThat(seeded.cacheMisses()).isEqualTo(3);
    assertThat(ResultCache.read(spark, cache).count()).as("the run seed 0, given, is cached").isEqualTo(3);

    JobResult unseeded = run("no-seed", input, cache, sampled);
    assertThat(unseeded.requests()).as("the default seed is 0 too, but nobody chose it: computed").isEqualTo(3);
    assertThat(List.of(unseeded.cacheHits(), unseeded.cacheMisses(), unseeded.cacheTokensSaved()))
        .as("not looked up at all").containsExactly(0L, 0L, 0L);
    assertThat(spark.read().parquet(out("no-seed")).where("cache_hit").count()).isZero();
    assertThat(ResultCache.read(spark, cache).count()).as("nor added").isEqualTo(3);
  }

  /**
   * Two runs over overlapping prompts, started together on the shared local[2] session, both plan before either
   * writes (a barrier in their commit hooks), so both compute the shared prompts and both add them: the cache's
   * files then hold those keys twice, and every reader sees each key once. The pruning idiom of
   * notebooks/batch-inference.ipynb (SQL writes the entries to keep into a new cache) then leaves each key once in
   * the files too, and a later run over every prompt finds them all there.
   */
  @Test
  void twoConcurrentWritersLeaveEachKeyOnce() throws Exception {
    SparkSession spark = TestSupport.spark();
    String cache = cache("concurrent");
    Map<String, String> a = prompts(5); // p0..p4
    Map<String, String> b = new LinkedHashMap<>(TestSupport.referenceInput()); // p0..p7
    b.keySet().removeIf(id -> id.compareTo("p2") < 0); // p2..p7: p2, p3, p4 shared
    CyclicBarrier bothPlanned = new CyclicBarrier(2);
    BatchInference.CommitHook meet = (commit, commits, answers) -> {
      try {
        bothPlanned.await(120, TimeUnit.SECONDS);
      } catch (Exception e) {
        throw new IllegalStateException("the other run never got to its commit", e);
      }
      return answers;
    };
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      Future<JobResult> runA = pool.submit(() -> BatchInference.run(spark, TestSupport.options(args("a", a, cache)), meet));
      Future<JobResult> runB = pool.submit(() -> BatchInference.run(spark, TestSupport.options(args("b", b, cache)), meet));
      JobResult ra = runA.get(300, TimeUnit.SECONDS);
      JobResult rb = runB.get(300, TimeUnit.SECONDS);
      assertThat(List.of(ra.requests(), rb.requests())).as("neither found the other's answers: all computed")
          .containsExactly(5L, 6L);
    } finally {
      pool.shutdownNow();
    }

    List<String> commits = ResultCache.committed(cache, spark.sparkContext().hadoopConfiguration());
    assertThat(commits).as("one commit per run").hasSize(2);
    long stored = spark.read().parquet(commits.toArray(String[]::new)).count();
    assertThat(stored).as("the shared prompts are stored by both runs (the race happened)").isEqualTo(11);
    List<Row> seen = ResultCache.read(spark, cache).collectAsList();
    assertThat(seen).as("each of the 8 keys once to readers").hasSize(8);
    assertThat(seen.stream().map(r -> r.<String>getAs("key")).distinct().count()).isEqualTo(8);
    SqlRunner.register(spark, "concurrent_cache", cache);
    assertThat(spark.sql("SELECT count(*), count(DISTINCT key) FROM concurrent_cache").first().toSeq().mkString(","))
        .as("sql.sh --view shows the cache as readers see it").isEqualTo("8,8");

    String pruned = cache("pruned");
    spark.sql("INSERT OVERWRITE DIRECTORY '" + pruned + "/commit=pruned' USING parquet "
        + "SELECT * FROM concurrent_cache WHERE created_at >= current_timestamp() - INTERVAL 30 DAYS");
    List<String> prunedCommits = ResultCache.committed(pruned, spark.sparkContext().hadoopConfiguration());
    assertThat(prunedCommits).as("the prune is one commit").hasSize(1);
    assertThat(spark.read().parquet(prunedCommits.get(0)).count()).as("and holds each key once").isEqualTo(8);

    Map<String, String> all = new LinkedHashMap<>(a);
    all.putAll(b);
    JobResult third = run("all", all, pruned);
    assertThat(third.requests()).as("a later run finds every answer").isZero();
    assertThat(third.cacheHits()).isEqualTo(8);
    Map<String, List<Object>> expected = TestSupport.answers(spark, out("a"));
    expected.putAll(TestSupport.answers(spark, out("b")));
    assertThat(TestSupport.answers(spark, out("all"))).containsExactlyInAnyOrderEntriesOf(expected);
  }

  @Test
  void aCachePathThatHoldsSomethingElseIsRefused() throws IOException {
    Path other = Files.createDirectories(tmp.resolve("not-a-cache"));
    Files.writeString(other.resolve("part-0.parquet"), "x");
    assertThatThrownBy(() -> run("refused", prompts(1), other.toString()))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no result cache has");
    assertThatThrownBy(() -> TestSupport.options("--model", "m", "--input", "x.jsonl", "--output", out("o"),
        "--cache", out("o") + "/")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("is --output");
  }

  private long requests(String model, String name, Map<String, String> input, String cache, String... more) {
    return BatchInference.run(TestSupport.spark(), TestSupport.options(args(model, name, input, cache, more)))
        .requests();
  }
}
