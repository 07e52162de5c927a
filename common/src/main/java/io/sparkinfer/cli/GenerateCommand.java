package io.sparkinfer.cli;

import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.GenerationStats;
import io.sparkinfer.generate.SamplingParams;
import io.sparkinfer.model.ModelLoadException;
import io.sparkinfer.model.Precision;
import io.sparkinfer.predict.EngineOptions;
import io.sparkinfer.predict.LlmEngine;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code submit/generate.sh}: runs the engine over a JSONL file of prompts without Spark, for trying a
 * model and for GPU benchmarks. Exit status 0 when the run completed (error lines included), 2 for bad
 * options, 1 when the model or the input cannot be read.
 */
public final class GenerateCommand {

  /** Where the repository lives (set by the scripts), for the demo defaults. */
  static final String HOME_PROPERTY = "sparkinfer.home";
  static final String DEMO_MODEL = "common/demo/qwen2-code-demo";
  static final String DEMO_PROMPTS = "common/demo/prompts.jsonl";

  static final List<CliOption> OPTIONS = List.of(
      CliOption.value("model", "DIR", "the demo model, " + DEMO_MODEL, "Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json)"),
      CliOption.value("input", "FILE", DEMO_PROMPTS, "JSONL prompts: {\"id\": ..., \"prompt\": ...} (or \"prompt_token_ids\": [...]) per line"),
      CliOption.value("output", "FILE", "- (stdout)", "JSONL completions, one line per input line, in input order"),
      CliOption.value("max-new-tokens", "N", "64", "most tokens to generate per prompt"),
      CliOption.value("temperature", "T", "0 (greedy)", "sampling temperature; 0 picks the most likely token"),
      CliOption.value("top-k", "K", "0 (off)", "sample among the K most likely tokens"),
      CliOption.value("top-p", "P", "1.0 (off)", "sample among the most likely tokens whose probability reaches P"),
      CliOption.value("seed", "S", "0", "run seed; each prompt samples from its own stream seeded by S and its id"),
      CliOption.repeated("stop", "TEXT", "stop when the completion contains TEXT (cut before it)"),
      CliOption.flag("ignore-eos", "keep generating past end-of-sequence tokens (benchmarks)"),
      CliOption.value("precision", "fp32|fp16|bf16", "fp32 on CPU, fp16 on GPU", "weights, activations and KV cache dtype (bf16: scripted backend)"),
      CliOption.value("batch-size", "B|auto", "8", "prompts per batch; auto sizes batches from free device memory"),
      CliOption.value("device", "cpu|gpu|gpu:N|auto", "auto", "where to run; auto takes the first GPU if there is one"),
      CliOption.value("backend", "eager|scripted", "scripted on GPU, eager on CPU", "eager: the Java model op by op; scripted: one TorchScript call per step"),
      CliOption.flag("cuda-graphs", "scripted backend on a GPU: replay decode steps as CUDA graphs (on by default; =false turns it off)"),
      CliOption.value("max-prompt-tokens", "N", "the model's context - 1", "longer prompts become error lines"),
      CliOption.flag("rope-in-checkpoint-dtype", "round rotary frequencies to the checkpoint dtype, as a transformers model cast with .to(dtype) does"),
      CliOption.value("progress-seconds", "S", "5", "seconds between progress lines on stderr"),
      CliOption.flag("help", "print this help and exit"));

  static final String SYNOPSIS = "submit/generate.sh [--model DIR] [--input PROMPTS.jsonl] [--output OUT.jsonl] [options]";
  static final String DESCRIPTION = "Completes every prompt of a JSONL file with a Llama-family model (Llama, Qwen2, Mistral)\n"
      + "on DJL's PyTorch engine, without Spark. Output lines carry id, completion, output_token_ids,\n"
      + "prompt_tokens, completion_tokens, finish_reason (stop|length|error), error_code and error.\n"
      + "Per-line keys max_new_tokens, temperature, top_k, top_p, seed and stop override the options.";

