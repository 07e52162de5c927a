package io.sparkinfer.bench;

import ai.djl.pytorch.jni.JniUtils;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.Precision;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where a prefill's GPU time goes, by libtorch op: prompts of a JSONL file (rows with a {@code "prompt"}) prefilled
 * with one new token each (so nearly all the work is prefill), timed plain, then again under libtorch's profiler
 * with CUDA timing ({@code JniUtils.startProfile}), whose trace is written to OUT and summed by op name: the GPU
 * milliseconds each op took (a nested op is counted in its parent too). Our own kernels (launched through the driver
 * API, not ops) are not in the trace: they are what the plain wall time leaves beside the top-level ops. Prints one
 * JSON line per op and a summary line.
 *
 * <pre>
 *   java -cp ENGINE_CP io.sparkinfer.bench.PrefillProfile MODEL_DIR PROMPTS.jsonl PRECISION COUNT OUT.json  (on a GPU)
 * </pre>
 */
public final class PrefillProfile {

  private PrefillProfile() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 5) {
      System.err.println("usage: PrefillProfile MODEL_DIR PROMPTS.jsonl PRECISION COUNT OUT.json");
      System.exit(2);
    }
    List<GenerationRequest> requests = prompts(Path.of(args[1]), Integer.parseInt(args[3]));
    EngineOptions options = EngineOptions.of(Path.of(args[0]), Precision.parse(args[2]), "gpu");
    try (LlmEngine engine = LlmEngine.load(options)) {
      engine.generate(requests.subList(0, Math.min(64, requests.size()))); // warm-up: kernels, graphs, allocator
      long start = System.nanoTime();
      engine.generate(requests);
      double plainMs = (System.nanoTime() - start) / 1e6;
      System.out.printf(Locale.ROOT, "{\"prompts\": %d, \"precision\": \"%s\", \"plain_ms\": %.1f}%n", requests.size(),
          args[2], plainMs);
      System.out.flush(); // before the profiler, in case it fails
      JniUtils.startProfile(true, false, false);
      start = System.nanoTime();
      engine.generate(requests);
      double profiledMs = (System.nanoTime() - start) / 1e6;
      JniUtils.stopProfile(args[4]);
      Map<String, double[]> byName = cudaMillisByName(Path.of(args[4])); // name -> {ms, calls}
      double total = 0;
      List<Map.Entry<String, double[]>> ops = new ArrayList<>(byName.entrySet());
      ops.sort(Comparator.comparingDouble((Map.Entry<String, double[]> e) -> e.getValue()[0]).reversed());
      for (Map.Entry<String, double[]> e : ops) {
        System.out.printf(Locale.ROOT, "{\"op\": \"%s\", \"cuda_ms\": %.2f, \"calls\": %d, \"fraction_of_plain\": %.3f}%n",
            e.getKey(), e.getValue()[0], (long) e.getValue()[1], e.getValue()[0] / plainMs);
        total += e.getValue()[0];
      }
      System.out.printf(Locale.ROOT, "{\"prompts\": %d, \"precision\": \"%s\", \"plain_ms\": %.1f, \"profiled_ms\": %.1f, "
          + "\"ops_cuda_ms_summed\": %.1f, \"load\": \"%s\"}%n", requests.size(), args[2], plainMs, profiledMs, total,
          engine.loadPhases());
    }
  }

  /** The first {@code count} prompts of a JSONL file, each to make one token. */
  static List<GenerationRequest> prompts(Path jsonl, int count) throws IOException {
    List<GenerationRequest> out = new ArrayList<>();
    for (String line : Files.readAllLines(jsonl, StandardCharsets.UTF_8)) {
      if (out.size() == count) {
        break;
      }
      if (!line.isBlank()) {
        String prompt = JsonParser.parseString(line).getAsJsonObject().get("prompt").getAsString();
        out.add(GenerationRequest.greedy("p" + out.size(), prompt, 1));
      }
    }
    return out;
  }

  /**
   * Sums the durations of the trace's CUDA events by name: {ms, calls}. The trace is libtorch's legacy profiler's
   * (a JSON array of Chrome trace events; CUDA ones carry {@code "pid": "CUDA functions"}).
   */
  static Map<String, double[]> cudaMillisByName(Path trace) throws IOException {
    Map<String, double[]> sums = new LinkedHashMap<>();
    try (Reader r = Files.newBufferedReader(trace, StandardCharsets.UTF_8)) {
      JsonElement root = JsonParser.parseReader(r);
      Iterable<JsonElement> events = root.isJsonArray() ? root.getAsJsonArray()
          : root.getAsJsonObject().getAsJsonArray("traceEvents");
      for (JsonElement e : events) {
        JsonObject o = e.getAsJsonObject();
        if (o.has("dur") && o.has("pid") && o.get("pid").getAsString().toLowerCase(Locale.ROOT).contains("cuda")) {
          double[] s = sums.computeIfAbsent(o.get("name").getAsString(), k -> new double[2]);
          s[0] += o.get("dur").getAsDouble() / 1000.0;
          s[1] += 1;
        }
      }
    }
    return sums;
  }
}
