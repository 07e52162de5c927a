package io.sparkinfer.jobs.sweep;

import java.io.Serializable;
import java.util.List;
import java.util.Map;

/**
 * What one trial measured, as its executor reports it. Latencies are over every request of every timed
 * repeat; throughput samples are one per repeat. Null metrics when the trial did not finish.
 *
 * @param status {@link SweepTables#OK}, {@link SweepTables#OOM}, {@link SweepTables#PRUNED} or
 *     {@link SweepTables#FAILED}
 * @param tokensPerS completion tokens per wall second of each timed repeat
 * @param promptTokensPerS prompt tokens per second of prefill, over the timed repeats
 * @param ttftMs time to first token: p50, p99 (from the start of a request's prefill)
 * @param tokenLatencyMs time per generated token after the first: p50, p99
 * @param latencyMs request latency: p50, p99
 * @param gpu the GPU's name, driver and count as {@code nvidia-smi} reports them; null on a CPU
 * @param peakGpuMemMb the most GPU memory in use while the trial ran ({@code nvidia-smi}, the whole device)
 * @param agreementIds greedy output ids of the first prompts, for the comparison with the reference
 */
public record TrialResult(
    int trial,
    Map<String, String> params,
    String status,
    String error,
    long startedAtMillis,
    double wallSeconds,
    String executorId,
    String device,
    String precision,
    String backend,
    String engine,
    Map<String, String> engineOptions,
    int threads,
    Integer batchSize,
    Integer promptLen,
    int maxNewTokens,
    double[] tokensPerS,
    Double promptTokensPerS,
    double[] ttftMs,
    double[] tokenLatencyMs,
    double[] latencyMs,
    Gpu gpu,
    Double peakGpuMemMb,
    Double gpuUtilMean,
    Double gpuMemMeanMb,
    String modelSha256,
    String djlVersion,
    String libtorchVersion,
    List<long[]> agreementIds) implements Serializable {

  /** The GPU a trial ran on. */
  public record Gpu(String name, String driver, int count) implements Serializable {}

  public boolean ok() {
    return SweepTables.OK.equals(status);
  }

  /** The mean tokens/s over the timed repeats, or NaN when there were none. */
  public double meanTokensPerS() {
    if (tokensPerS == null || tokensPerS.length == 0) {
      return Double.NaN;
    }
    double s = 0;
    for (double v : tokensPerS) {
      s += v;
    }
    return s / tokensPerS.length;
  }

  /** p99 per-token latency, else p99 request latency (one-token outputs), or NaN. */
  public double latencyObjective() {
    if (tokenLatencyMs != null && !Double.isNaN(tokenLatencyMs[1])) {
      return tokenLatencyMs[1];
    }
    return latencyMs != null ? latencyMs[1] : Double.NaN;
  }

  /** A result for a trial that did not run or did not finish. */
  static TrialResult notRun(TrialSpec spec, String status, String error, long started, double wall, String executor,
      String device) {
    return new TrialResult(spec.trial(), spec.params(), status, error, started, wall, executor, device, null, null, null,
        Map.of(), spec.threads(), null, null, spec.maxNewTokens(), new double[0], null, null, null, null, null, null,
        null, null, null, null, null, List.of());
  }
}
