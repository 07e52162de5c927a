package io.sparkinfer.backend.scripted;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.backend.BatchCache;
import io.sparkinfer.backend.CausalLmBackend;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.fused.FusedDecode;
import io.sparkinfer.backend.fused.FusedDecodeStep;
import io.sparkinfer.backend.fused.FusedPrefillStep;
import io.sparkinfer.cuda.CudaGraphs;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.model.RotaryEmbedding;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scripted backend: the same model step as the eager one, run as one TorchScript call
 * ({@code llama_step.py}) over the same weights and KV cache. The step takes every weight by its name
 * ({@link ModelWeights#stepParameters()}), with q/k/v and gate/up stacked, so a layer is four matrix
 * multiplications.
 *
 * <p>On a GPU, decode steps are captured once per batch cache (and key bucket) as CUDA graphs and replayed
 * ({@link DecodeGraphs}), in fp16/bf16 as our fused kernels ({@link io.sparkinfer.backend.fused.FusedDecode});
 * {@link DecodeAcceleration} holds what is on and why the rest is off. Each thread runs on a CUDA stream of
 * its own ({@link CudaGraphs#useThreadStream}).
 */
public final class ScriptedCausalLm implements CausalLmBackend {

  private static final Logger LOG = LoggerFactory.getLogger(ScriptedCausalLm.class);

  /** The step's TorchScript source (a class resource) and the module class it defines. */
  public static final String KERNEL = "/io/sparkinfer/backend/scripted/llama_step.py";
  public static final String CLASS_NAME = "LlamaStep";

  private final ModelConfig config;
  private final Device device;
  private final Precision precision;
  private final boolean optimize;
  private final boolean graphTiming;
  private volatile boolean flashDecodeOn;
  private final boolean packedPrefill;
  private final PtNDManager manager;
  private final PtSymbolBlock step;
  private final List<IValue> constants = new ArrayList<>();
  private final IValue params;
  private final IValue invFreq;
  private final IValue windows;
  private final IValue numHeads;
  private final IValue numKvHeads;
  private final IValue headDim;
  private final IValue eps;
  private IValue flashDecode;
  private final IValue flashPrefill;
  private final IValue everyRow; // an empty int64 tensor: the step's rows are the cache's rows 0..R-1
  private final NDArray invFreqArray;
  private final DecodeAcceleration acceleration;
  /** Whether caches hold float8 e4m3 bytes ({@link ScriptedOptions#KV_CACHE_DTYPE}). */
  private final boolean float8Cache;
  /** Why a float8 cache on a GPU is read by the TorchScript step rather than our kernels, or null. */
  private String float8CacheSlow;

  /**
   * @param options the engine's options: {@link ScriptedOptions} and, for fused decode steps,
   *     {@link io.sparkinfer.backend.fused.FusedOptions}
   */
  public ScriptedCausalLm(ModelWeights weights, RotaryEmbedding rope, OptionValues options) {
    this.config = weights.config();
    this.device = weights.device();
    this.precision = weights.precision();
    this.optimize = options.get(ScriptedOptions.TORCHSCRIPT_OPTIMIZE);
    this.graphTiming = options.get(ScriptedOptions.GRAPH_TIMING);
    this.flashDecodeOn = options.get(ScriptedOptions.FLASH_DECODE);
    this.packedPrefill = options.get(ScriptedOptions.PACKED_PREFILL);
    this.manager = (PtNDManager) NDManager.newBaseManager(weights.device());
    DecodeAcceleration made = null;
    try {
      this.step = load(manager);
      Map<String, PtNDArray> byName = new LinkedHashMap<>();
      Map<String, NDArray> stepParams = precision.fp8Projections()
          ? Fp8Projections.of(weights.stepParameters(), config.numHiddenLayers(), manager) : weights.stepParameters();
      stepParams.forEach((name, tensor) -> byName.put(name, (PtNDArray) tensor));
      this.params = keep(IValue.stringMapFrom(byName));
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
      this.flashDecode = keep(IValue.from(flashDecodeOn));
      this.flashPrefill = keep(IValue.from(true));
      this.everyRow = keep(IValue.from((PtNDArray) manager.create(new long[0])));
      made = new DecodeAcceleration(weights, stepParams, invFreqArray, options, decodeReadsWrittenSlotsOnly(),
          packedPrefill);
      this.acceleration = made;
      this.float8Cache = float8Cache(options.get(ScriptedOptions.KV_CACHE_DTYPE));
    } catch (RuntimeException e) {
      if (made != null) {
        made.close();
      }
      closeConstants();
      throw e;
    }
  }

  /**
   * Whether caches hold float8 e4m3 bytes: {@code fp8} asked for, or auto under {@code --precision fp8} where decode
   * and prefill steps are fused kernels that read them. Asked for elsewhere it runs through the TorchScript step,
   * which widens the whole cache in each layer of each step: on the CPU (emulated, as fp8's matmuls are), and on a
   * GPU right but slow, logged and named by {@link #describe()} ({@link #float8CacheSlow}).
   */
  private boolean float8Cache(ScriptedOptions.KvCacheDtype asked) {
    if (asked == ScriptedOptions.KvCacheDtype.MODEL) {
      return false;
    }
    String off = !device.isGpu() ? "not on a GPU" : float8CacheOffOnGpu();
    if (asked == ScriptedOptions.KvCacheDtype.FP8) {
      if (device.isGpu() && off != null) {
        float8CacheSlow = off;
        LOG.warn("--kv-cache-dtype fp8: our kernels cannot read a float8 cache here ({}); the TorchScript step widens "
            + "the whole cache in each layer of each step, which is slow", off);
      }
      return true;
    }
    return off == null && precision.fp8Projections(); // auto
  }

  /** Why fused steps on this GPU cannot read a float8 cache, or null when they can. */
  private String float8CacheOffOnGpu() {
    if (!acceleration.graphsOn()) {
      return "decode steps are not CUDA graphs (" + acceleration.graphsOffReason() + ")";
    }
    FusedDecode fused = acceleration.fused();
    if (fused == null) {
      return "decode steps are not fused kernels (" + acceleration.fusedOffReason() + ")";
    }
    if (acceleration.fusedPrefillOffReason() != null) {
      return "prefill steps are not fused kernels (" + acceleration.fusedPrefillOffReason() + ")";
    }
    return fused.float8CacheUnsupported().orElse(null);
  }

  /** Loads the step module from its TorchScript source. */
  static PtSymbolBlock load(PtNDManager manager) {
    return TorchScriptArchive.load(manager, CLASS_NAME, KERNEL);
  }

  @Override
  public String name() {
    return "scripted";
  }

  @Override
  public String describe() {
    String cache = !float8Cache ? "" : float8CacheSlow == null ? ", float8 KV cache"
        : ", float8 KV cache widened by the TorchScript step (" + float8CacheSlow + ")";
    return (device.isGpu() ? "scripted backend, " + acceleration.describe() : "scripted backend") + cache;
  }

  /** Whether caches hold float8 e4m3 bytes ({@code --kv-cache-dtype}). */
  public boolean float8Cache() {
    return float8Cache;
  }

  @Override
  public DataType cacheStorageType(DataType computeType) {
    return float8Cache ? DataType.UINT8 : computeType;
  }

  /**
   * Prefill runs packed unless {@link ScriptedOptions#PACKED_PREFILL} is off: on a GPU in fp16/bf16 through
   * variable-length flash attention, elsewhere laid out padded inside the step for SDPA.
   */
  @Override
  public boolean runsPacked() {
    return packedPrefill;
  }

  @Override
  public boolean usesCudaGraphs() {
    return acceleration.graphsOn();
  }

  /**
   * Captured graphs' float32 logits (one graph per {@link DecodeGraphs#KEY_BUCKET} slots at most) and the
   * fused step's buffers.
   */
  @Override
  public long workspaceBytesPerSequence(int tokens) {
    if (!usesCudaGraphs()) {
      return 0;
    }
    long graphs = (tokens + DecodeGraphs.KEY_BUCKET - 1) / DecodeGraphs.KEY_BUCKET;
    long fused = acceleration.fusedOffReason() == null
        ? FusedDecodeStep.bytesPerRow(config, precision.dataType().getNumOfBytes()) : 0;
    return graphs * config.vocabSize() * 4L + fused;
  }

  /** What runs decode steps on the GPU, with counters (for logs and tests). */
  public DecodeAcceleration acceleration() {
    return acceleration;
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
    return flashDecodeOn && device.isGpu() && (p == Precision.FP16 || p.isBf16()) && config.headDim() % 8 == 0;
  }

  /** Whether new decode graphs are timed when captured ({@link ScriptedOptions#GRAPH_TIMING}). */
  boolean graphTiming() {
    return graphTiming;
  }

  /** Whether TorchScript's profiling executor optimises the step ({@link ScriptedOptions#TORCHSCRIPT_OPTIMIZE}). */
  boolean optimize() {
    return optimize;
  }

  @Override
  public BatchCache allocateCache(NDManager parent, int batchSize, int capacity) {
    return KvCache.allocate(parent, config, batchSize, capacity, precision.dataType(), float8Cache);
  }

  /**
   * One step; a packed prefill line (B = 1, S > 1) as fused kernels ({@link FusedPrefillStep}) where decode steps
   * are fused and {@link io.sparkinfer.backend.fused.FusedOptions#FUSED_PREFILL} is on. If a fused prefill fails
   * other than for memory, fused prefill is turned off for this backend (logged once) and the step runs as the
   * TorchScript call, which writes every slot the failed one may have written.
   */
  @Override
  public NDArray forward(NDManager scope, ForwardBatch batch, BatchCache cache) {
    if (usesCudaGraphs()) {
      CudaGraphs.useThreadStream(device); // every step of a thread on one stream, the graphs' too
    }
    KvCache kv = KvCache.of(cache);
    FusedDecode kernels = isPackedLine(batch) ? acceleration.prefillKernels() : null;
    if (kernels != null && kernels.reads(kv)) {
      try {
        NDArray logits = FusedPrefillStep.run(kernels, scope, batch, kv);
        acceleration.countFusedPrefill();
        return logits;
      } catch (RuntimeException e) {
        acceleration.fusedPrefillFailed(e); // rethrows out of memory
      }
    }
    return run(scope, batch, kv);
  }

  /** Whether the step is one line of several tokens: a packed prefill (or a single row's, which reads the same). */
  private static boolean isPackedLine(ForwardBatch batch) {
    return batch.inputIds().getShape().get(0) == 1 && batch.inputIds().getShape().get(1) > 1;
  }

  /**
   * A decode step as a replayed CUDA graph when graphs are on. If capturing or replaying fails, graphs are
   * turned off for this backend (logged once) and the step runs as a plain call; a failed capture has
   * run nothing, and the warm-up runs before it wrote the same keys and values the plain call writes.
   */
  @Override
  public NDArray decode(NDManager scope, long[] tokenIds, long[] positions, int keyLength, BatchCache cache) {
    if (usesCudaGraphs()) {
      try {
        return graphs(KvCache.of(cache)).step(scope, tokenIds, positions, keyLength);
      } catch (RuntimeException e) {
        acceleration.graphsFailed(e);
      }
    }
    return CausalLmBackend.super.decode(scope, tokenIds, positions, keyLength, cache);
  }

  /**
   * Greedy steps without the host in between: each step's argmax is fed back on the device
   * ({@link DecodeInputs#feedBack}); with CUDA graphs the steps are back-to-back replays.
   */
  @Override
  public long[][] decodeGreedy(NDManager scope, long[] tokenIds, long[] positions, int keyLength, BatchCache batchCache,
      int steps) {
    KvCache cache = KvCache.of(batchCache);
    if (steps > DecodeInputs.MAX_STEPS) {
      throw new IllegalArgumentException("at most " + DecodeInputs.MAX_STEPS + " greedy steps per call, got " + steps);
    }
    if (usesCudaGraphs()) {
      try {
        return graphs(cache).greedy(scope, tokenIds, positions, keyLength, steps);
      } catch (RuntimeException e) {
        acceleration.graphsFailed(e); // the steps run below from the same inputs, writing the same keys and values
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
    return cache.attachment(DecodeGraphs.class, () -> new DecodeGraphs(this, acceleration, cache, device));
  }

  /** One step as one call of the TorchScript module: (B, V) float32 logits attached to {@code scope}. */
  NDArray run(NDManager scope, ForwardBatch batch, KvCache cache) {
    List<IValue> perCall = new ArrayList<>();
    try {
      IValue[] args = {
        call(perCall, IValue.from((PtNDArray) batch.inputIds())),
        call(perCall, IValue.from((PtNDArray) batch.positions())),
        call(perCall, IValue.from((PtNDArray) batch.lastIndex())),
        batch.cacheRows() != null ? call(perCall, IValue.from((PtNDArray) batch.cacheRows())) : everyRow,
        call(perCall, IValue.from((long) (optimize ? cache.capacity() : batch.keyLength()))),
        params, invFreq,
        call(perCall, IValue.listFrom(pts(cache.keyArrays()))),
        call(perCall, IValue.listFrom(pts(cache.valueArrays()))),
        windows, numHeads, numKvHeads, headDim, eps,
        batch.inputIds().getShape().get(1) == 1 ? flashDecode : flashPrefill // decode steps as --flash-decode says
      };
      JniUtils.setGraphExecutorOptimize(optimize); // per thread in libtorch
      IValue out = call(perCall, step.forward(args));
      return out.toTensor((PtNDManager) scope); // (B, V) float32
    } finally {
      perCall.forEach(IValue::close);
    }
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

  private void closeConstants() {
    constants.forEach(IValue::close);
    constants.clear();
    manager.close();
  }

  @Override
  public void close() {
    acceleration.close();
    closeConstants();
  }
}
