package io.sparkinfer.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.SamplingParams;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Locates the reference checkpoints of {@code ../shared/fixtures} and reads their {@code reference.json}. */
public final class Fixtures {

  private Fixtures() {}

  /** The fixtures root: {@code -Dsparkinfer.fixtures}, else {@code ../shared/fixtures} beside the repo. */
  public static Path root() {
    String prop = System.getProperty("sparkinfer.fixtures");
    List<Path> candidates = new ArrayList<>();
    if (prop != null) {
      candidates.add(Path.of(prop));
    }
    Path here = Path.of("").toAbsolutePath();
    for (Path p = here; p != null; p = p.getParent()) {
      candidates.add(p.resolve("../shared/fixtures"));
    }
    for (Path c : candidates) {
      if (Files.isDirectory(c.resolve("qwen2-tiny"))) {
        return c.normalize();
      }
    }
    throw new IllegalStateException("shared fixtures not found (looked at " + candidates.get(0)
        + "); CI provides ../shared beside the repository");
  }

  public static Path model(String name) {
    return root().resolve(name);
  }

  /** A checkpoint under {@code common/src/test/resources/fixtures/} (made by make_family_fixtures.py). */
  public static Path bundled(String name) {
    try {
      java.net.URL url = Fixtures.class.getResource("/fixtures/" + name);
      if (url == null) {
        throw new IllegalStateException("test fixture " + name + " is missing from the test classpath");
      }
      return Path.of(url.toURI());
    } catch (java.net.URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The demo checkpoint shipped inside the repository. */
  public static Path demoModel() {
    Path here = Path.of("").toAbsolutePath();
    for (Path p = here; p != null; p = p.getParent()) {
      Path demo = p.resolve("common/demo/qwen2-code-demo");
      if (Files.isDirectory(demo)) {
        return demo;
      }
    }
    assumeTrue(false, "demo model not found");
    return null;
  }

  /** One prompt of a {@code reference.json}: what transformers computed for it. */
  public record Case(String prompt, long[] inputIds, long[] greedyIds, String greedyText, float[] lastLogits) {}

  public static List<Case> reference(Path modelDir) {
    try {
      JsonObject root = JsonParser.parseString(
          Files.readString(modelDir.resolve("reference.json"), StandardCharsets.UTF_8)).getAsJsonObject();
      List<Case> cases = new ArrayList<>();
      for (JsonElement e : root.getAsJsonArray("cases")) {
        JsonObject c = e.getAsJsonObject();
        cases.add(new Case(c.get("prompt").getAsString(), longs(c.getAsJsonArray("input_ids")),
            longs(c.getAsJsonArray("greedy_ids")), c.get("greedy_text").getAsString(),
            floats(c.getAsJsonArray("last_logits"))));
      }
      return cases;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Each case's prompt as a greedy request ({@code p0}, {@code p1}, ...) for as many tokens as its reference ids,
   * past eos (the references run past it).
   */
  public static List<GenerationRequest> referenceRequests(List<Case> cases) {
    List<GenerationRequest> requests = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      requests.add(new GenerationRequest("p" + i, cases.get(i).prompt(), cases.get(i).greedyIds().length,
          SamplingParams.GREEDY, List.of(), true));
    }
    return requests;
  }

  /** The reference ids of every case, counted. */
  public static int referenceTokens(List<Case> cases) {
    return cases.stream().mapToInt(c -> c.greedyIds().length).sum();
  }

  /** How many leading ids of each completion (of {@link #referenceRequests}) are its case's greedy ids, summed. */
  public static int leadingAgreement(List<Completion> out, List<Case> cases) {
    int n = 0;
    for (int i = 0; i < cases.size(); i++) {
      long[] reference = cases.get(i).greedyIds();
      int mismatch = Arrays.mismatch(out.get(i).outputTokenIds(), reference);
      n += mismatch < 0 ? reference.length : mismatch;
    }
    return n;
  }

  /** Runs each case's prompt through the engine's backend alone (one prefill) and returns its last-position logits. */
  public static float[][] lastLogits(LlmEngine engine, List<Case> cases) {
    CausalLmBackend model = engine.generator().backend();
    float[][] out = new float[cases.size()][];
    try (NDManager scope = NDManager.newBaseManager(engine.device())) {
      for (int i = 0; i < cases.size(); i++) {
        long[] ids = cases.get(i).inputIds();
        long[] pos = new long[ids.length];
        Arrays.setAll(pos, j -> j);
        try (NDManager step = scope.newSubManager();
            BatchCache cache = model.allocateCache(step, 1, ids.length)) {
          ForwardBatch batch = new ForwardBatch(step.create(ids, new Shape(1, ids.length)),
              step.create(pos, new Shape(1, ids.length)), step.create(new long[] {ids.length - 1}), ids.length);
          NDArray logits = model.forward(step, batch, cache);
          out[i] = logits.toFloatArray();
        }
      }
    }
    return out;
  }

  private static long[] longs(JsonArray a) {
    long[] out = new long[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).getAsLong();
    }
    return out;
  }

  private static float[] floats(JsonArray a) {
    float[] out = new float[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).getAsFloat();
    }
    return out;
  }
}
