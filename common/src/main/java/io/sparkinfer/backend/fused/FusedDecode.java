package io.sparkinfer.backend.fused;

import static io.sparkinfer.model.LayerParameter.DOWN_PROJ_BIAS;
import static io.sparkinfer.model.LayerParameter.DOWN_PROJ_WEIGHT;
import static io.sparkinfer.model.LayerParameter.GATE_UP_PROJ_BIAS;
import static io.sparkinfer.model.LayerParameter.GATE_UP_PROJ_WEIGHT;
import static io.sparkinfer.model.LayerParameter.INPUT_LAYERNORM;
import static io.sparkinfer.model.LayerParameter.O_PROJ_BIAS;
import static io.sparkinfer.model.LayerParameter.O_PROJ_WEIGHT;
import static io.sparkinfer.model.LayerParameter.POST_ATTENTION_LAYERNORM;
import static io.sparkinfer.model.LayerParameter.QKV_PROJ_BIAS;
import static io.sparkinfer.model.LayerParameter.QKV_PROJ_WEIGHT;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.IValueUtils;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.backend.fused.FusedOptions.Attention;
import io.sparkinfer.cuda.CubinCache;
import io.sparkinfer.cuda.CudaKernels;
import io.sparkinfer.model.LayerParameter;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.options.OptionValues;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * The model-wide parts of the fused decode step ({@link FusedDecodeStep}): our kernels
 * ({@code decode_kernels.cu}) compiled for the model's dtype, group size and head dim, the TorchScript ops
 * between them ({@code fused_decode.py}), and the weights as both take them (IValues for the ops, device
 * addresses for the kernels).
 *
 * <p>A fused step is what the scripted step computes, in about a third of the kernels: RMSNorm, rotary
 * embedding with the cache write, and the SiLU gate are one kernel each instead of 3-8 PyTorch kernels.
 * Decode steps run only inside captured CUDA graphs, where their many small calls cost nothing per replay; packed
 * prefill steps ({@link FusedPrefillStep}) use the same kernels and ops as plain calls.
 */
public final class FusedDecode implements AutoCloseable {

  /** Our kernels' CUDA source, the TorchScript ops between them, and the ops' module class (class resources). */
  public static final String KERNELS = "/io/sparkinfer/backend/fused/decode_kernels.cu";
  public static final String OPS = "/io/sparkinfer/backend/fused/fused_decode.py";
  public static final String OPS_CLASS = "FusedDecodeOps";

  /** Largest head dim and group size the kernels take. */
  static final int MAX_HEAD_DIM = 256;

  final ModelConfig config;
  final Device device;
  /** Whether steps run our attention kernels rather than flash attention ({@link FusedOptions#FUSED_ATTENTION}). */
  final boolean ownAttention;
  /** Blocks {@code decode_attention} aims for over a batch ({@link FusedOptions#FUSED_ATTENTION_BLOCKS}). */
  final int attentionBlocks;
  final int[] windows;
  private final NDManager manager;
  private CudaKernels.Module module;
  final CudaKernels.Kernel rmsNorm;
  final CudaKernels.Kernel rotaryCacheWrite;
  final CudaKernels.Kernel rotaryCacheWritePacked;
  /** The two rotary kernels writing a float8 e4m3 cache ({@link KvCache#float8()}). */
  final CudaKernels.Kernel rotaryCacheWriteFp8;
  final CudaKernels.Kernel rotaryCacheWritePackedFp8;
  final CudaKernels.Kernel siluMul;
  /** Whether the projections are float8 ({@link Precision#FP8}): the norms and the gate then quantize their rows. */
  final boolean fp8;
  final CudaKernels.Kernel rmsNormFp8;
  final CudaKernels.Kernel siluMulFp8;
  final CudaKernels.Kernel quantizeFp8;
  /**
   * Whether the attention kernel is {@code decode_attention} (each warp alone through its own slots; groups of
   * up to 16 heads of dims up to 128, a multiple of 16) rather than {@code decode_attention_wide} (any shape).
   */
  final boolean attentionPerWarp;
  final CudaKernels.Kernel attention;
  /** {@code decode_attention_fp8}: {@code decode_attention} over a float8 cache; null where that does not run. */
  final CudaKernels.Kernel attentionFp8;
  final CudaKernels.Kernel attentionCombine;
  /** Why steps cannot read a float8 cache, or null when they can ({@link #float8CacheUnsupported()}). */
  private final String float8CacheOff;
  private final PtSymbolBlock ops;
  private final List<IValue> values = new ArrayList<>();
  final IValue embedTokens;
  final IValue lmHead;
  final long normWeight;
  final long invFreq;
  final List<Layer> layers = new ArrayList<>();

