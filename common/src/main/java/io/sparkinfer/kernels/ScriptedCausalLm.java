package io.sparkinfer.kernels;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.model.CausalLmBackend;
import io.sparkinfer.model.ForwardBatch;
import io.sparkinfer.model.KvCache;
import io.sparkinfer.model.LayerWeights;
import io.sparkinfer.model.Linear;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.model.RotaryEmbedding;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scripted backend: the same model step as {@link io.sparkinfer.model.CausalLm}, run as one TorchScript
 * call ({@code llama_step.py}) over the same weights and KV cache. It takes the stacked q/k/v and gate/up
 * projections that {@link ModelWeights} holds, so a layer is four matrix multiplications; absent biases are
 * passed as empty tensors.
 *
 * <p>On a GPU, decode steps are captured once per batch cache and key bucket as CUDA graphs and replayed
 * ({@link DecodeGraphs}), and each thread runs on a CUDA stream of its own ({@link CudaGraphs}).
 */
public final class ScriptedCausalLm implements CausalLmBackend {

  static final String KERNEL = "/io/sparkinfer/kernels/llama_step.py";

  /**
   * Whether TorchScript's profiling executor may optimise the step (fusion groups compiled with NVRTC).
   * Off by default. When on, decode steps read the cache's whole capacity (masked) instead of the slots
   * written so far, so a batch's steps keep one shape and the executor compiles its fusions once per batch.
   */
  static final boolean OPTIMIZE = Boolean.getBoolean("sparkinfer.scripted.optimize");
  static final String CLASS_NAME = "LlamaStep";

  /**
   * Whether decode steps on a GPU in fp16/bf16 run attention as variable-length flash attention over each
   * row's written slots ({@code llama_step.py}); on by default, {@code -Dsparkinfer.scripted.flashDecode=false}
   * runs them through SDPA with a mask, as every other step.
   */
  static final boolean FLASH_DECODE = Boolean.parseBoolean(System.getProperty("sparkinfer.scripted.flashDecode", "true"));
  private static final Logger LOG = LoggerFactory.getLogger(ScriptedCausalLm.class);

  private final ModelConfig config;
  private final Device device;
  private final Precision precision;
  private volatile boolean flashDecodeOn = FLASH_DECODE;
  private final PtNDManager manager;
  private final PtSymbolBlock step;
  private final List<IValue> constants = new ArrayList<>();
  private final IValue embedTokens;
  private final IValue layers;
  private final IValue norm;
  private final IValue lmHead;
  private final IValue invFreq;
  private final IValue windows;
  private final IValue numHeads;
  private final IValue numKvHeads;
  private final IValue headDim;
  private final IValue eps;
  private IValue flashDecode;
  /** Why decode steps run without CUDA graphs, or null while they use them. */
  private volatile String graphsOff;
  private final AtomicLong graphCaptures = new AtomicLong();
  private final AtomicLong graphReplays = new AtomicLong();
  private final AtomicLong fusedCaptures = new AtomicLong();
  private final ModelWeights weights;
  private final NDArray invFreqArray;
  private FusedDecode fused; // made with the backend when captured decode steps can be fused
  /** Why captured decode steps are the scripted step rather than fused kernels ({@link FusedDecode}), or null. */
  private volatile String fusedOff;

  /** The scripted backend with CUDA graphs for decode steps where they are available. */
  public ScriptedCausalLm(ModelWeights weights, RotaryEmbedding rope) {
    this(weights, rope, true);
  }

