package io.sparkinfer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.backend.scripted.ScriptedOptions;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.testing.Fixtures;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GenerateCommandTest {

  record Result(int status, String stdout, String stderr) {}

  static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status = GenerateCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void helpListsEveryOption() {
    Result r = run("--help");
    assertThat(r.status()).isZero();
    for (Option<?> o : GenerateCommand.OPTIONS.options()) {
      assertThat(r.stdout()).contains("--" + o.name());
    }
    assertThat(r.stdout()).contains("usage: submit/generate.sh").contains("(default: 64)")
        .contains("engine options:").contains("generation options:");
  }

  /** Also under layouts of several generators (threads, replicas) and split replicas: the same lines in order. */
  @ParameterizedTest(name = "--layout {0}")
  @ValueSource(strings = {"replicas=1", "threads=3", "replicas=2,tp=2", "pp=2,threads=2"})
  void reproducesReferenceGreedyIdsAndTurnsBadLinesIntoErrorLines(String layout, @TempDir Path tmp) throws Exception {
    Path model = Fixtures.model("qwen2-tiny");
    List<Fixtures.Case> cases = Fixtures.reference(model);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      JsonObject o = new JsonObject();
      o.addProperty("id", 100 + i); // numeric ids stay numeric
      o.addProperty("prompt", cases.get(i).prompt());
      lines.add(o.toString());
    }
    lines.add(2, "{not json");
    lines.add(4, "{\"id\": \"no-prompt\"}");
    lines.add(5, "{\"id\": \"bad-type\", \"prompt\": 7}");
    lines.add(6, "");
    lines.add(7, "{\"id\": \"empty\", \"prompt\": \"\"}");
    Path input = tmp.resolve("in.jsonl");
    Path output = tmp.resolve("out/completions.jsonl");
    Files.write(input, lines);

    Result r = run("--model", model.toString(), "--input", input.toString(), "--output", output.toString(),
        "--max-new-tokens", "16", "--batch-size", "3", "--device", "cpu", "--progress-seconds", "0",
        "--layout", layout);
    assertThat(r.status()).as(r.stderr()).isZero();
    assertThat(r.stderr()).contains("done: 12 prompts (8 ok, 4 errors)");
    if (!layout.equals("replicas=1")) {
      assertThat(r.stderr()).contains("layout " + io.sparkinfer.layout.Layout.parse(layout).label());
    } else {
      assertThat(r.stderr()).as("the batch sizes that ran").contains("batch sizes 3)");
    }

    List<JsonObject> out = Files.readAllLines(output).stream().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
    assertThat(out).hasSize(12); // the blank line is skipped
    assertThat(out.get(2).get("id").getAsString()).isEqualTo("line-3");
    assertThat(out.get(2).get("error_code").getAsString()).isEqualTo("invalid_request");
    assertThat(out.get(2).get("error").getAsString()).contains("not valid JSON");
    assertThat(out.get(4).get("id").getAsString()).isEqualTo("no-prompt");
    assertThat(out.get(4).get("error_code").getAsString()).isEqualTo("empty_prompt");
    assertThat(out.get(5).get("error_code").getAsString()).isEqualTo("invalid_request");
    assertThat(out.get(5).get("error").getAsString()).contains("prompt must be a string");
    assertThat(out.get(6).get("error_code").getAsString()).isEqualTo("empty_prompt");
    assertThat(out.get(6).get("finish_reason").getAsString()).isEqualTo("error");
    assertThat(out.get(6).get("completion").isJsonNull()).isTrue();

    int next = 0;
    for (JsonObject o : out) {
      if (o.get("error").isJsonNull()) {
        Fixtures.Case c = cases.get(next);
        assertThat(o.get("id").getAsJsonPrimitive().isNumber()).isTrue();
        assertThat(o.get("id").getAsInt()).isEqualTo(100 + next);
        long[] ids = new long[o.getAsJsonArray("output_token_ids").size()];
        for (int j = 0; j < ids.length; j++) {
          ids[j] = o.getAsJsonArray("output_token_ids").get(j).getAsLong();
        }
        assertThat(ids).as(c.prompt()).containsExactly(c.greedyIds());
        assertThat(o.get("completion").getAsString()).isEqualTo(c.greedyText());
        assertThat(o.get("prompt_tokens").getAsInt()).isEqualTo(c.inputIds().length);
        assertThat(o.get("completion_tokens").getAsInt()).isEqualTo(16);
        assertThat(o.get("finish_reason").getAsString()).isEqualTo("length");
        assertThat(o.has("error_code")).isTrue();
        next++;
      }
    }
    assertThat(next).isEqualTo(cases.size());
  }

  @Test
  void perLineSettingsOverrideTheOptions(@TempDir Path tmp) throws Exception {
    Path model = Fixtures.model("qwen2-code-demo");
    Fixtures.Case c = Fixtures.reference(model).get(2);
    Path input = tmp.resolve("in.jsonl");
    JsonObject line = new JsonObject();
    line.addProperty("id", "a");
    line.addProperty("prompt", c.prompt());
    line.addProperty("max_new_tokens", 3);
    JsonObject stop = line.deepCopy();
    stop.addProperty("id", "b");
    stop.addProperty("max_new_tokens", 32);
    stop.addProperty("stop", "self.current");
    Files.write(input, List.of(line.toString(), stop.toString()));
    Path output = tmp.resolve("out.jsonl");
    Result r = run("--model", model.toString(), "--input", input.toString(), "--output", output.toString(),
        "--max-new-tokens", "10");
    assertThat(r.status()).as(r.stderr()).isZero();
    List<JsonObject> out = Files.readAllLines(output).stream().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
    assertThat(r.stderr()).as("--batch-size auto (the default) fits both prompts in one batch")
        .contains("batch sizes 2)");
    assertThat(out.get(0).get("completion_tokens").getAsInt()).isEqualTo(3);
    assertThat(out.get(1).get("finish_reason").getAsString()).isEqualTo("stop");
    assertThat(out.get(1).get("completion").getAsString()).isEqualTo(c.greedyText().substring(0, c.greedyText().indexOf("self.current")));
  }

  @Test
  void badOptionsExitWith2AndSayWhy() {
    assertThat(run("--bogus")).satisfies(r -> {
      assertThat(r.status()).isEqualTo(2);
      assertThat(r.stderr()).contains("unknown option --bogus");
    });
    assertThat(run("--model", "m", "--input", "i", "--max-new-tokens", "abc").stderr())
        .contains("--max-new-tokens must be an integer, got 'abc'");
    assertThat(run("--model", "m", "--input", "i", "--batch-size", "-1").stderr())
        .contains("--batch-size must be >= 1 or auto, got '-1'");
    assertThat(run("--model", "m", "--input", "i", "--precision", "int4").stderr())
        .contains("--precision must be one of auto, fp32, fp16, bf16, fp8, got 'int4'");
    assertThat(run("--model", "m", "--input", "i", "--top-p", "2").stderr()).contains("top-p must be in (0, 1]");
    assertThat(run("--model").stderr()).contains("--model needs a value");
    assertThat(run("--model", "m", "--input", "i", "--ignore-eos=maybe").stderr()).contains("--ignore-eos is a flag");
    assertThat(run("--model", "m", "--model", "n").stderr()).contains("--model given more than once");
    assertThat(run("--help=false").status()).as("--help=false is not a request for help").isNotZero();
  }

  @Test
  void flagsThatDefaultToOnAreTurnedOffWithFalse() {
    OptionValues on = GenerateCommand.OPTIONS.resolve(GenerateCommand.OPTIONS.parse(), k -> null, k -> null);
    assertThat(on.get(ScriptedOptions.CUDA_GRAPHS)).isTrue();
    OptionValues off = GenerateCommand.OPTIONS.resolve(GenerateCommand.OPTIONS.parse("--cuda-graphs=false"), k -> null,
        k -> null);
    assertThat(off.get(ScriptedOptions.CUDA_GRAPHS)).isFalse();
    assertThat(run("--model", "m", "--input", "i", "--cuda-graphs=maybe").stderr()).contains("--cuda-graphs is a flag");
  }

  @Test
  void missingModelOrInputExitWith1AndSayWhich(@TempDir Path tmp) throws Exception {
    Path input = tmp.resolve("in.jsonl");
    Files.writeString(input, "{\"id\": 1, \"prompt\": \"x\"}\n");
    Result noModel = run("--model", tmp.resolve("missing").toString(), "--input", input.toString());
    assertThat(noModel.status()).isEqualTo(1);
    assertThat(noModel.stderr()).contains("cannot load the model").contains("missing");
    Result noInput = run("--model", Fixtures.model("qwen2-tiny").toString(), "--input", tmp.resolve("nope.jsonl").toString());
    assertThat(noInput.status()).isEqualTo(1);
    assertThat(noInput.stderr()).contains("no such file").contains("nope.jsonl");
  }
}
