package io.sparkinfer.bench;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.backend.scripted.DecodeAcceleration;
import io.sparkinfer.backend.scripted.ScriptedCausalLm;
import io.sparkinfer.backend.scripted.ScriptedOptions;
import io.sparkinfer.engine.BackendKind;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.LlmEngine;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.GenerationStats;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.CliArgs;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The engine's side of {@code submit/bench.sh}: runs a workload of tokenized prompts (greedy, eos ignored)
 * at several batch sizes, backends and decode threads per device, and writes throughput as JSON. The
 * transformers side runs the same prompts in the same call ({@code bench/transformers_bench.py}); the
 * report ({@code bench/report.py}) puts the two side by side.
 */
public final class EngineBench {

  static final Option<String> MODEL = Option.text("model", "DIR", null, "checkpoint directory");
  static final Option<String> PROMPTS = Option.text("prompts", "FILE", null,
      "JSONL with id and prompt_token_ids per line");
  static final Option<String> OUT = Option.text("out", "FILE", null, "where to write the JSON results");
  static final Option<String> BATCH_SIZES = Option.text("batch-sizes", "B,B,...", "1,8,64,256,512",
      "batch sizes (rows decoding together per thread)");
  static final Option<String> THREADS = Option.text("threads", "T,T,...", "1",
      "decode threads per device, each with its own batch");
  static final Option<String> BACKENDS = Option.text("backends", "NAME,...", "scripted", "backends to run");
  static final Option<String> GRAPH_RUNS = Option.text("graph-runs", "true|false,...", "true",
      "scripted backend runs with CUDA graphs, without, or both (true,false); sets --cuda-graphs per run");
  static final Option<String> EAGER_BATCH_SIZES = Option.text("eager-batch-sizes", "B,...", "64,256",
      "batch sizes for the eager backend (slow on GPU)");
  static final Option<String> EAGER_THREADS = Option.text("eager-threads", "T,...", "1",
      "decode threads for the eager backend");
  static final Option<Integer> AGREEMENT_PROMPTS = Option.integer("agreement-prompts", "N", 16,
      "first prompts whose token ids are kept for agreement checks").atLeast(0);
  static final Option<Integer> MAX_NEW_TOKENS = Option.integer("max-new-tokens", "N", 128,
      "tokens generated per prompt").atLeast(1);
  static final Option<Boolean> HELP = Option.flag("help", false, "print this help");

  static final OptionTable OPTIONS = new OptionTable(
      new OptionTable.Group("benchmark options", List.of(MODEL, PROMPTS, OUT, BATCH_SIZES, THREADS, BACKENDS, GRAPH_RUNS,
          EAGER_BATCH_SIZES, EAGER_THREADS, AGREEMENT_PROMPTS, MAX_NEW_TOKENS, HELP)),
      EngineOptions.GROUP);

  private EngineBench() {}

  /** How many prompts a batch size runs: two batches' worth (at least 4, at most the workload). */
  static int promptsFor(int batch, int available) {
    return Math.min(available, Math.max(4, 2 * batch));
  }

