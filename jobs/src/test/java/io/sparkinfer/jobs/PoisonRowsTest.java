package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.sparkinfer.generate.ErrorCode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad rows among good ones: each becomes an error row with its code (under a stable id made of its file and line
 * when it has no readable id), every other row is answered, and ok + error rows = the input's rows.
 */
@Tag("slow")
class PoisonRowsTest {

  static final String MODEL = TestSupport.tinyModel().toString();
  static final String[] RUN = {"--model", MODEL, "--max-new-tokens", "2", "--max-prompt-tokens", "64"};

  @TempDir
  Path tmp;

  /** What a test expects of one line of its input: the id it is answered under and its error code (null: ok). */
  record Expected(String id, String errorCode) {}

  @Test
  void jsonlLinesThatCannotRunAreErrorRowsAndTheOthersAreAnswered() throws IOException {
    SparkSession spark = TestSupport.spark();
    Path file = tmp.resolve("in/prompts.jsonl");
    Lines lines = new Lines();
    lines.json("ok-1", "def add(a, b):");
    lines.raw("{\"id\": \"bad-json\", \"prompt\": ", new Expected("_line:prompts.jsonl:" + (lines.count() + 1),
        ErrorCode.INVALID_REQUEST));
    lines.blank();
    lines.raw("{\"id\": \"null-prompt\", \"prompt\": null}", new Expected("null-prompt", ErrorCode.EMPTY_PROMPT));
    lines.raw("{\"id\": \"empty\", \"prompt\": \"\"}", new Expected("empty", ErrorCode.EMPTY_PROMPT));
    lines.raw("{\"id\": \"too-long\", \"prompt\": \"" + "x = 1\\n".repeat(200) + "\"}",
        new Expected("too-long", ErrorCode.PROMPT_TOO_LONG));
    lines.bytes("{\"id\": \"not-utf8\", \"prompt\": \"caf".getBytes(StandardCharsets.UTF_8),
        new byte[] {(byte) 0xC3, (byte) 0x28}, "\"}".getBytes(StandardCharsets.UTF_8),
        new Expected("not-utf8", ErrorCode.INVALID_ENCODING));
    lines.json("ok-2", "class Stack:");
    lines.raw("{\"id\": \"number-prompt\", \"prompt\": 42}", new Expected("number-prompt", ErrorCode.INVALID_REQUEST));
    lines.raw("{\"id\": \"object-prompt\", \"prompt\": {\"text\": \"hi\"}}",
        new Expected("object-prompt", ErrorCode.INVALID_REQUEST));
    lines.raw("{\"prompt\": \"def no_id():\"}", new Expected("_line:prompts.jsonl:" + (lines.count() + 1),
        ErrorCode.INVALID_REQUEST));
    lines.raw("[\"an\", \"array\"]", new Expected("_line:prompts.jsonl:" + (lines.count() + 1),
        ErrorCode.INVALID_REQUEST));
    lines.raw("{\"id\": 7, \"prompt\": \"import os\"}", new Expected("7", null));
    lines.blank();
    lines.json("ok-3", "for i in range(10):");
    lines.write(file);

    // Splits of a few lines each: line numbers and positions must still be those of the whole file.
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    hadoop.setLong("mapreduce.input.fileinputformat.split.maxsize", 300);
    String out = tmp.resolve("out").toString();
    JobResult result;
    try {
      result = BatchInference.run(spark, TestSupport.options(args("--input", file.toString(), "--output", out)));
    } finally {
      hadoop.unset("mapreduce.input.fileinputformat.split.maxsize");
    }

    Map<String, Row> byId = byId(spark, out);
    assertThat(byId.keySet()).as("every line that is not blank answered once, under these ids")
        .containsExactlyInAnyOrderElementsOf(lines.ids());
    for (Expected e : lines.expected) {
      assertThat(byId.get(e.id()).<String>getAs("error_code")).as("error_code of %s", e.id()).isEqualTo(e.errorCode());
      if (e.errorCode() == null) {
        assertThat(byId.get(e.id()).<Integer>getAs("completion_tokens")).as("completion of %s", e.id()).isPositive();
      }
    }
    assertThat(byId.get("_line:prompts.jsonl:2").<String>getAs("error_message"))
        .startsWith("line 2 of prompts.jsonl is not a JSON object");
    assertThat(byId.get("not-utf8").<String>getAs("error_message")).contains("not valid UTF-8");
    assertThat(byId.get("not-utf8").<String>getAs("prompt")).as("the prompt with its bad bytes replaced")
        .isEqualTo("caf\uFFFD(");
    assertThat(byId.get("number-prompt").<String>getAs("error_message"))
        .isEqualTo("line " + lines.lineOf("number-prompt") + " of prompts.jsonl: the prompt ('prompt') must be a "
            + "string, not a number: 42");
    assertThat(byId.get("_line:prompts.jsonl:" + lines.lineOf("def no_id")).<String>getAs("error_message"))
        .endsWith("has no id ('id')");

    assertInvariant(result, lines.rows(), lines.expected);
    Row run = spark.read().parquet(out + "/_job_runs").first();
    assertThat(run.<Long>getAs("input_error_rows")).isEqualTo(lines.count(ErrorCode.INVALID_REQUEST)
        + lines.count(ErrorCode.INVALID_ENCODING));

    JobResult again = BatchInference.run(spark, TestSupport.options(args("--input", file.toString(), "--output", out,
        "--resume")));
    assertThat(again.skippedRows()).as("the bad lines keep their ids: a resume finds every row answered")
        .isEqualTo(lines.rows());
    assertThat(again.rows()).isZero();
  }

