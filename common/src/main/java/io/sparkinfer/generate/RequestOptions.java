package io.sparkinfer.generate;

import io.sparkinfer.options.Option;
import io.sparkinfer.options.OptionTable;
import io.sparkinfer.options.OptionValues;
import java.util.List;

/**
 * What each request generates unless it says otherwise: token limit, sampling and stop conditions. The
 * options are shared by {@code generate.sh} and the batch job (the same names, defaults and checks).
 */
public final class RequestOptions {

  public static final Option<Integer> MAX_NEW_TOKENS = Option.integer("max-new-tokens", "N", 64,
      "most tokens generated per prompt (fewer when the context ends)").atLeast(1);
  public static final Option<Double> TEMPERATURE = Option.number("temperature", "T", 0,
      "sampling temperature; 0 picks the most likely token (greedy)").atLeast(0);
  public static final Option<Integer> TOP_K = Option.integer("top-k", "K", 0,
      "sample among the K most likely tokens (0: all), after temperature as transformers orders them").atLeast(0);
  public static final Option<Double> TOP_P = Option.number("top-p", "P", 1.0,
      "sample among the most likely tokens whose probability reaches P (1.0: all)")
      .validate(p -> p > 0 && p <= 1, "in (0, 1]");
  public static final Option<Long> SEED = Option.longInteger("seed", "S", 0,
      "run seed: each prompt samples from its own stream, seeded by S and its id (the same output whatever the batch)");
  public static final Option<List<String>> STOP = Option.repeated("stop", "TEXT",
      "stop when the completion contains TEXT; the text is cut before it")
      .validate(l -> l.stream().noneMatch(String::isEmpty), "non-empty");
  public static final Option<Boolean> IGNORE_EOS = Option.flag("ignore-eos", false,
      "keep generating past end-of-sequence tokens (benchmarks)");

  public static final List<Option<?>> ALL = List.of(MAX_NEW_TOKENS, TEMPERATURE, TOP_K, TOP_P, SEED, STOP, IGNORE_EOS);

  /** The table group of these options. */
  public static final OptionTable.Group GROUP = new OptionTable.Group("generation options", ALL);

  private RequestOptions() {}

  /** The sampling settings of a request whose seed is {@code seed}. */
  public static SamplingParams sampling(OptionValues o, long seed) {
    return new SamplingParams(o.get(TEMPERATURE), o.get(TOP_K), o.get(TOP_P), seed);
  }

  /** Whether every request decodes greedily with these options (then identical prompts give identical answers). */
  public static boolean isGreedy(OptionValues o) {
    return sampling(o, 0).isGreedy();
  }

  /**
   * The request for one prompt with these options: the row's seed is derived from the run's seed and its id
   * ({@link SamplingParams#requestSeed}).
   *
   * @param promptTokenIds the prompt already tokenized, or null
   */
  public static GenerationRequest request(OptionValues o, String id, String prompt, long[] promptTokenIds) {
    return new GenerationRequest(id, prompt, o.get(MAX_NEW_TOKENS),
        sampling(o, SamplingParams.requestSeed(o.get(SEED), id)), o.get(STOP), o.get(IGNORE_EOS), promptTokenIds);
  }
}