  public static void main(String[] argv) throws Exception {
    CliArgs args = OPTIONS.parse(argv);
    if (args.flag(HELP)) {
      System.out.print(OPTIONS.usage("EngineBench --model DIR --prompts FILE --out FILE [options]",
          "Engine throughput benchmark (the engine's side of submit/bench.sh)."));
      return;
    }
    OptionValues a = OPTIONS.resolve(args, key -> null);
    List<long[]> prompts = readPrompts(Path.of(required(a, PROMPTS)));
    int maxNew = a.get(MAX_NEW_TOKENS);
    EngineOptions base = new EngineOptions(required(a, MODEL), a);
    Precision precision = base.precision() != null ? base.precision() : Precision.FP16;
    JsonObject out = new JsonObject();
    JsonArray runs = new JsonArray();
    out.add("runs", runs);
    out.addProperty("max_new_tokens", maxNew);
    out.addProperty("precision", precision.label());
    boolean agreementKept = false;
    for (String backend : a.get(BACKENDS).split(",")) {
      BackendKind kind = EngineOptions.BACKEND.parse(backend);
      if (kind == BackendKind.EAGER && precision.isBf16()) {
        System.err.println("bench: eager backend skipped: " + precision.label() + " runs on the scripted backend only");
        continue;
      }
      List<Boolean> graphSettings = kind == BackendKind.SCRIPTED ? booleans(a.get(GRAPH_RUNS)) : List.of(false);
      for (boolean graphs : graphSettings) {
        EngineOptions options = base.with(EngineOptions.PRECISION, precision).with(EngineOptions.BACKEND, kind)
            .with(ScriptedOptions.CUDA_GRAPHS, graphs);
        String label = kind.label() + (graphs ? "" : kind == BackendKind.SCRIPTED ? "_nographs" : "");
        try (LlmEngine engine = LlmEngine.load(options)) {
          System.err.printf(Locale.ROOT, "bench: %s loaded in %.1fs%n", engine.describe(), engine.loadSeconds());
          out.addProperty("load_s_" + label, engine.loadSeconds());
          // Warm-up: TorchScript's executor profiles the first calls before it optimizes.
          run(engine, prompts.subList(0, Math.min(8, prompts.size())), 8, 1, 16);
          if (kind == BackendKind.SCRIPTED && !agreementKept) {
            int n = Math.min(a.get(AGREEMENT_PROMPTS), prompts.size());
            List<Completion> ids = engine.generate(requests(prompts.subList(0, n), maxNew, 0), n);
            JsonArray kept = new JsonArray();
            ids.forEach(c -> kept.add(new Gson().toJsonTree(c.outputTokenIds())));
            out.add("agreement_ids", kept);
            out.addProperty("agreement_cuda_graphs", engine.usesCudaGraphs());
            agreementKept = true;
          }
          String sizes = kind == BackendKind.EAGER ? a.get(EAGER_BATCH_SIZES) : a.get(BATCH_SIZES);
          String threadList = kind == BackendKind.EAGER ? a.get(EAGER_THREADS) : a.get(THREADS);
          for (int threads : ints(threadList)) {
            for (int batch : ints(sizes)) {
              int n = promptsFor(batch * threads, prompts.size());
              JsonObject r = run(engine, prompts.subList(0, n), batch, threads, maxNew);
              r.addProperty("backend", kind.label());
              r.addProperty("cuda_graphs", engine.usesCudaGraphs());
              r.addProperty("engine", engine.describe()); // says whether captured steps are fused kernels
              r.add("engine_options", new Gson().toJsonTree(options.values().texts(EngineOptions.ALL)));
              runs.add(r);
              System.err.println("bench: " + r);
            }
          }
        }
      }
    }
    Files.writeString(Path.of(required(a, OUT)), new GsonBuilder().setPrettyPrinting().create().toJson(out));
  }

  private static String required(OptionValues a, Option<String> o) {
    String v = a.get(o);
    if (v == null) {
      throw new IllegalArgumentException(o + " is required");
    }
    return v;
  }

  private static List<Boolean> booleans(String list) {
    List<Boolean> out = new ArrayList<>();
    for (String v : list.split(",")) {
      if (!v.trim().equals("true") && !v.trim().equals("false")) {
        throw new IllegalArgumentException("--graph-runs takes true, false or true,false, got '" + list + "'");
      }
      out.add(Boolean.parseBoolean(v.trim()));
    }
    return out;
  }