  /**
   * One layer's {@link io.sparkinfer.model.LayerParameter}s as the step takes them: norm weights as addresses
   * for our kernels, projections as IValues for the ops (absent biases, and the scales of weights that are not
   * float8: empty tensors).
   */
  record Layer(long inputLayernorm, IValue qkvWeight, IValue qkvScale, IValue qkvBias, IValue oWeight, IValue oScale,
      IValue oBias, long postAttentionLayernorm, IValue gateUpWeight, IValue gateUpScale, IValue gateUpBias,
      IValue downWeight, IValue downScale, IValue downBias) {}

  /**
   * Why a model cannot take fused decode steps, from what is known before the kernels load (no JNI call), or
   * empty when it may.
   */
  public static Optional<String> unsupportedBeforeLoad(ModelConfig config, Precision precision, Device device,
      boolean cudaGraphs, OptionValues options) {
    if (!options.get(FusedOptions.FUSED_KERNELS)) {
      return Optional.of("turned off (--fused-kernels=false)");
    }
    if (!cudaGraphs || !device.isGpu()) {
      return Optional.of("they run only in CUDA graphs on a GPU");
    }
    if (precision != Precision.FP16 && !precision.isBf16()) {
      return Optional.of("the kernels store float16 or bfloat16, not " + precision.label());
    }
    int d = config.headDim();
    if (d % 8 != 0 || d > MAX_HEAD_DIM) {
      return Optional.of("head dim " + d + " is not a multiple of 8 up to " + MAX_HEAD_DIM);
    }
    return Optional.empty();
  }

  /** Whether the model's attention shape takes {@code decode_attention}, see {@link #attentionPerWarp}. */
  public static boolean attentionPerWarp(ModelConfig config) {
    int d = config.headDim();
    return config.groupSize() <= 16 && d % 16 == 0 && d <= 128;
  }

  /** Why a model cannot take fused decode steps on {@code device}, or empty when it can. */
  public static Optional<String> unsupported(ModelConfig config, Precision precision, Device device,
      OptionValues options) {
    return unsupportedBeforeLoad(config, precision, device, true, options).or(CudaKernels::unavailableReason);
  }