  @Test
  void aCsvRecordWithABrokenQuoteCostsThatRecordOnly() throws IOException {
    SparkSession spark = TestSupport.spark();
    Path file = tmp.resolve("csv/prompts.csv");
    Lines lines = new Lines();
    lines.raw("id,prompt", null);
    lines.raw("a,\"def add(a, b):\"", new Expected("a", null));
    lines.raw("b,\"class A:", new Expected("b", null));
    lines.raw("    pass\"", null);
    lines.raw("broken,\"def f(x):", new Expected("_line:prompts.csv:" + (lines.count() + 1),
        ErrorCode.INVALID_REQUEST));
    lines.raw("c,import sys", new Expected("c", null));
    lines.raw("d,\"print(\"\"hi\"\")\"", new Expected("d", null));
    lines.raw("e,\"closed\" trailing", new Expected("_line:prompts.csv:" + (lines.count() + 1),
        ErrorCode.INVALID_REQUEST));
    lines.raw("three,fields,here", new Expected("_line:prompts.csv:" + (lines.count() + 1),
        ErrorCode.INVALID_REQUEST));
    lines.raw(",def no_id():", new Expected("_line:prompts.csv:" + (lines.count() + 1), ErrorCode.INVALID_REQUEST));
    lines.raw("empty,", new Expected("empty", ErrorCode.EMPTY_PROMPT));
    lines.blank();
    lines.raw("f,while True:", new Expected("f", null));
    lines.bytes("not-utf8,caf".getBytes(StandardCharsets.UTF_8), new byte[] {(byte) 0xC3, (byte) 0x28}, new byte[0],
        new Expected("not-utf8", ErrorCode.INVALID_ENCODING));
    lines.write(file);

    String out = tmp.resolve("out").toString();
    JobResult result = BatchInference.run(spark, TestSupport.options(args("--input", file.toString(), "--output", out)));
    Map<String, Row> byId = byId(spark, out);
    assertThat(byId.keySet()).containsExactlyInAnyOrderElementsOf(lines.ids());
    for (Expected e : lines.expected) {
      assertThat(byId.get(e.id()).<String>getAs("error_code")).as("error_code of %s", e.id()).isEqualTo(e.errorCode());
    }
    assertThat(byId.get("b").<String>getAs("prompt")).isEqualTo("class A:\n    pass");
    assertThat(byId.get("d").<String>getAs("prompt")).isEqualTo("print(\"hi\")");
    assertThat(byId.get("_line:prompts.csv:5").<String>getAs("error_message"))
        .isEqualTo("line 5 of prompts.csv: cannot read the record: text after the closing quote of field 2 (on line "
            + "7): 'print(\"\"hi\"\")\"'");
    assertThat(byId.get("_line:prompts.csv:9").<String>getAs("error_message"))
        .isEqualTo("line 9 of prompts.csv: 3 fields where the header has 2");
    assertInvariant(result, lines.expected.size(), lines.expected);
  }

  @Test
  void parquetRowsWithoutAnIdOrWithBytesThatAreNotUtf8AreErrorRows() {
    SparkSession spark = TestSupport.spark();
    String in = tmp.resolve("in-parquet").toString();
    spark.sql("SELECT * FROM VALUES ('a', 'def add(a, b):'), (NULL, 'def no_id():'), "
        + "('not-utf8', CAST(unhex('636166C328') AS STRING)), ('b', 'import os') AS t(id, prompt)")
        .coalesce(1).write().parquet(in);
    String out = tmp.resolve("out").toString();
    JobResult result = BatchInference.run(spark, TestSupport.options(args("--input", in, "--output", out)));
    Map<String, Row> byId = byId(spark, out);
    String partFile = spark.read().parquet(in).select(org.apache.spark.sql.functions.col("_metadata.file_name"))
        .first().getString(0);
    List<Expected> expected = List.of(new Expected("a", null), new Expected("_row:" + partFile + ":2",
        ErrorCode.INVALID_REQUEST), new Expected("not-utf8", ErrorCode.INVALID_ENCODING), new Expected("b", null));
    assertThat(byId.keySet()).containsExactlyInAnyOrderElementsOf(expected.stream().map(Expected::id).toList());
    for (Expected e : expected) {
      assertThat(byId.get(e.id()).<String>getAs("error_code")).as("error_code of %s", e.id()).isEqualTo(e.errorCode());
    }
    assertThat(byId.get("_row:" + partFile + ":2").<String>getAs("error_message"))
        .isEqualTo("row 2 of " + partFile + " has no id ('id' is null)");
    assertInvariant(result, expected.size(), expected);
  }

