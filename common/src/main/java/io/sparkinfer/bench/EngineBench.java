package io.sparkinfer.bench;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.sparkinfer.cli.CliArgs;
import io.sparkinfer.cli.CliOption;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.GenerationStats;
import io.sparkinfer.generate.Generator;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.Precision;
import io.sparkinfer.predict.EngineOptions;
import io.sparkinfer.predict.LlmEngine;
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

  static final List<CliOption> OPTIONS = List.of(
      CliOption.value("model", "DIR", null, "checkpoint directory"),
      CliOption.value("prompts", "FILE", null, "JSONL with id and prompt_token_ids per line"),
      CliOption.value("out", "FILE", null, "where to write the JSON results"),
      CliOption.value("batch-sizes", "B,B,...", "1,8,64,256,512", "batch sizes (rows decoding together per thread)"),
      CliOption.value("threads", "T,T,...", "1", "decode threads per device, each with its own batch"),
      CliOption.value("backends", "NAME,...", "scripted", "backends to run"),
      CliOption.value("cuda-graphs", "true|false,...", "true", "scripted backend runs: with CUDA graphs, without, or both (true,false)"),
      CliOption.value("eager-batch-sizes", "B,...", "64,256", "batch sizes for the eager backend (slow on GPU)"),
      CliOption.value("eager-threads", "T,...", "1", "decode threads for the eager backend"),
      CliOption.value("precision", "fp32|fp16|bf16", "fp16", "compute precision"),
      CliOption.value("device", "DEV", "auto", "device"),
      CliOption.value("max-new-tokens", "N", "128", "tokens generated per prompt"),
      CliOption.value("agreement-prompts", "N", "16", "first prompts whose token ids are kept for agreement checks"),
      CliOption.flag("help", "print this help"));

  private EngineBench() {}

  /** How many prompts a batch size runs: two batches' worth (at least 4, at most the workload). */
  static int promptsFor(int batch, int available) {
    return Math.min(available, Math.max(4, 2 * batch));
  }

  public static void main(String[] argv) throws Exception {
    CliArgs a = CliArgs.parse(OPTIONS, argv);
    if (a.flag("help")) {
      System.out.print(CliArgs.usage("EngineBench --model DIR --prompts FILE --out FILE", "Engine throughput benchmark.", OPTIONS));
      return;
    }
    List<long[]> prompts = readPrompts(Path.of(a.get("prompts", null)));
    int maxNew = a.getInt("max-new-tokens", 128);
    Precision precision = Precision.parse(a.get("precision", "fp16"));
    JsonObject out = new JsonObject();
    JsonArray runs = new JsonArray();
    out.add("runs", runs);
    out.addProperty("max_new_tokens", maxNew);
    out.addProperty("precision", precision.label());
    boolean agreementKept = false;
    for (String backend : a.get("backends", "scripted").split(",")) {
      if (backend.equals("eager") && precision == Precision.BF16) {
        System.err.println("bench: eager backend skipped: bf16 runs on the scripted backend only");
        continue;
      }
      List<Boolean> graphSettings = backend.equals("scripted") ? booleans(a.get("cuda-graphs", "true")) : List.of(false);
      for (boolean graphs : graphSettings) {
        EngineOptions options = new EngineOptions(a.get("model", null), precision, a.get("device", "auto"), backend,
            false, graphs);
        String label = backend + (graphs ? "" : backend.equals("scripted") ? "_nographs" : "");
        try (LlmEngine engine = LlmEngine.load(options)) {
          System.err.printf(Locale.ROOT, "bench: %s loaded in %.1fs%n", engine.describe(), engine.loadSeconds());
          out.addProperty("load_s_" + label, engine.loadSeconds());
          // Warm-up: TorchScript's executor profiles the first calls before it optimizes.
          run(engine, prompts.subList(0, Math.min(8, prompts.size())), 8, 1, 16);
          if (backend.equals("scripted") && !agreementKept) {
            int n = Math.min(a.getInt("agreement-prompts", 16), prompts.size());
            List<Completion> ids = engine.generate(requests(prompts.subList(0, n), maxNew, 0), n);
            JsonArray kept = new JsonArray();
            ids.forEach(c -> kept.add(new Gson().toJsonTree(c.outputTokenIds())));
            out.add("agreement_ids", kept);
            out.addProperty("agreement_cuda_graphs", engine.usesCudaGraphs());
            agreementKept = true;
          }
          String sizes = backend.equals("eager") ? a.get("eager-batch-sizes", "64,256") : a.get("batch-sizes", "1,8,64,256,512");
          String threadList = backend.equals("eager") ? a.get("eager-threads", "1") : a.get("threads", "1");
          for (int threads : ints(threadList)) {
            for (int batch : ints(sizes)) {
              int n = promptsFor(batch * threads, prompts.size());
              JsonObject r = run(engine, prompts.subList(0, n), batch, threads, maxNew);
              r.addProperty("backend", backend);
              r.addProperty("cuda_graphs", engine.usesCudaGraphs());
              r.addProperty("engine", engine.describe()); // says whether captured steps are fused kernels
              runs.add(r);
              System.err.println("bench: " + r);
            }
          }
        }
      }
    }
    Files.writeString(Path.of(a.get("out", null)), new GsonBuilder().setPrettyPrinting().create().toJson(out));
  }

  private static List<Boolean> booleans(String list) {
    List<Boolean> out = new ArrayList<>();
    for (String v : list.split(",")) {
      if (!v.trim().equals("true") && !v.trim().equals("false")) {
        throw new IllegalArgumentException("--cuda-graphs takes true, false or true,false, got '" + list + "'");
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
    r.addProperty("e2e_tokens_per_s", generated / wall);
    return r;
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
