package io.sparkinfer.generate;

import io.sparkinfer.options.Option;
import java.util.List;

/** The engine options of the generation loop (read by {@link Generator}; listed in the engine's table). */
public final class GeneratorOptions {

  public static final Option<Integer> BATCH_SIZE = Option.integerOrAuto("batch-size", "N|auto", 1,
      "sequences decoding together; auto: as many as fit the device's free memory for the longest prompt of each "
          + "call plus its new tokens (at most " + BatchSizer.MAX_BATCH + "; rows no longer than an earlier batch's "
          + "count the memory it left in libtorch's cache as free; the Spark job's batches hold the run's longest "
          + "prompt where that costs at most an eighth of the rows)");

  public static final Option<Integer> MAX_PROMPT_TOKENS = Option.integerOrAuto("max-prompt-tokens", "N|auto", 1,
      "longer prompts become prompt_too_long errors; auto: the model's context less one");

  /**
   * Greedy steps the backend runs per call while every running row is greedy: it feeds each step's tokens
   * back on the device, and the host reads them once per chunk (with CUDA graphs, replays run back to back).
   * A row that stops inside a chunk (eos, a stop string) frees its slot at the chunk's end.
   */
  public static final Option<Integer> DECODE_CHUNK = Option.integer("decode-chunk", "N", 16,
      "greedy decode steps per backend call, fed back on the device (1: the host reads every step)")
      .validate(n -> n >= 1 && n <= 16, "in [1, 16]");

  public static final Option<Integer> MAX_PREFILL_TOKENS = Option.integer("max-prefill-tokens", "N", 32768,
      "prompt tokens one prefill pass takes at most (a packed line: its prompts' tokens, less a shared prefix the "
          + "batch already holds; padded rows: the longest prompt times the rows); longer admissions run as several "
          + "passes (with "
          + "--batch-size auto, fewer where one pass would take more than half the memory batches may use: 80% of "
          + "the GPU's free memory, 2 GiB on a CPU)")
      .atLeast(1);

  public static final Option<Integer> SHARED_PREFIX = Option.integer("shared-prefix", "N", 32,
      "prompts prefilled together that begin with the same N or more tokens (a system prompt, a template) compute "
          + "those tokens' keys and values once and share them (0: never)").atLeast(0);

  public static final Option<Boolean> OOM_RETRY = Option.flag("oom-retry", true,
      "a batch that runs out of device memory is retried at half its width (down to 1) with its unfinished rows; "
          + "false: they become out_of_memory errors (the sweep's trials, where out of memory is a result)");

  public static final Option<Boolean> PROFILE_STEPS = Option.flag("profile-steps", false,
      "print per batch where decode steps spend their time (inputs, model call, choosing tokens, bookkeeping)")
      .diagnostic();

  /** Every option of this class, as the engine's table lists them. */
  public static final List<Option<?>> ALL =
      List.of(BATCH_SIZE, MAX_PROMPT_TOKENS, DECODE_CHUNK, MAX_PREFILL_TOKENS, SHARED_PREFIX, OOM_RETRY, PROFILE_STEPS);

  private GeneratorOptions() {}
}
