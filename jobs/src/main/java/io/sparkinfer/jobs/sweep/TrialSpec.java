package io.sparkinfer.jobs.sweep;

import io.sparkinfer.options.OptionValues;
import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One trial to run on an executor.
 *
 * @param trial the trial's number in the study (0 for the reference run)
 * @param params the values of the space's axes for this trial
 * @param engine the engine's option values: the study's, with this trial's axes applied
 * @param threads decode threads, each with its own batch
 * @param prompts prompts per repeat
 * @param promptLen synthetic prompt length (ignored for a sampled workload)
 * @param maxNewTokens tokens generated per prompt (eos ignored)
 * @param repeats timed repeats after the warm-up
 * @param agreementPrompts first prompts whose tokens are kept for the agreement check
 * @param pruneAgainst (tokens/s, token latency p99) of finished trials; the trial stops after its first repeat
 *     when one is better in both by {@link TrialRunner#PRUNE_MARGIN}; empty for no pruning
 */
public record TrialSpec(int trial, Map<String, String> params, OptionValues engine, int threads, int prompts, int promptLen,
    int maxNewTokens, int repeats, int agreementPrompts, List<double[]> pruneAgainst) implements Serializable {

  public TrialSpec {
    params = Collections.unmodifiableMap(new LinkedHashMap<>(params)); // in the axes' order
    pruneAgainst = List.copyOf(pruneAgainst);
  }

  /** Whether this is the study's reference run (its tokens are what trials are compared with). */
  public boolean isReference() {
    return trial == 0;
  }
}
