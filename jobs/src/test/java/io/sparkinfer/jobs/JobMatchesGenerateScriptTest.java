package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.generate.ErrorCode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job on local[2] against {@code submit/generate.sh} run as a person runs it, in its own JVM, on the same
 * prompts file with the same options: each id's row equals generate.sh's line for that id. generate.sh runs
 * common's jar (common/target, built by {@code mvn install -pl common} before the jobs tests, or by the
 * script itself when missing). Sampled runs agree because both derive each request's seed from the run seed
 * and the id ({@code SamplingParams.requestSeed}).
 */
@Tag("slow")
class JobMatchesGenerateScriptTest {

  static final int MAX_NEW = 8;
  static final int MAX_PROMPT_TOKENS = 64;
  /** generate.sh with the test JVM's libtorch threads (jobs/pom.xml), so both run the same CPU kernels. */
  static final Map<String, String> ENV =
      Map.of("JAVA_OPTS", "-Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1");

  @TempDir
  Path tmp;

  @Test
  void greedyRowsEqualGenerateShLinesPerId() throws IOException {
    assertJobEqualsGenerateSh();
  }

  @Test
  void sampledRowsEqualGenerateShLinesWithTheSameDerivedSeeds() throws IOException {
    assertJobEqualsGenerateSh("--temperature", "0.9", "--top-k", "20", "--seed", "7");
  }

  /** The fixture's prompts, one repeated (deduplicated by the job under greedy decoding), and two that fail. */
  static Map<String, String> prompts() {
    Map<String, String> rows = new LinkedHashMap<>(TestSupport.referenceInput());
    rows.put("dup-of-p3", rows.get("p3"));
    rows.put("empty", "");
    rows.put("too-long", BatchInferenceJobLocalTest.LONG_PROMPT);
    return rows;
  }

  private void assertJobEqualsGenerateSh(String... sampling) throws IOException {
    Map<String, String> rows = prompts();
    String input = TestSupport.writeJsonl(tmp.resolve("prompts.jsonl"), rows).toString();
    String model = TestSupport.tinyModel().toString();
    List<String> common = List.of("--model", model, "--input", input, "--max-new-tokens", "" + MAX_NEW,
        "--max-prompt-tokens", "" + MAX_PROMPT_TOKENS, "--batch-size", "4", "--device", "cpu");

    Path lines = tmp.resolve("generate.jsonl");
    List<String> generate = new ArrayList<>(List.of("submit/generate.sh", "--output", lines.toString()));
    generate.addAll(common);
    generate.addAll(List.of(sampling));
    Shell.Result cli = Shell.run(ENV, 180, generate);
    assertThat(cli.status()).as("generate.sh: %s", cli).isZero();
    Map<String, JsonObject> expected = new HashMap<>();
    for (String line : Files.readAllLines(lines)) {
      JsonObject o = JsonParser.parseString(line).getAsJsonObject();
      expected.put(o.get("id").getAsString(), o);
    }
    assertThat(expected.keySet()).as("generate.sh answers every line").containsExactlyInAnyOrderElementsOf(rows.keySet());

    SparkSession spark = TestSupport.spark();
    String out = tmp.resolve("completions").toString();
    List<String> job = new ArrayList<>(List.of("--output", out));
    job.addAll(common);
    job.addAll(List.of(sampling));
    BatchInference.run(spark, TestSupport.options(job.toArray(String[]::new)));
    List<Row> written = spark.read().parquet(out).collectAsList();
    assertThat(written).extracting(r -> r.<String>getAs("id")).as("each input id exactly once")
        .containsExactlyInAnyOrderElementsOf(rows.keySet());

    for (Row r : written) {
      String id = r.getAs("id");
      JsonObject e = expected.get(id);
      assertThat(r.<String>getAs("completion")).as("completion of %s", id).isEqualTo(nullableString(e, "completion"));
      assertThat(r.<Long>getList(r.fieldIndex("output_token_ids"))).as("output_token_ids of %s", id)
          .isEqualTo(longs(e.getAsJsonArray("output_token_ids")));
      assertThat(r.<Integer>getAs("prompt_tokens")).as("prompt_tokens of %s", id)
          .isEqualTo(e.get("prompt_tokens").getAsInt());
      assertThat(r.<Integer>getAs("completion_tokens")).as("completion_tokens of %s", id)
          .isEqualTo(e.get("completion_tokens").getAsInt());
      assertThat(r.<String>getAs("finish_reason")).as("finish_reason of %s", id)
          .isEqualTo(e.get("finish_reason").getAsString());
      assertThat(r.<String>getAs("error_code")).as("error_code of %s", id).isEqualTo(nullableString(e, "error_code"));
    }
    // The comparison means something: real completions, and both error paths taken.
    assertThat(expected.get("p0").get("completion_tokens").getAsInt()).isPositive();
    assertThat(nullableString(expected.get("empty"), "error_code")).isEqualTo(ErrorCode.EMPTY_PROMPT);
    assertThat(nullableString(expected.get("too-long"), "error_code")).isEqualTo(ErrorCode.PROMPT_TOO_LONG);
  }

  private static String nullableString(JsonObject o, String key) {
    JsonElement e = o.get(key);
    return e == null || e.isJsonNull() ? null : e.getAsString();
  }

  private static List<Long> longs(Iterable<JsonElement> array) {
    List<Long> out = new ArrayList<>();
    array.forEach(x -> out.add(x.getAsLong()));
    return out;
  }
}