  /**
   * @param cudaGraphs replay decode steps as CUDA graphs ({@link DecodeGraphs}) when the device is a GPU and
   *     {@link CudaGraphs} is available; each thread then runs on a CUDA stream of its own
   */
  public ScriptedCausalLm(ModelWeights weights, RotaryEmbedding rope, boolean cudaGraphs) {
    this.config = weights.config();
    this.device = weights.device();
    this.precision = weights.precision();
    this.graphsOff = !cudaGraphs ? "turned off" : !device.isGpu() ? "not on a GPU"
        : CudaGraphs.unavailableReason().orElse(null);
    this.manager = (PtNDManager) NDManager.newBaseManager(weights.device());
    this.weights = weights;
    this.fusedOff = FusedDecode.unsupportedBeforeLoad(config, precision, device, cudaGraphs).orElse(null);
    try {
      this.step = load(manager);
      List<PtNDArray> perLayer = new ArrayList<>();
      for (LayerWeights w : weights.layers()) {
        perLayer.add(pt(w.inputLayernorm()));
        perLayer.add(pt(w.qkvProj().weight()));
        perLayer.add(bias(w.qkvProj()));
        perLayer.add(pt(w.oProj().weight()));
        perLayer.add(bias(w.oProj()));
        perLayer.add(pt(w.postAttentionLayernorm()));
        perLayer.add(pt(w.gateUpProj().weight()));
        perLayer.add(bias(w.gateUpProj()));
        perLayer.add(pt(w.downProj().weight()));
        perLayer.add(bias(w.downProj()));
      }
      this.embedTokens = keep(IValue.from(pt(weights.embedTokens())));
      this.layers = keep(IValue.listFrom(perLayer.toArray(new PtNDArray[0])));
      this.norm = keep(IValue.from(pt(weights.norm())));
      this.lmHead = keep(IValue.from(pt(weights.lmHead())));
      this.invFreqArray = manager.create(rope.inverseFrequencies());
      this.invFreq = keep(IValue.from((PtNDArray) invFreqArray));
      long[] w = new long[config.numHiddenLayers()];
      for (int i = 0; i < w.length; i++) {
        w[i] = config.slidingWindows()[i];
      }
      this.windows = keep(IValue.listFrom(w));
      this.numHeads = keep(IValue.from((long) config.numAttentionHeads()));
      this.numKvHeads = keep(IValue.from((long) config.numKeyValueHeads()));
      this.headDim = keep(IValue.from((long) config.headDim()));
      this.eps = keep(IValue.from(config.rmsNormEps()));
      this.flashDecode = keep(IValue.from(FLASH_DECODE));
      if (fusedOff == null) {
        fusedDecode(); // compiles the kernels now, as part of the load, rather than in the first decode step
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /** Loads the step module from its TorchScript source. */
  static PtSymbolBlock load(PtNDManager manager) {
    return TorchScriptArchive.load(manager, CLASS_NAME, KERNEL);
  }

  @Override
  public String name() {
    return "scripted";
  }

  /** Chooses the decode attention path from now on (tests compare the two; not for use with captured graphs). */
  void useFlashDecode(boolean on) {
    IValue old = flashDecode;
    flashDecode = IValue.from(on);
    flashDecodeOn = on;
    constants.set(constants.indexOf(old), flashDecode);
    old.close();
  }

  /**
   * Whether decode steps run flash attention over each row's written slots (the kernel's own test: CUDA,
   * fp16 or bf16, head dim a multiple of 8, flash decode on), so how many slots a step reads does not
   * depend on its key length. If this says yes and the kernel disagrees, steps read the whole cache,
   * masked: slower, never wrong.
   */
  boolean decodeReadsWrittenSlotsOnly() {
    Precision p = precision;
    return flashDecodeOn && device.isGpu() && (p == Precision.FP16 || p == Precision.BF16) && config.headDim() % 8 == 0;
  }

  /** Whether decode steps replay CUDA graphs; else {@link #cudaGraphsOffReason()} says why not. */
  public boolean usesCudaGraphs() {
    return graphsOff == null;
  }

  public String cudaGraphsOffReason() {
    return graphsOff;
  }

  /**
   * The fused decode step's model-wide parts when captured decode steps can be fused kernels, else null
   * ({@link #fusedDecodeOffReason()} says why). Made when the backend is (the kernels compile then); if they
   * do not compile, fused steps are turned off for this backend (logged once) and graphs capture the
   * scripted step.
   */
  synchronized FusedDecode fusedDecode() {
    if (fused == null && fusedOff == null) {
      Optional<String> unsupported = decodeReadsWrittenSlotsOnly()
          ? FusedDecode.unsupported(config, precision, device) : Optional.of("decode attention is not flash decode");
      if (unsupported.isPresent()) {
        fusedOff = unsupported.get();
      } else {
        try {
          fused = new FusedDecode(weights, invFreqArray);
        } catch (RuntimeException e) {
          fusedFailed(e);
        }
      }
    }
    return fused;
  }

  /** Turns fused steps off for this backend (logged once): graphs capture the scripted step from now on. */
  synchronized void fusedFailed(RuntimeException e) {
    fusedOff = "fused kernels failed: " + firstLine(e.getMessage());
    LOG.warn("fused decode kernels turned off for this model, decode graphs capture the scripted step", e);
  }

  /** Why captured decode steps are not fused kernels, or null while they are. */
  public String fusedDecodeOffReason() {
    return fusedOff;
  }

  /** CUDA graphs captured so far whose step is the fused one ({@link FusedDecodeStep}). */
  public long fusedCaptures() {
    return fusedCaptures.get();
  }

  void countFusedCapture() {
    fusedCaptures.incrementAndGet();
  }

  /** CUDA graphs captured so far (one per KV cache and key-length bucket). */
  public long graphCaptures() {
    return graphCaptures.get();
  }

  /** Decode steps run as graph replays so far. */
  public long graphReplays() {
    return graphReplays.get();
  }

  void countCapture() {
    graphCaptures.incrementAndGet();
  }

  void countReplay() {
    graphReplays.incrementAndGet();
  }

  void countReplays(int n) {
    graphReplays.addAndGet(n);
  }

  @Override
  public NDArray forward(NDManager scope, ForwardBatch batch, KvCache cache) {
    if (usesCudaGraphs()) {
      CudaGraphs.useThreadStream(device); // every step of a thread on one stream, the graphs' too
    }
    return run(scope, batch, cache);
  }

  /**
   * A decode step as a replayed CUDA graph when graphs are on. If capturing or replaying fails, graphs are
   * turned off for this backend (logged once) and the step runs as a plain call; a failed capture has
   * run nothing, and the warm-up runs before it wrote the same keys and values the plain call writes.
   */
  @Override
  public NDArray decode(NDManager scope, long[] tokenIds, long[] positions, int keyLength, KvCache cache) {
    if (usesCudaGraphs()) {
      try {
        return graphs(cache).step(scope, tokenIds, positions, keyLength);
      } catch (RuntimeException e) {
        graphsFailed(e);
      }
    }
    return CausalLmBackend.super.decode(scope, tokenIds, positions, keyLength, cache);
  }

  /**
   * Greedy steps without the host in between: each step's argmax is fed back on the device
   * ({@link DecodeInputs#feedBack}); with CUDA graphs the steps are back-to-back replays.
   */
  @Override
  public long[][] decodeGreedy(NDManager scope, long[] tokenIds, long[] positions, int keyLength, KvCache cache,
      int steps) {
    if (steps > DecodeInputs.MAX_STEPS) {
      throw new IllegalArgumentException("at most " + DecodeInputs.MAX_STEPS + " greedy steps per call, got " + steps);
    }
    if (usesCudaGraphs()) {
      try {
        return graphs(cache).greedy(scope, tokenIds, positions, keyLength, steps);
      } catch (RuntimeException e) {
        graphsFailed(e); // the steps run below from the same inputs, writing the same keys and values
      }
    }
    try (NDManager loop = scope.newSubManager()) {
      DecodeInputs inputs = new DecodeInputs(loop, tokenIds.length, cache.capacity() - 1);
      inputs.write(loop, tokenIds, positions);
      for (int s = 0; s < steps; s++) {
        try (NDManager step = loop.newSubManager()) {
          inputs.feedBack(run(step, inputs.batch(keyLength), cache));
        }
      }
      return inputs.history(steps);
    }
  }

  /** The cache's decode graphs (made on first use), with this thread on its own CUDA stream. */
  private DecodeGraphs graphs(KvCache cache) {
    CudaGraphs.useThreadStream(device);
    return cache.attachment(DecodeGraphs.class, () -> new DecodeGraphs(this, cache, device));
  }

  /** Turns graphs off for this backend (logged once); callers then run the step as a plain call. */
  private void graphsFailed(RuntimeException e) {
    graphsOff = "a graph failed: " + firstLine(e.getMessage());
    LOG.warn("CUDA graphs turned off for this model, decode steps continue without them", e);
  }

  private static String firstLine(String message) {
    if (message == null) {
      return "no message";
    }
    int nl = message.indexOf('\n');
    return nl < 0 ? message : message.substring(0, nl);
  }

  /** One step as one call of the TorchScript module: (B, V) float32 logits attached to {@code scope}. */
  NDArray run(NDManager scope, ForwardBatch batch, KvCache cache) {
    List<IValue> perCall = new ArrayList<>();
    try {
      IValue[] args = {
        call(perCall, IValue.from((PtNDArray) batch.inputIds())),
        call(perCall, IValue.from((PtNDArray) batch.positions())),
        call(perCall, IValue.from((PtNDArray) batch.lastIndex())),
        call(perCall, IValue.from((long) (OPTIMIZE ? cache.capacity() : batch.keyLength()))),
        embedTokens, layers, norm, lmHead, invFreq,
        call(perCall, IValue.listFrom(pts(cache.keyArrays()))),
        call(perCall, IValue.listFrom(pts(cache.valueArrays()))),
        windows, numHeads, numKvHeads, headDim, eps, flashDecode
      };
      JniUtils.setGraphExecutorOptimize(OPTIMIZE); // per thread in libtorch
      IValue out = call(perCall, step.forward(args));
      return out.toTensor((PtNDManager) scope); // (B, V) float32
    } finally {
      perCall.forEach(IValue::close);
    }
  }

  /** The projection's bias, or an empty tensor: the kernel skips biases with no elements. */
  private PtNDArray bias(Linear l) {
    return l.bias() != null ? pt(l.bias()) : (PtNDArray) manager.zeros(new Shape(0), DataType.FLOAT32); // never read
  }

  private static PtNDArray pt(NDArray a) {
    return (PtNDArray) a;
  }

  private static PtNDArray[] pts(NDArray[] a) {
    PtNDArray[] out = new PtNDArray[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = (PtNDArray) a[i];
    }
    return out;
  }

  private IValue keep(IValue v) {
    constants.add(v);
    return v;
  }

  private static IValue call(List<IValue> perCall, IValue v) {
    perCall.add(v);
    return v;
  }

  @Override
  public void close() {
    synchronized (this) {
      if (fused != null) {
        fused.close();
        fused = null;
      }
    }
    constants.forEach(IValue::close);
    constants.clear();
    manager.close();
  }
}