  @Test
  void aParquetPromptColumnOfTheWrongTypeFailsBeforeAnyWork() {
    SparkSession spark = TestSupport.spark();
    String in = tmp.resolve("struct-prompts").toString();
    spark.sql("SELECT CAST(id AS STRING) AS id, named_struct('text', 'def f():') AS prompt FROM range(2)").write()
        .parquet(in);
    String out = tmp.resolve("out").toString();
    assertThatThrownBy(() -> BatchInference.run(spark, TestSupport.options(args("--input", in, "--output", out))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("--input " + in + ": column 'prompt' is struct<text:string>, not a string; name the prompt "
            + "column with --prompt-column");
    assertThat(tmp.resolve("out")).as("nothing written").doesNotExist();
  }

  @Test
  void aJsonlInputWithoutAnIdColumnNumbersItsRowsAndNamesItsBadLinesByPosition() throws IOException {
    SparkSession spark = TestSupport.spark();
    Path dir = tmp.resolve("no-ids");
    Lines first = new Lines();
    first.raw("{\"prompt\": \"def a():\"}", new Expected("row-0", null));
    first.raw("{\"prompt\": ", new Expected("_line:a.jsonl:2", ErrorCode.INVALID_REQUEST));
    first.raw("{\"prompt\": \"def b():\"}", new Expected("row-2", null));
    first.write(dir.resolve("a.jsonl"));
    Lines second = new Lines();
    second.blank();
    second.raw("{\"prompt\": \"def c():\"}", new Expected("row-3", null));
    second.write(dir.resolve("sub/b.jsonl"));
    String out = tmp.resolve("out").toString();
    JobResult result = BatchInference.run(spark, TestSupport.options(args("--input", dir.toString(), "--output", out)));
    Map<String, Row> byId = byId(spark, out);
    List<Expected> expected = new ArrayList<>(first.expected);
    expected.addAll(second.expected);
    assertThat(byId.keySet()).as("rows numbered over the files in path order; a bad line named by its file and line")
        .containsExactlyInAnyOrderElementsOf(expected.stream().map(Expected::id).toList());
    assertInvariant(result, expected.size(), expected);
  }

  /** ok + error rows = the input's rows; the error rows are exactly those expected. */
  private static void assertInvariant(JobResult result, long inputRows, List<Expected> expected) {
    long errors = expected.stream().filter(e -> e.errorCode() != null).count();
    assertThat(result.inputRows()).as("input rows: the lines (records) that are not blank").isEqualTo(inputRows);
    assertThat(result.okRows() + result.errorRows()).as("ok + error = input rows").isEqualTo(result.inputRows());
    assertThat(result.errorRows()).isEqualTo(errors);
    assertThat(result.inputErrorRows()).isEqualTo(expected.stream().filter(e -> e.errorCode() != null
        && InputRows.ERROR_CODES.contains(e.errorCode())).count());
  }

  private static Map<String, Row> byId(SparkSession spark, String out) {
    Map<String, Row> byId = new HashMap<>();
    for (Row r : spark.read().parquet(out).collectAsList()) {
      assertThat(byId.put(r.getAs("id"), r)).as("id %s once", r.<String>getAs("id")).isNull();
    }
    return byId;
  }

  private static String[] args(String... more) {
    List<String> all = new ArrayList<>(List.of(RUN));
    all.addAll(List.of(more));
    return all.toArray(String[]::new);
  }

  /** An input file written line by line, with what each line that is a row should give. */
  static final class Lines {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    final List<Expected> expected = new ArrayList<>();
    final Map<String, Long> lineOfText = new LinkedHashMap<>();
    private long lines;
    private long rows;

    void json(String id, String prompt) {
      raw("{\"id\": \"" + id + "\", \"prompt\": \"" + prompt + "\"}", new Expected(id, null));
    }

    void raw(String line, Expected e) {
      bytes(line.getBytes(StandardCharsets.UTF_8), new byte[0], new byte[0], e);
      lineOfText.put(line, lines);
    }

    void bytes(byte[] a, byte[] b, byte[] c, Expected e) {
      bytes.writeBytes(a);
      bytes.writeBytes(b);
      bytes.writeBytes(c);
      bytes.write('\n');
      lines++;
      rows++;
      if (e != null) {
        expected.add(e);
      }
    }

    void blank() {
      bytes.writeBytes("  \n".getBytes(StandardCharsets.UTF_8));
      lines++;
    }

    long count() {
      return lines;
    }

    /** Lines that are not blank. */
    long rows() {
      return rows;
    }

    long count(String errorCode) {
      return expected.stream().filter(e -> errorCode.equals(e.errorCode())).count();
    }

    /** The number of the first line containing {@code text}. */
    long lineOf(String text) {
      return lineOfText.entrySet().stream().filter(e -> e.getKey().contains(text)).findFirst().orElseThrow()
          .getValue();
    }

    List<String> ids() {
      return expected.stream().map(Expected::id).toList();
    }

    void write(Path file) throws IOException {
      Files.createDirectories(file.getParent());
      Files.write(file, bytes.toByteArray());
    }
  }
}