  /**
   * Compiles the kernels for the model and holds the weights as the fused steps take them.
   *
   * @param params the step's parameters by key ({@link ModelWeights#stepParameters()}; for fp8 with the projections
   *     quantized, {@code io.sparkinfer.backend.scripted.Fp8Projections})
   * @param invFreq (D/2) float32 rotary inverse frequencies on the device, kept by the caller
   * @param options the engine's options ({@link FusedOptions})
   */
  public FusedDecode(ModelWeights weights, Map<String, NDArray> params, NDArray invFreq, OptionValues options) {
    this.config = weights.config();
    this.device = weights.device();
    this.windows = config.slidingWindows();
    Attention attention = options.get(FusedOptions.FUSED_ATTENTION);
    this.ownAttention = attention != Attention.FLASH;
    this.attentionBlocks = options.get(FusedOptions.FUSED_ATTENTION_BLOCKS);
    this.attentionPerWarp = attention == Attention.KERNELS && attentionPerWarp(config);
    this.manager = NDManager.newBaseManager(device);
    try {
      this.module = new CudaKernels.Module(TorchScriptArchive.source(KERNELS),
          compileOptions(config, weights.precision()), device, CubinCache.of(options.get(FusedOptions.KERNEL_CACHE)));
      this.rmsNorm = module.kernel("rms_norm");
      this.rotaryCacheWrite = module.kernel("rotary_cache_write");
      this.rotaryCacheWritePacked = module.kernel("rotary_cache_write_packed");
      this.siluMul = module.kernel("silu_mul");
      this.fp8 = weights.precision().fp8Projections();
      this.rmsNormFp8 = module.kernel("rms_norm_fp8");
      this.siluMulFp8 = module.kernel("silu_mul_fp8");
      this.quantizeFp8 = module.kernel("quantize_fp8");
      this.rotaryCacheWriteFp8 = module.kernel("rotary_cache_write_fp8");
      this.rotaryCacheWritePackedFp8 = module.kernel("rotary_cache_write_packed_fp8");
      this.attention = module.kernel(attentionPerWarp ? "decode_attention" : "decode_attention_wide");
      this.float8CacheOff = float8CacheOff(attention, config, device).orElse(null);
      this.attentionFp8 = float8CacheOff == null ? module.kernel("decode_attention_fp8") : null;
      this.attentionCombine = module.kernel("decode_attention_combine");
      this.ops = loadOps((PtNDManager) manager);
      this.embedTokens = keep(params.get(ModelWeights.EMBED_TOKENS)); // every tensor from params, as the step's
      this.lmHead = keep(params.get(ModelWeights.LM_HEAD));
      this.normWeight = CudaKernels.dataPtr(params.get(ModelWeights.NORM));
      this.invFreq = CudaKernels.dataPtr(invFreq);
      for (int i = 0; i < config.numHiddenLayers(); i++) {
        final int l = i;
        Function<LayerParameter, NDArray> of = p -> params.get(p.key(l));
        Function<LayerParameter, NDArray> scale = p -> params.get(p.scaleKey(l));
        layers.add(new Layer(
            CudaKernels.dataPtr(of.apply(INPUT_LAYERNORM)), keep(of.apply(QKV_PROJ_WEIGHT)),
            keepOptional(scale.apply(QKV_PROJ_WEIGHT)), keepOptional(of.apply(QKV_PROJ_BIAS)),
            keep(of.apply(O_PROJ_WEIGHT)), keepOptional(scale.apply(O_PROJ_WEIGHT)), keepOptional(of.apply(O_PROJ_BIAS)),
            CudaKernels.dataPtr(of.apply(POST_ATTENTION_LAYERNORM)), keep(of.apply(GATE_UP_PROJ_WEIGHT)),
            keepOptional(scale.apply(GATE_UP_PROJ_WEIGHT)), keepOptional(of.apply(GATE_UP_PROJ_BIAS)),
            keep(of.apply(DOWN_PROJ_WEIGHT)), keepOptional(scale.apply(DOWN_PROJ_WEIGHT)),
            keepOptional(of.apply(DOWN_PROJ_BIAS))));
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /**
   * Why fused steps of this model cannot read a float8 KV cache ({@code --kv-cache-dtype fp8}), or empty when they
   * can: they need {@code decode_attention} (the attention kernel for the model's shape, {@code --fused-attention
   * kernels}) and a GPU that converts to float8 (compute capability 8.9 and up).
   */
  public Optional<String> float8CacheUnsupported() {
    return Optional.ofNullable(float8CacheOff);
  }

  /** Whether fused steps read {@code cache}: any cache of the model's dtype, a float8 one where they can. */
  public boolean reads(KvCache cache) {
    return !cache.float8() || float8CacheOff == null;
  }

  private static Optional<String> float8CacheOff(Attention attention, ModelConfig config, Device device) {
    if (attention != Attention.KERNELS) {
      return Optional.of("decode attention is not our kernels (--fused-attention " + attention.label() + ")");
    }
    if (!attentionPerWarp(config)) {
      return Optional.of("the model's attention shape (group " + config.groupSize() + ", head dim " + config.headDim()
          + ") takes decode_attention_wide, which reads only the model's dtype");
    }
    int capability = CudaKernels.computeCapability(device);
    if (capability < 89) {
      return Optional.of("the GPU's compute capability " + capability / 10 + "." + capability % 10
          + " has no float8 conversions (8.9 and up)");
    }
    return Optional.empty();
  }

  /** NVRTC options of the kernels for a model: its group size and head dim as constants, and the dtype. */
  public static List<String> compileOptions(ModelConfig config, Precision precision) {
    List<String> options = new ArrayList<>(List.of("-DGROUP=" + config.groupSize(), "-DHEAD_DIM=" + config.headDim(),
        "-DFP8_CHUNKS=" + LaunchPlan.FP8_CHUNKS));
    if (precision.isBf16()) {
      options.add("-DSPARKINFER_BF16");
    }
    return options;
  }

  static PtSymbolBlock loadOps(PtNDManager manager) {
    return TorchScriptArchive.load(manager, OPS_CLASS, OPS);
  }

  /** Runs one of the TorchScript ops; the caller closes what it returns. */
  /** out = RMSNorm(in) with the norm weight at address {@code weight}: (rows, H), a block per row of {@code rows}. */
  void norm(LaunchPlan.Dims rows, NDArray in, long weight, NDArray out) {
    rmsNorm.launch(rows.grid(), rows.block(), CudaKernels.dataPtr(in), weight, CudaKernels.dataPtr(out),
        config.hiddenSize(), config.hiddenSize(), CudaKernels.bits(config.rmsNormEps()));
  }

  IValue call(String method, IValue... args) {
    return IValueUtils.runMethod(ops, method, args);
  }

  private IValue keep(NDArray tensor) {
    IValue v = IValue.from((PtNDArray) tensor);
    values.add(v);
    return v;
  }

  /** An optional parameter, or an empty tensor for an absent one (the ops skip biases and scales with no elements). */
  private IValue keepOptional(NDArray parameter) {
    return keep(parameter != null ? parameter : manager.zeros(new Shape(0), DataType.FLOAT32));
  }

  /** A fused decode step over {@code cache}, for capture in that cache's CUDA graph; close it with the graph. */
  public FusedDecodeStep newStep(KvCache cache) {
    return new FusedDecodeStep(this, cache);
  }

  @Override
  public void close() {
    values.forEach(IValue::close);
    values.clear();
    if (module != null) {
      module.close();
    }
    manager.close();
  }
}