  /** Runs prompts on {@code threads} generators at once, each decoding batches of {@code batch}. */
  static JsonObject run(LlmEngine engine, List<long[]> prompts, int batch, int threads, int maxNew) throws Exception {
    List<List<long[]>> slices = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      slices.add(new ArrayList<>());
    }
    for (int i = 0; i < prompts.size(); i++) {
      slices.get(i % threads).add(prompts.get(i));
    }
    List<Generator> generators = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      generators.add(engine.newGenerator());
    }
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    double capturedBefore = captureSeconds(engine);
    long start = System.nanoTime();
    try {
      List<Future<List<Completion>>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        Generator g = generators.get(t);
        List<GenerationRequest> rs = requests(slices.get(t), maxNew, t * 1_000_000);
        futures.add(pool.submit(() -> g.generate(rs, batch)));
      }
      for (Future<List<Completion>> f : futures) {
        for (Completion c : f.get()) {
          if (c.isError()) {
            throw new IllegalStateException("benchmark request failed: " + c.errorMessage());
          }
        }
      }
    } finally {
      pool.shutdown();
    }
    double wall = (System.nanoTime() - start) / 1e9;
    double capture = captureSeconds(engine) - capturedBefore;
    long promptTokens = 0;
    long generated = 0;
    long steps = 0;
    double prefill = 0;
    double decodeRate = 0;
    double decode = 0;
    for (Generator g : generators) {
      GenerationStats s = g.stats();
      promptTokens += s.promptTokens();
      generated += s.generatedTokens();
      steps += s.decodeSteps();
      prefill += s.prefillNanos() / 1e9;
      decode += s.decodeNanos() / 1e9;
      // tokens made by decode steps (each prompt's first token comes from its prefill), per second of decode
      decodeRate += (s.generatedTokens() - s.requests()) / Math.max(s.decodeNanos() / 1e9, 1e-9);
      g.close();
    }
    JsonObject r = new JsonObject();
    r.addProperty("threads", threads);
    r.addProperty("batch_size", batch);
    r.addProperty("prompts", prompts.size());
    r.addProperty("prompt_tokens", promptTokens);
    r.addProperty("generated_tokens", generated);
    r.addProperty("wall_s", wall);
    r.addProperty("prefill_s", prefill / threads);
    r.addProperty("decode_s", decode / threads);
    r.addProperty("decode_steps", steps);
    r.addProperty("decode_tokens_per_s", decodeRate);
    // each run's generators make new KV caches, so their decode time holds the graphs' captures: once per cache
    r.addProperty("graph_capture_s", capture);
    if (threads == 1) {
      r.addProperty("decode_tokens_per_s_after_capture", (generated - prompts.size()) / Math.max(decode - capture, 1e-9));
      // with --graph-timing: one step's device time, replayed back to back (against decode_s / decode_steps)
      DecodeAcceleration acceleration = acceleration(engine);
      Double replay = acceleration == null ? null : acceleration.replayMillis(batch);
      if (replay != null) {
        r.addProperty("graph_replay_ms", replay);
      }
    }
    r.addProperty("e2e_tokens_per_s", generated / wall);
    return r;
  }

  /** Seconds the engine's backend has spent capturing CUDA graphs (0 without graphs). */
  private static double captureSeconds(LlmEngine engine) {
    DecodeAcceleration acceleration = acceleration(engine);
    return acceleration == null ? 0 : acceleration.graphCaptureSeconds();
  }

  /** The scripted backend's graphs and fused steps; null for other backends. */
  private static DecodeAcceleration acceleration(LlmEngine engine) {
    return engine.backend() instanceof ScriptedCausalLm scripted ? scripted.acceleration() : null;
  }

  static List<GenerationRequest> requests(List<long[]> prompts, int maxNew, int idBase) {
    List<GenerationRequest> out = new ArrayList<>();
    for (int i = 0; i < prompts.size(); i++) {
      out.add(new GenerationRequest("b" + (idBase + i), null, maxNew, SamplingParams.GREEDY, List.of(), true, prompts.get(i)));
    }
    return out;
  }

  static List<long[]> readPrompts(Path file) throws IOException {
    List<long[]> out = new ArrayList<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      if (line.isBlank()) {
        continue;
      }
      JsonArray ids = JsonParser.parseString(line).getAsJsonObject().getAsJsonArray("prompt_token_ids");
      long[] p = new long[ids.size()];
      for (int i = 0; i < p.length; i++) {
        p[i] = ids.get(i).getAsLong();
      }
      out.add(p);
    }
    return out;
  }

  static int[] ints(String csv) {
    return Arrays.stream(csv.split(",")).map(String::trim).filter(s -> !s.isEmpty()).mapToInt(Integer::parseInt).toArray();
  }
}