  private GenerateCommand() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /** Runs the command; returns the exit status. */
  public static int run(String[] args, PrintStream stdout, PrintStream stderr) {
    Settings settings;
    try {
      CliArgs parsed = CliArgs.parse(OPTIONS, args);
      if (parsed.flag("help")) {
        stdout.print(CliArgs.usage(SYNOPSIS, DESCRIPTION, OPTIONS));
        return 0;
      }
      settings = Settings.from(parsed);
    } catch (IllegalArgumentException e) {
      stderr.println("error: " + e.getMessage());
      stderr.println("usage: " + SYNOPSIS + "  (--help lists the options)");
      return 2;
    }
    try {
      return new Run(settings, stdout, stderr).execute();
    } catch (ModelLoadException e) {
      stderr.println("error: cannot load the model: " + e.getMessage());
      return 1;
    } catch (NoSuchFileException e) {
      stderr.println("error: no such file: " + e.getMessage());
      return 1;
    } catch (IOException e) {
      stderr.println("error: " + e.getMessage());
      return 1;
    } catch (IllegalArgumentException e) {
      stderr.println("error: " + e.getMessage());
      return 2;
    }
  }

  /** The validated options of one run. */
  record Settings(EngineOptions engine, Path input, String output, JsonlRequests.Defaults defaults, String batchSize,
      int maxPromptTokens, double progressSeconds) {

    static Settings from(CliArgs a) {
      String home = System.getProperty(HOME_PROPERTY);
      String model = a.get("model", home == null ? null : Path.of(home, DEMO_MODEL).toString());
      String input = a.get("input", home == null ? null : Path.of(home, DEMO_PROMPTS).toString());
      if (model == null) {
        throw new IllegalArgumentException("--model is required");
      }
      if (input == null) {
        throw new IllegalArgumentException("--input is required");
      }
      Precision precision = a.has("precision") ? Precision.parse(a.get("precision", null)) : null;
      EngineOptions engine = new EngineOptions(model, precision, a.get("device", "auto"), a.get("backend", null),
          a.flag("rope-in-checkpoint-dtype"), a.flag("cuda-graphs", true));
      SamplingParams sampling = new SamplingParams(a.getDouble("temperature", 0), a.getInt("top-k", 0),
          a.getDouble("top-p", 1.0), a.getLong("seed", 0));
      int maxNew = a.getInt("max-new-tokens", 64);
      if (maxNew <= 0) {
        throw new IllegalArgumentException("--max-new-tokens must be > 0, got " + maxNew);
      }
      String batch = a.get("batch-size", "8");
      if (!batch.equals("auto")) {
        int b = a.getInt("batch-size", 8);
        if (b <= 0) {
          throw new IllegalArgumentException("--batch-size must be > 0 or auto, got " + b);
        }
      }
      for (String s : a.all("stop")) {
        if (s.isEmpty()) {
          throw new IllegalArgumentException("--stop must not be empty");
        }
      }
      int maxPrompt = a.getInt("max-prompt-tokens", Integer.MAX_VALUE);
      if (maxPrompt <= 0) {
        throw new IllegalArgumentException("--max-prompt-tokens must be > 0, got " + maxPrompt);
      }
      double progress = a.getDouble("progress-seconds", 5);
      return new Settings(engine, Path.of(input), a.get("output", "-"),
          new JsonlRequests.Defaults(maxNew, sampling, a.all("stop"), a.flag("ignore-eos")), batch, maxPrompt, progress);
    }
  }

  /** One execution: load, stream the input in chunks, write, report. */
  private static final class Run {
    private final Settings s;
    private final PrintStream stdout;
    private final PrintStream stderr;

    Run(Settings s, PrintStream stdout, PrintStream stderr) {
      this.s = s;
      this.stdout = stdout;
      this.stderr = stderr;
    }

    int execute() throws IOException {
      long total = countLines(s.input());
      try (LlmEngine engine = LlmEngine.load(s.engine());
          BufferedReader reader = Files.newBufferedReader(s.input(), StandardCharsets.UTF_8);
          Writer writer = openOutput()) {
        if (s.maxPromptTokens() != Integer.MAX_VALUE) {
          engine.generator().setMaxPromptTokens(s.maxPromptTokens());
        }
        int batchSize = s.batchSize().equals("auto")
            ? engine.autoBatchSize(engine.generator().maxPromptTokens() / 2, s.defaults().maxNewTokens())
            : Integer.parseInt(s.batchSize());
        stderr.printf(Locale.ROOT, "generate: %s loaded in %.1fs; %d prompts, batch size %d%n",
            engine.describe(), engine.loadSeconds(), total, batchSize);
        Progress progress = new Progress(total, s.progressSeconds(), stderr);
        int chunk = Math.max(batchSize * 8, 64);
        List<JsonlRequests.Line> lines = new ArrayList<>(chunk);
        long lineNumber = 0;
        long ok = 0;
        long errors = 0;
        String text;
        while (true) {
          text = reader.readLine();
          if (text != null) {
            lineNumber++;
            if (text.isBlank()) {
              continue;
            }
            lines.add(JsonlRequests.parse(text, lineNumber, s.defaults()));
          }
          if (lines.size() >= chunk || (text == null && !lines.isEmpty())) {
            List<Completion> done = complete(engine, lines, batchSize);
            for (int i = 0; i < lines.size(); i++) {
              writer.write(JsonlRequests.toJson(lines.get(i).id(), done.get(i)));
              writer.write('\n');
              if (done.get(i).isError()) {
                errors++;
              } else {
                ok++;
              }
            }
            writer.flush();
            progress.update(ok + errors, engine.generator().stats());
            lines.clear();
          }
          if (text == null) {
            break;
          }
        }
        progress.finish(ok, errors, engine.generator().stats(), s.output());
      }
      return 0;
    }

