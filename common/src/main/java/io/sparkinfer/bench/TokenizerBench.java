package io.sparkinfer.bench;

import com.google.gson.JsonParser;
import io.sparkinfer.tokenizer.TextTokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Tokenizing a prompt file as the batch job's planning tasks do: the prompts in equal shares over several threads (a
 * planning task each), every thread encoding its share either in blocks of {@value #BLOCK} prompts, one
 * {@link TextTokenizer#encodeAll} call each (Hugging Face {@code tokenizers} spreads a batch over its own thread pool),
 * or one prompt at a time on the thread itself ({@link TextTokenizer#encode}). Prints one JSON line per thread count
 * and way: the first pass (a cold tokenizer, as a job's planning meets it) and the best of three more, as prompt
 * tokens per second of wall time.
 *
 * <pre>
 *   java -cp ENGINE_CP io.sparkinfer.bench.TokenizerBench MODEL_DIR PROMPTS.jsonl [THREADS,THREADS...]
 * </pre>
 *
 * The prompts are the {@code prompt} fields of a JSONL file; the thread counts default to 1 and the machine's cores.
 */
public final class TokenizerBench {

  /** Prompts per {@link TextTokenizer#encodeAll} call, as planning's {@code PromptPlanner.BLOCK}. */
  static final int BLOCK = 256;

  private TokenizerBench() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: TokenizerBench MODEL_DIR PROMPTS.jsonl [THREADS,THREADS...]");
      System.exit(2);
    }
    List<String> prompts = readPrompts(Path.of(args[1]));
    int cores = Runtime.getRuntime().availableProcessors();
    String[] counts = (args.length > 2 ? args[2] : "1," + cores).split(",");
    for (String way : new String[] {"blocks", "each"}) {
      for (String c : counts) {
        int threads = Integer.parseInt(c.trim());
        // a fresh tokenizer per measurement: the first pass is cold, as in a job's first planning tasks
        try (TextTokenizer tokenizer = TextTokenizer.load(Path.of(args[0]))) {
          long tokens = 0;
          double first = 0;
          double best = Double.MAX_VALUE;
          for (int pass = 0; pass < 4; pass++) {
            long start = System.nanoTime();
            tokens = tokenize(tokenizer, prompts, threads, way.equals("blocks"));
            double seconds = (System.nanoTime() - start) / 1e9;
            if (pass == 0) {
              first = seconds;
            } else {
              best = Math.min(best, seconds);
            }
          }
          System.out.printf(Locale.ROOT, "{\"way\": \"%s\", \"threads\": %d, \"cores\": %d, \"prompts\": %d, "
              + "\"tokens\": %d, \"first_s\": %.4f, \"best_s\": %.4f, \"first_tokens_per_s\": %.0f, "
              + "\"best_tokens_per_s\": %.0f}%n", way, threads, cores, prompts.size(), tokens, first, best,
              tokens / first, tokens / best);
        }
      }
    }
  }

  /** Tokenizes every prompt once, in equal shares over {@code threads} threads; returns the tokens. */
  static long tokenize(TextTokenizer tokenizer, List<String> prompts, int threads, boolean blocks)
      throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Long>> shares = new ArrayList<>();
      int share = (prompts.size() + threads - 1) / threads;
      for (int t = 0; t < threads; t++) {
        List<String> mine = prompts.subList(Math.min(t * share, prompts.size()),
            Math.min((t + 1) * share, prompts.size()));
        shares.add(pool.submit(() -> blocks ? inBlocks(tokenizer, mine) : oneByOne(tokenizer, mine)));
      }
      long tokens = 0;
      for (Future<Long> f : shares) {
        tokens += f.get();
      }
      return tokens;
    } finally {
      pool.shutdownNow();
    }
  }

  private static long inBlocks(TextTokenizer tokenizer, List<String> prompts) {
    long tokens = 0;
    for (int i = 0; i < prompts.size(); i += BLOCK) {
      for (long[] ids : tokenizer.encodeAll(prompts.subList(i, Math.min(i + BLOCK, prompts.size())))) {
        tokens += ids.length;
      }
    }
    return tokens;
  }

  private static long oneByOne(TextTokenizer tokenizer, List<String> prompts) {
    long tokens = 0;
    for (String p : prompts) {
      tokens += tokenizer.encode(p).length;
    }
    return tokens;
  }

  private static List<String> readPrompts(Path file) throws IOException {
    List<String> prompts = new ArrayList<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      if (!line.isBlank()) {
        prompts.add(JsonParser.parseString(line).getAsJsonObject().get("prompt").getAsString());
      }
    }
    return prompts;
  }
}
