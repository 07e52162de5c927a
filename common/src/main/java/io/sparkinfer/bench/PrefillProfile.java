package io.sparkinfer.bench;

import ai.djl.pytorch.jni.JniUtils;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.CliArgs;
import io.sparkinfer.options.OptionTable;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * Where a prefill's time goes, by libtorch op: prompts of a JSONL file (rows with a {@code "prompt"}) prefilled with
 * one new token each (so nearly all the work is prefill), timed plain, then again under libtorch's profiler
 * ({@code JniUtils.startProfile}), whose trace (Chrome trace events) is written to OUT and summed by op name: the
 * milliseconds each op took on the host and its calls (a nested op is counted in its parent too), the trace's span,
 * and how much of the span ops cover; and again by the op that encloses each one (who makes which copy). DJL's profiler records host times only (no CUDA events): run the tool with
 * {@code CUDA_LAUNCH_BLOCKING=1} so that each op returns when its kernels are done and its host time is its GPU time;
 * then what the span leaves outside ops is our own kernels (launched through the driver API, not ops) and the host's
 * work between ops. Without it, ops return at launch and the GPU's time piles up in the ops that wait for it
 * ({@code aten::to}, {@code aten::copy_}). Prints one JSON line per op (largest first) and a summary line.
 *
 * <pre>
 *   CUDA_LAUNCH_BLOCKING=1 java -cp ENGINE_CP io.sparkinfer.bench.PrefillProfile MODEL_DIR PROMPTS.jsonl PRECISION \
 *       COUNT OUT.json [ENGINE OPTIONS, e.g. --cublas DIR]   (on a GPU)
 * </pre>
 */
public final class PrefillProfile {

  private PrefillProfile() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 5) {
      System.err.println("usage: PrefillProfile MODEL_DIR PROMPTS.jsonl PRECISION COUNT OUT.json [ENGINE OPTIONS]");
      System.exit(2);
    }
    List<GenerationRequest> requests = prompts(Path.of(args[1]), Integer.parseInt(args[3]));
    EngineOptions options = options(args, System::getenv);
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
      Trace trace = Trace.read(Path.of(args[4]));
      List<Map.Entry<String, double[]>> ops = new ArrayList<>(trace.byName().entrySet());
      ops.sort(Comparator.comparingDouble((Map.Entry<String, double[]> e) -> e.getValue()[0]).reversed());
      for (Map.Entry<String, double[]> e : ops.subList(0, Math.min(40, ops.size()))) {
        System.out.printf(Locale.ROOT, "{\"op\": \"%s\", \"ms\": %.2f, \"calls\": %d}%n", e.getKey(), e.getValue()[0],
            (long) e.getValue()[1]);
      }
      List<Map.Entry<String, double[]>> pairs = new ArrayList<>(trace.byParent().entrySet());
      pairs.sort(Comparator.comparingDouble((Map.Entry<String, double[]> e) -> e.getValue()[0]).reversed());
      for (Map.Entry<String, double[]> e : pairs.subList(0, Math.min(40, pairs.size()))) {
        System.out.printf(Locale.ROOT, "{\"parent_and_op\": \"%s\", \"ms\": %.2f, \"calls\": %d}%n", e.getKey(),
            e.getValue()[0], (long) e.getValue()[1]);
      }
      System.out.printf(Locale.ROOT, "{\"prompts\": %d, \"precision\": \"%s\", \"plain_ms\": %.1f, \"profiled_ms\": %.1f, "
          + "\"trace_span_ms\": %.1f, \"covered_by_ops_ms\": %.1f, \"launch_blocking\": %s, \"load\": \"%s\"}%n",
          requests.size(), args[2], plainMs, profiledMs, trace.spanMs(), trace.coveredMs(),
          "1".equals(System.getenv("CUDA_LAUNCH_BLOCKING")), engine.loadPhases());
    }
  }

  /**
   * The engine's options: MODEL_DIR, PRECISION and the GPU from the positional arguments, and any engine option after
   * the five (e.g. {@code --cublas DIR}), or from its environment variable ({@code SPARKINFER_CUBLAS}) as the
   * command-line tools read them.
   */
  static EngineOptions options(String[] args, Function<String, String> environment) {
    OptionTable table = new OptionTable(EngineOptions.GROUP);
    CliArgs extra = table.parse(Arrays.copyOfRange(args, 5, args.length));
    return new EngineOptions(args[0], table.resolve(extra, key -> null, environment))
        .with(EngineOptions.PRECISION, Precision.parse(args[2])).with(EngineOptions.DEVICE_OPTION, "gpu");
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
   * A profiler trace's complete events ({@code "ph": "X"}) summed: by name {ms, calls}; by the name of the op that
   * encloses each event on its thread and the event's own name ({@code "aten::addmm > aten::copy_"}: who makes a copy;
   * {@code "-"} for an event nothing encloses); the span from the first start to the last end; and the time covered
   * by at least one event (the union of their intervals), in milliseconds.
   */
  record Trace(Map<String, double[]> byName, Map<String, double[]> byParent, double spanMs, double coveredMs) {

    static Trace read(Path file) throws IOException {
      List<Event> events = new ArrayList<>();
      try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
        JsonElement root = JsonParser.parseReader(r);
        Iterable<JsonElement> all = root.isJsonArray() ? root.getAsJsonArray()
            : root.getAsJsonObject().getAsJsonArray("traceEvents");
        for (JsonElement e : all) {
          JsonObject o = e.getAsJsonObject();
          if (o.has("dur") && o.has("ph") && "X".equals(o.get("ph").getAsString())) {
            events.add(new Event(o.get("name").getAsString(), o.has("tid") ? o.get("tid").getAsString() : "",
                o.get("ts").getAsDouble(), o.get("dur").getAsDouble()));
          }
        }
      }
      // outer events first: by start, the longer of two that start together first
      events.sort(Comparator.comparingDouble(Event::start).thenComparing(Comparator.comparingDouble(Event::dur)
          .reversed()));
      Map<String, double[]> byName = new LinkedHashMap<>();
      Map<String, double[]> byParent = new LinkedHashMap<>();
      Map<String, java.util.ArrayDeque<Event>> open = new LinkedHashMap<>(); // per thread, the enclosing events
      double covered = 0;
      double from = Double.NaN;
      double to = Double.NaN;
      double first = events.isEmpty() ? 0 : events.get(0).start();
      double last = first;
      for (Event e : events) {
        add(byName, e.name(), e.dur());
        java.util.ArrayDeque<Event> stack = open.computeIfAbsent(e.tid(), k -> new java.util.ArrayDeque<>());
        while (!stack.isEmpty() && stack.peek().end() <= e.start()) {
          stack.pop();
        }
        add(byParent, (stack.isEmpty() ? "-" : stack.peek().name()) + " > " + e.name(), e.dur());
        stack.push(e);
        if (Double.isNaN(from) || e.start() > to) {
          covered += Double.isNaN(from) ? 0 : to - from;
          from = e.start();
          to = e.end();
        } else {
          to = Math.max(to, e.end());
        }
        last = Math.max(last, e.end());
      }
      covered += Double.isNaN(from) ? 0 : to - from;
      return new Trace(byName, byParent, (last - first) / 1000.0, covered / 1000.0);
    }

    private static void add(Map<String, double[]> sums, String key, double micros) {
      double[] s = sums.computeIfAbsent(key, k -> new double[2]);
      s[0] += micros / 1000.0;
      s[1] += 1;
    }
  }

  /** One complete event: microseconds. */
  private record Event(String name, String tid, double start, double dur) {
    double end() {
      return start + dur;
    }
  }
}