    private List<Completion> complete(LlmEngine engine, List<JsonlRequests.Line> lines, int batchSize) {
      List<GenerationRequest> requests = new ArrayList<>();
      for (JsonlRequests.Line l : lines) {
        if (l.request() != null) {
          requests.add(l.request());
        }
      }
      List<Completion> generated = engine.generate(requests, batchSize);
      List<Completion> out = new ArrayList<>(lines.size());
      int next = 0;
      for (JsonlRequests.Line l : lines) {
        out.add(l.request() != null ? generated.get(next++) : l.error());
      }
      return out;
    }

    private Writer openOutput() throws IOException {
      if (s.output().equals("-")) {
        return new BufferedWriter(new OutputStreamWriter(stdout, StandardCharsets.UTF_8)) {
          @Override
          public void close() throws IOException {
            flush(); // leave stdout open
          }
        };
      }
      Path out = Path.of(s.output());
      if (out.getParent() != null) {
        Files.createDirectories(out.getParent());
      }
      return Files.newBufferedWriter(out, StandardCharsets.UTF_8);
    }

    private static long countLines(Path input) throws IOException {
      try (var lines = Files.lines(input, StandardCharsets.UTF_8)) {
        return lines.filter(l -> !l.isBlank()).count();
      } catch (java.io.UncheckedIOException e) {
        throw new IOException("cannot read " + input + " as UTF-8 text: " + e.getCause().getMessage(), e.getCause());
      }
    }
  }

  /** Progress lines on stderr: done/total, tokens/s, ETA; then a summary. */
  static final class Progress {
    private final long total;
    private final long intervalNanos;
    private final PrintStream err;
    private final long start = System.nanoTime();
    private long lastPrint = start;

    Progress(long total, double seconds, PrintStream err) {
      this.total = total;
      this.intervalNanos = (long) (seconds * 1e9);
      this.err = err;
    }

    void update(long done, GenerationStats stats) {
      long now = System.nanoTime();
      if (now - lastPrint < intervalNanos && done < total) {
        return;
      }
      lastPrint = now;
      double elapsed = (now - start) / 1e9;
      double rate = stats.generatedTokens() / Math.max(elapsed, 1e-9);
      double eta = done == 0 ? Double.NaN : elapsed * (total - done) / done;
      err.printf(Locale.ROOT, "generate: %d/%d prompts (%.1f%%), %d tokens, %.1f tokens/s, elapsed %s, ETA %s%n",
          done, total, total == 0 ? 100.0 : 100.0 * done / total, stats.generatedTokens(), rate,
          duration(elapsed), Double.isNaN(eta) ? "?" : duration(eta));
    }

    void finish(long ok, long errors, GenerationStats stats, String output) {
      double elapsed = (System.nanoTime() - start) / 1e9;
      err.printf(Locale.ROOT, "generate: done: %d prompts (%d ok, %d errors), %d prompt tokens, %d generated tokens "
              + "in %s (%.1f tokens/s; prefill %.1fs, decode %.1fs) -> %s%n",
          ok + errors, ok, errors, stats.promptTokens(), stats.generatedTokens(), duration(elapsed),
          stats.generatedTokens() / Math.max(elapsed, 1e-9), stats.prefillNanos() / 1e9, stats.decodeNanos() / 1e9,
          output.equals("-") ? "stdout" : output);
    }

    static String duration(double seconds) {
      long s = Math.round(seconds);
      return s >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60)
          : s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
    }
  }
}
