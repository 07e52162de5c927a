package io.sparkinfer.backend.scripted;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import io.sparkinfer.backend.fused.FusedDecode;
import io.sparkinfer.base.OutOfMemory;
import io.sparkinfer.backend.fused.FusedOptions;
import io.sparkinfer.backend.fused.FusedPrefillStep;
import io.sparkinfer.cuda.CudaGraphs;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.OptionValues;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How one scripted backend's steps run on the GPU, and why not faster: whether decode steps replay CUDA
 * graphs ({@link DecodeGraphs}), whether the captured step is our fused kernels ({@link FusedDecode})
 * rather than the TorchScript step, and whether packed prefill steps run the same kernels
 * ({@link FusedPrefillStep}), each with the reason when it is off, and counters of captures, replays and fused
 * prefills. A graph or fused step that fails turns the feature off for this backend (logged once); steps then
 * continue the slower way. Running out of device memory turns nothing off: it goes to the caller, whose batch
 * sizing backs off.
 */
public final class DecodeAcceleration implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(DecodeAcceleration.class);

  private final ModelWeights weights;
  private final Map<String, NDArray> stepParams;
  private final NDArray invFreq;
  private final OptionValues options;
  private final boolean stepReadsWrittenSlotsOnly;
  /** Why decode steps run without CUDA graphs, or null while they use them. */
  private volatile String graphsOff;
  /** Why captured decode steps are the TorchScript step rather than fused kernels, or null. */
  private volatile String fusedOff;
  private FusedDecode fused; // made with the backend when captured decode steps can be fused
  /** Why packed prefill steps run the TorchScript step rather than fused kernels, or null while they are fused. */
  private volatile String fusedPrefillOff;
  private final AtomicLong fusedPrefills = new AtomicLong();
  private final AtomicLong graphCaptures = new AtomicLong();
  private final AtomicLong graphReplays = new AtomicLong();
  private final AtomicLong fusedCaptures = new AtomicLong();
  private final AtomicLong captureNanos = new AtomicLong();
  private final Map<Integer, Double> replayMillis = new ConcurrentHashMap<>();

  /**
   * Decides from the options and the device, and compiles the fused kernels now (as part of the load rather
   * than in the first decode step) when captured steps can be fused.
   *
   * @param stepParams the step's parameters by key, as the TorchScript step takes them (fp8: projections quantized)
   * @param invFreq (D/2) float32 rotary inverse frequencies on the device, kept by the caller
   * @param stepReadsWrittenSlotsOnly whether the TorchScript step's decode attention is flash attention over
   *     each row's written slots (fused steps read the cache the same way)
   * @param packedPrefill whether prefill steps are packed lines (fused prefill steps take only those)
   */
  DecodeAcceleration(ModelWeights weights, Map<String, NDArray> stepParams, NDArray invFreq, OptionValues options,
      boolean stepReadsWrittenSlotsOnly, boolean packedPrefill) {
    this.weights = weights;
    this.stepParams = stepParams;
    this.invFreq = invFreq;
    this.options = options;
    this.stepReadsWrittenSlotsOnly = stepReadsWrittenSlotsOnly;
    Device device = weights.device();
    boolean cudaGraphs = options.get(ScriptedOptions.CUDA_GRAPHS);
    this.graphsOff = !cudaGraphs ? "turned off" : !device.isGpu() ? "not on a GPU"
        : CudaGraphs.unavailableReason().orElse(null);
    this.fusedOff = FusedDecode.unsupportedBeforeLoad(weights.config(), weights.precision(), device, cudaGraphs, options)
        .orElse(null);
    if (fusedOff == null) {
      fused();
    }
    this.fusedPrefillOff = !options.get(FusedOptions.FUSED_PREFILL) ? "turned off (--fused-prefill=false)"
        : !packedPrefill ? "prefill is not packed (--packed-prefill=false)"
        : fused == null ? "no fused kernels: " + fusedOff : null;
  }

  /** Whether decode steps replay CUDA graphs; else {@link #graphsOffReason()} says why not. */
  public boolean graphsOn() {
    return graphsOff == null;
  }

  public String graphsOffReason() {
    return graphsOff;
  }

  /** Why captured decode steps are not fused kernels, or null while they are. */
  public String fusedOffReason() {
    return fusedOff;
  }

  /** Why packed prefill steps are not fused kernels, or null while they are. */
  public String fusedPrefillOffReason() {
    return fusedPrefillOff;
  }

  /** Packed prefill steps run as fused kernels so far. */
  public long fusedPrefills() {
    return fusedPrefills.get();
  }

  /**
   * The fused kernels for packed prefill steps, or null when those run the TorchScript step
   * ({@link #fusedPrefillOffReason()} says why).
   */
  synchronized FusedDecode prefillKernels() {
    return fusedPrefillOff == null ? fused : null;
  }

  void countFusedPrefill() {
    fusedPrefills.incrementAndGet();
  }

  /**
   * Turns fused prefill off for this backend (logged once) after a step that failed; the caller then runs the
   * TorchScript step. Running out of memory turns nothing off: it is rethrown, for the caller's batch sizing.
   */
  void fusedPrefillFailed(RuntimeException failure) {
    if (OutOfMemory.causedBy(failure)) {
      throw failure;
    }
    fusedPrefillOff = "fused prefill failed: " + firstLine(failure.getMessage());
    LOG.warn("fused prefill kernels turned off for this model, prefill runs the TorchScript step", failure);
  }

  /** CUDA graphs captured so far (one per KV cache and key-length bucket). */
  public long graphCaptures() {
    return graphCaptures.get();
  }

  /**
   * Seconds spent capturing graphs so far, their warm-up runs included: a cost each new KV cache pays once, before
   * its first decode step, that the steps replayed after it do not.
   */
  public double graphCaptureSeconds() {
    return captureNanos.get() / 1e9;
  }

  /**
   * With {@code --graph-timing}: the device time of one replay, back to back, of the last graph captured for batches
   * of {@code batchSize} rows (ms); null when none was timed. The step's own time, apart from what the host adds
   * between steps.
   */
  public Double replayMillis(int batchSize) {
    return replayMillis.get(batchSize);
  }

  void recordReplayTime(int batchSize, double millis) {
    replayMillis.put(batchSize, millis);
  }

  /** Decode steps run as graph replays so far. */
  public long graphReplays() {
    return graphReplays.get();
  }

  /** CUDA graphs captured so far whose step is the fused one. */
  public long fusedCaptures() {
    return fusedCaptures.get();
  }

  /**
   * The fused step's model-wide parts when captured decode steps can be fused kernels, else null
   * ({@link #fusedOffReason()} says why). If the kernels do not compile, fused steps are turned off.
   */
  synchronized FusedDecode fused() {
    if (fused == null && fusedOff == null) {
      ModelConfig config = weights.config();
      Precision precision = weights.precision();
      Optional<String> unsupported = stepReadsWrittenSlotsOnly
          ? FusedDecode.unsupported(config, precision, weights.device(), options)
          : Optional.of("decode attention is not flash decode");
      if (unsupported.isPresent()) {
        fusedOff = unsupported.get();
      } else {
        try {
          fused = new FusedDecode(weights, stepParams, invFreq, options);
        } catch (RuntimeException e) {
          fusedFailed(e);
        }
      }
    }
    return fused;
  }

  /** Turns fused steps off for this backend (logged once): graphs capture the TorchScript step from now on. */
  synchronized void fusedFailed(RuntimeException e) {
    fusedOff = "fused kernels failed: " + firstLine(e.getMessage());
    LOG.warn("fused decode kernels turned off for this model, decode graphs capture the TorchScript step", e);
  }

  /** Turns graphs off for this backend (logged once); callers then run the step as a plain call. */
  void graphsFailed(RuntimeException e) {
    graphsOff = "a graph failed: " + firstLine(e.getMessage());
    LOG.warn("CUDA graphs turned off for this model, decode steps continue without them", e);
  }

  void countCapture(boolean fusedStep, long nanos) {
    graphCaptures.incrementAndGet();
    captureNanos.addAndGet(nanos);
    if (fusedStep) {
      fusedCaptures.incrementAndGet();
    }
  }

  void countReplays(int n) {
    graphReplays.addAndGet(n);
  }

  /**
   * How steps run, for logs: {@code CUDA graphs of fused decode kernels, fused prefill kernels}, or why not.
   */
  String describe() {
    String prefill = fusedPrefillOffReason() == null ? ", fused prefill kernels" : "";
    if (!graphsOn()) {
      return "no CUDA graphs: " + graphsOff + prefill;
    }
    return (fusedOff == null ? "CUDA graphs of fused decode kernels"
        : "CUDA graphs of the TorchScript step (not fused: " + fusedOff + ")") + prefill;
  }

  private static String firstLine(String message) {
    if (message == null) {
      return "no message";
    }
    int nl = message.indexOf('\n');
    return nl < 0 ? message : message.substring(0, nl);
  }

  @Override
  public synchronized void close() {
    if (fused != null) {
      fused.close();
      fused = null;
    }
  }
}
