package io.sparkinfer.cli;

import io.sparkinfer.base.ModelLoadException;
import io.sparkinfer.engine.EngineOptions;
import io.sparkinfer.engine.EnginePool;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.GenerationStats;
import io.sparkinfer.generate.GeneratorOptions;
import io.sparkinfer.generate.RequestOptions;
import io.sparkinfer.options.CliArgs;
import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
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
  /** Lines read and completed per engine call when the batch size is auto. */
  static final int AUTO_CHUNK = 4096;

  static final Option<String> MODEL = Option.text("model", "DIR", null,
      "Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json)")
      .describedDefault("the demo model, " + DEMO_MODEL);
  static final Option<String> INPUT = Option.text("input", "FILE", null,
      "JSONL prompts: {\"id\": ..., \"prompt\": ...} (or \"prompt_token_ids\": [...]) per line")
      .describedDefault(DEMO_PROMPTS);
  static final Option<String> OUTPUT = Option.text("output", "FILE", "-",
      "JSONL completions, one line per input line, in input order; - for stdout");
  static final Option<Integer> PROGRESS_SECONDS = Option.integer("progress-seconds", "N", 5,
      "seconds between progress lines on stderr (0: a line per chunk of prompts)").atLeast(0);
  static final Option<Boolean> HELP = Option.flag("help", false, "print this help and exit");

  /** Everything generate.sh takes: its own options, the generation options and the engine's. */
  public static final OptionTable OPTIONS = new OptionTable(
      new OptionTable.Group("generate.sh options", List.of(MODEL, INPUT, OUTPUT, PROGRESS_SECONDS, HELP)),
      RequestOptions.GROUP, EngineOptions.GROUP);

  public static final String SYNOPSIS = "submit/generate.sh [--model DIR] [--input PROMPTS.jsonl] [--output OUT.jsonl] [options]";
  public static final String DESCRIPTION = "Completes every prompt of a JSONL file with a Llama-family model (Llama, Qwen2, Mistral)\n"
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
      CliArgs parsed = OPTIONS.parse(args);
      if (parsed.flag(HELP)) {
        stdout.print(OPTIONS.usage(SYNOPSIS, DESCRIPTION));
        return 0;
      }
      settings = Settings.from(OPTIONS.resolve(parsed, key -> null));
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
  record Settings(EngineOptions engine, Path input, String output, JsonlRequests.Defaults defaults,
      double progressSeconds) {

    static Settings from(OptionValues o) {
      String home = System.getProperty(HOME_PROPERTY);
      String model = o.get(MODEL) != null ? o.get(MODEL) : home == null ? null : Path.of(home, DEMO_MODEL).toString();
      String input = o.get(INPUT) != null ? o.get(INPUT) : home == null ? null : Path.of(home, DEMO_PROMPTS).toString();
      if (model == null) {
        throw new IllegalArgumentException("--model is required");
      }
      if (input == null) {
        throw new IllegalArgumentException("--input is required");
      }
      return new Settings(new EngineOptions(model, o), Path.of(input), o.get(OUTPUT), new JsonlRequests.Defaults(o),
          o.get(PROGRESS_SECONDS));
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
      try (EnginePool engine = EnginePool.load(s.engine());
          BufferedReader reader = Files.newBufferedReader(s.input(), StandardCharsets.UTF_8);
          Writer writer = openOutput()) {
        int batchSize = s.engine().get(GeneratorOptions.BATCH_SIZE); // 0: auto, per chunk of lines
        stderr.printf(Locale.ROOT, "generate: %s loaded in %.1fs (%s); %d prompts, batch size %s%n",
            engine.describe(), engine.loadSeconds(), engine.loadPhases(), total, batchSize == 0 ? "auto" : String.valueOf(batchSize));
        Progress progress = new Progress(total, s.progressSeconds(), stderr);
        // every generator of the layout gets a full share of each chunk
        int chunk = (batchSize == 0 ? AUTO_CHUNK : Math.max(batchSize * 8, 64)) * engine.members().size();
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
            progress.update(ok + errors, engine.stats());
            lines.clear();
          }
          if (text == null) {
            break;
          }
        }
        progress.finish(ok, errors, engine.stats(), s.output());
      }
      return 0;
    }

    private List<Completion> complete(EnginePool engine, List<JsonlRequests.Line> lines, int batchSize) {
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
              + "in %s (%.1f tokens/s; prefill %.2fs, decode %.2fs; batch sizes %s%s) -> %s%n",
          ok + errors, ok, errors, stats.promptTokens(), stats.generatedTokens(), duration(elapsed),
          stats.generatedTokens() / Math.max(elapsed, 1e-9), stats.prefillNanos() / 1e9, stats.decodeNanos() / 1e9,
          widths(stats), stats.sharedPrefixTokens() == 0 ? ""
              : String.format(Locale.ROOT, "; %d prompt tokens shared", stats.sharedPrefixTokens()),
          output.equals("-") ? "stdout" : output);
    }

    /** The batch widths that ran, {@code 256} or {@code 96,128}; {@code -} when none ran. */
    static String widths(GenerationStats stats) {
      return stats.batchWidths().isEmpty() ? "-" : stats.batchWidths().stream().map(String::valueOf)
          .collect(java.util.stream.Collectors.joining(","));
    }

    static String duration(double seconds) {
      long s = Math.round(seconds);
      return s >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60)
          : s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
    }
  }
}
