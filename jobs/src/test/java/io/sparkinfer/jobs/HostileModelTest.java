package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.model.Precision;
import io.sparkinfer.safetensors.SafetensorsWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile or broken checkpoints given to the job: each is refused on the driver before any Spark work, with exit
 * status 2 and a message that names the file and what is wrong with it, and nothing is written to the output.
 * Each is also refused by the engine's own loader, which is what executors run, so a model that changed
 * between the driver's check and an executor's load is still refused there, before its weights are read.
 *
 * <p>Every case starts from a copy of the {@code qwen2-tiny} fixture (BF16 weights, vocabulary 512, hidden 64,
 * 2 layers, tied embeddings) and breaks one thing, with common's {@link SafetensorsWriter} for the weights.
 */
class HostileModelTest {

  @TempDir
  Path tmp;

  /** One broken checkpoint: how it is broken, the file the error must name, and what it must say. */
  record Case(String name, Breakage breakage, String file, String problem) {
    @Override
    public String toString() {
      return name;
    }
  }

  @FunctionalInterface
  interface Breakage {
    void apply(Path model, Path outside) throws IOException;
  }

  static Stream<Case> cases() {
    return Stream.of(
        new Case("oversized safetensors header", (m, o) -> SafetensorsWriter.writeRaw(m.resolve("model.safetensors"),
            1L << 40, "{}".getBytes(StandardCharsets.UTF_8), new byte[16]),
            "model.safetensors", "header length 1099511627776 is outside 1..104857600 bytes"),
        new Case("offsets past the end of the file", (m, o) -> editHeader(m, h -> {
          JsonArray offsets = tensor(h, "model.norm.weight").getAsJsonArray("data_offsets");
          long size = dataSize(m);
          offsets.set(0, new JsonPrimitive(offsets.get(0).getAsLong() + size));
          offsets.set(1, new JsonPrimitive(offsets.get(1).getAsLong() + size));
          return h;
        }), "model.safetensors", "fall outside the"),
        new Case("overlapping tensors", (m, o) -> editHeader(m, h -> {
          tensor(h, "model.layers.0.post_attention_layernorm.weight").add("data_offsets",
              tensor(h, "model.layers.0.input_layernorm.weight").get("data_offsets").deepCopy());
          return h;
        }), "model.safetensors", "overlap"),
        new Case("a dtype whose size disagrees with the bytes", (m, o) -> editHeader(m, h -> {
          tensor(h, "model.norm.weight").addProperty("dtype", "F32");
          return h;
        }), "model.safetensors", "data_offsets span 128 bytes but dtype F32 and shape [64] need 256"),
        new Case("a weight of an integer dtype", (m, o) -> editHeader(m, h -> {
          tensor(h, "model.norm.weight").addProperty("dtype", "I16");
          return h;
        }), "model.safetensors", "tensor 'model.norm.weight' has dtype I16; weights must be F32, F16 or BF16"),
        new Case("vocabulary of 10^12 in config.json", (m, o) -> editConfig(m, "vocab_size", 1_000_000_000_000L),
            "config.json", "vocab_size must be an integer, got 1000000000000"),
        new Case("10^6 layers in config.json", (m, o) -> editConfig(m, "num_hidden_layers", 1_000_000),
            "config.json", "num_hidden_layers 1000000 is over 4096"),
        new Case("a vocabulary the weights do not have", (m, o) -> editConfig(m, "vocab_size", 1_000_000),
            "model.safetensors", "tensor 'model.embed_tokens.weight' has shape [512, 64] but config.json implies "
                + "[1000000, 64]"),
        new Case("a tokenizer that does not load", (m, o) -> Files.writeString(m.resolve("tokenizer.json"),
            "{\"model\": {\"type\": \"BPE\", \"vocab\": 7}}"), "tokenizer.json", "cannot load"),
        new Case("a tokenizer of 256 MiB and one byte", (m, o) -> {
          try (RandomAccessFile f = new RandomAccessFile(m.resolve("tokenizer.json").toFile(), "rw")) {
            f.setLength((256L << 20) + 1); // sparse: nothing is written to disk
          }
        }, "tokenizer.json", "has 268435457 bytes, over the 268435456 this engine reads"),
        new Case("pickle weights only", (m, o) -> {
          Files.delete(m.resolve("model.safetensors"));
          Files.write(m.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 0x02, 'c', 'o', 's'});
        }, "", "holds only pickle-based weights (pytorch_model.bin)"),
        new Case("weights linked from outside the model directory", (m, o) -> {
          Path elsewhere = Files.move(m.resolve("model.safetensors"), o.resolve("model.safetensors"));
          Files.createSymbolicLink(m.resolve("model.safetensors"), elsewhere);
        }, "model.safetensors", "outside the model directory"),
        new Case("config.json linked through .. to another model's", (m, o) -> {
          Files.move(m.resolve("config.json"), o.resolve("config.json"));
          Files.createSymbolicLink(m.resolve("config.json"), Path.of("../outside/config.json"));
        }, "config.json", "outside the model directory"),
        new Case("an index naming a shard through ..", (m, o) -> {
          Files.move(m.resolve("model.safetensors"), o.resolve("x.safetensors"));
          JsonObject map = new JsonObject();
          for (String name : header(o.resolve("x.safetensors")).keySet()) {
            if (!name.equals("__metadata__")) {
              map.addProperty(name, "../outside/x.safetensors");
            }
          }
          JsonObject index = new JsonObject();
          index.add("weight_map", map);
          Files.writeString(m.resolve("model.safetensors.index.json"), index.toString());
        }, "model.safetensors.index.json", "shard '../outside/x.safetensors' must be a .safetensors file in"));
  }

  /** A writable copy of the fixture, broken by {@code c}; {@code tmp/outside} is a directory beside it. */
  private Path broken(Case c) throws IOException {
    Path model = Files.createDirectories(tmp.resolve("model"));
    Path outside = Files.createDirectories(tmp.resolve("outside"));
    try (Stream<Path> files = Files.list(TestSupport.tinyModel())) {
      for (Path f : files.toList()) {
        Path copy = model.resolve(f.getFileName());
        Files.copy(f, copy);
        copy.toFile().setWritable(true);
      }
    }
    c.breakage().apply(model, outside);
    return model;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void theJobRefusesItBeforeSparkStartsWithExitStatus2NamingTheFileAndTheProblem(Case c) throws IOException {
    Path model = broken(c);
    Path input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), Map.of("a", "def f():"));
    Path out = tmp.resolve("out");
    ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    ByteArrayOutputStream stderr = new ByteArrayOutputStream();

    int status = BatchInferenceJob.run(new String[] {"--model", model.toString(), "--input", input.toString(),
        "--output", out.toString()}, new PrintStream(stdout, true, StandardCharsets.UTF_8),
        new PrintStream(stderr, true, StandardCharsets.UTF_8));

    String err = stderr.toString(StandardCharsets.UTF_8);
    assertThat(status).as("exit status; stderr: %s", err).isEqualTo(BatchInferenceJob.EXIT_USAGE);
    String firstLine = err.lines().findFirst().orElse("");
    assertThat(firstLine).as("the error names the model, the file and the problem")
        .startsWith("error: --model " + model + ": ").contains(model.resolve(c.file()).toString())
        .contains(c.problem());
    assertThat(out).as("nothing written to the output").doesNotExist();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void theLoaderExecutorsRunRefusesItToo(Case c) throws IOException {
    Path model = broken(c);

    assertThatThrownBy(() -> LlmEngine.load(EngineOptions.of(model, Precision.FP32, "cpu")).close())
        .isInstanceOf(ModelLoadException.class).hasMessageContaining(c.problem());
    if (c.file().equals("config.json") || c.file().equals("tokenizer.json")) {
      assertThatThrownBy(() -> ExecutorEngines.tokenizer(model)).as("planning's tokenizer, which reads these files")
          .isInstanceOf(ModelLoadException.class).hasMessageContaining(c.problem());
    }
  }

  @Test
  void inARunningSessionTheModelIsCheckedBeforeAnySparkJob() throws Exception {
    Case c = cases().filter(k -> k.name().equals("weights linked from outside the model directory")).findFirst()
        .orElseThrow();
    Path model = broken(c);
    Path input = TestSupport.writeJsonl(tmp.resolve("in.jsonl"), Map.of("a", "def f():"));
    Path out = tmp.resolve("out");
    SparkSession spark = TestSupport.spark();
    int jobs = TestSupport.sparkJobsDuring(spark, () -> assertThatThrownBy(() -> BatchInference.run(spark,
        TestSupport.options("--model", model.toString(), "--input", input.toString(), "--output", out.toString())))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("outside the model directory"));
    assertThat(jobs).as("Spark jobs started").isZero();
    assertThat(out).doesNotExist();
  }

  // ---- breaking the fixture's files ----

  private static JsonObject tensor(JsonObject header, String name) {
    return header.getAsJsonObject(name);
  }

  /** The JSON header of a safetensors file. */
  private static JsonObject header(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    long length = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    return JsonParser.parseString(new String(bytes, 8, (int) length, StandardCharsets.UTF_8)).getAsJsonObject();
  }

  private static long dataSize(Path model) {
    try {
      Path file = model.resolve("model.safetensors");
      return Files.size(file) - 8 - ByteBuffer.wrap(Files.readAllBytes(file), 0, 8).order(ByteOrder.LITTLE_ENDIAN)
          .getLong();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Rewrites model.safetensors with an edited header in front of the same data. */
  private static void editHeader(Path model, UnaryOperator<JsonObject> edit) throws IOException {
    Path file = model.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(file);
    long length = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    JsonObject header = edit.apply(header(file));
    byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
    SafetensorsWriter.writeRaw(file, json.length, json, Arrays.copyOfRange(bytes, (int) (8 + length), bytes.length));
  }

  private static void editConfig(Path model, String key, long value) throws IOException {
    Path file = model.resolve("config.json");
    JsonObject config = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
    config.addProperty(key, value);
    Files.writeString(file, config.toString());
  }
}
