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
import ai.djl.pytorch.jni.IValueUtils;
import io.sparkinfer.model.LayerWeights;
import io.sparkinfer.model.Linear;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.model.ModelWeights;
import io.sparkinfer.model.Precision;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The model-wide parts of the fused decode step ({@link FusedDecodeStep}): our kernels
 * ({@code decode_kernels.cu}) compiled for the model's dtype, group size and head dim, the TorchScript ops
 * between them ({@code fused_decode.py}), and the weights as both take them (IValues for the ops, device
 * addresses for the kernels).
 *
 * <p>A fused step is what the scripted step computes, in about a third of the kernels: RMSNorm, rotary
 * embedding with the cache write, and the SiLU gate are one kernel each instead of 3-8 PyTorch kernels.
 * It runs only inside captured CUDA graphs, where its many small calls cost nothing per replay.
 */
final class FusedDecode implements AutoCloseable {

  static final String KERNELS = "/io/sparkinfer/kernels/decode_kernels.cu";
  static final String OPS = "/io/sparkinfer/kernels/fused_decode.py";
  static final String OPS_CLASS = "FusedDecodeOps";

  /**
   * Whether backends made from now on capture fused decode steps: on by default; {@code -Dsparkinfer.fused=false}
   * captures the scripted step (tests switch it to compare the two).
   */
  static volatile boolean enabledByDefault = Boolean.parseBoolean(System.getProperty("sparkinfer.fused", "true"));

  /**
   * Attention of a fused step: {@code flash} (PyTorch's variable-length flash attention, as the scripted
   * step) or {@code kernels} (our split-key kernels in {@code decode_kernels.cu}).
   */
  static volatile boolean ownAttentionByDefault =
      "kernels".equals(System.getProperty("sparkinfer.fused.attention", "kernels"));

  /**
   * Whether models whose shape {@code decode_attention} takes use it (tests switch it off to run
   * {@code decode_attention_wide} on them).
   */
  static volatile boolean perWarpAttentionByDefault = true;

  /** Largest head dim and group size the kernels take. */
  static final int MAX_HEAD_DIM = 256;

  final ModelConfig config;
  final Device device;
  /** Whether steps run our attention kernels rather than flash attention (see ownAttentionByDefault). */
  final boolean ownAttention = ownAttentionByDefault;
  final int[] windows;
  private final NDManager manager;
  private CudaKernels.Module module;
  final CudaKernels.Kernel rmsNorm;
  final CudaKernels.Kernel rotaryCacheWrite;
  final CudaKernels.Kernel siluMul;
  /**
   * Whether the attention kernel is {@code decode_attention} (each warp alone through its own slots; groups of
   * up to 16 heads of dims up to 128, a multiple of 16) rather than {@code decode_attention_wide} (any shape).
   */
  final boolean attentionPerWarp;
  final CudaKernels.Kernel attention;
  final CudaKernels.Kernel attentionCombine;
  private final PtSymbolBlock ops;
  private final List<IValue> values = new ArrayList<>();
  final IValue embedTokens;
  final IValue lmHead;
  final long normWeight;
  final long invFreq;
  final List<Layer> layers = new ArrayList<>();

  /** One layer's weights: norm weights as addresses, projections as IValues (absent biases: empty tensors). */
  record Layer(long inputLayernorm, IValue qkvWeight, IValue qkvBias, IValue oWeight, IValue oBias,
      long postAttentionLayernorm, IValue gateUpWeight, IValue gateUpBias, IValue downWeight, IValue downBias) {}

  /**
   * Why a model cannot take fused decode steps, from what is known before the kernels load (no JNI call), or
   * empty when it may.
   */
  static Optional<String> unsupportedBeforeLoad(ModelConfig config, Precision precision, Device device,
      boolean cudaGraphs) {
    if (!enabledByDefault) {
      return Optional.of("turned off (-Dsparkinfer.fused=false)");
    }
    if (!cudaGraphs || !device.isGpu()) {
      return Optional.of("they run only in CUDA graphs on a GPU");
    }
    if (precision != Precision.FP16 && precision != Precision.BF16) {
      return Optional.of("the kernels store float16 or bfloat16, not " + precision.label());
    }
    int d = config.headDim();
    if (d % 8 != 0 || d > MAX_HEAD_DIM) {
      return Optional.of("head dim " + d + " is not a multiple of 8 up to " + MAX_HEAD_DIM);
    }
    return Optional.empty();
  }

  /** Whether the model's attention shape takes {@code decode_attention}, see {@link #attentionPerWarp}. */
  static boolean attentionPerWarp(ModelConfig config) {
    int d = config.headDim();
    return config.groupSize() <= 16 && d % 16 == 0 && d <= 128;
  }

  /** Why a model cannot take fused decode steps on {@code device}, or empty when it can. */
  static Optional<String> unsupported(ModelConfig config, Precision precision, Device device) {
    return unsupportedBeforeLoad(config, precision, device, true).or(CudaKernels::unavailableReason);
  }

  /**
   * @param invFreq (D/2) float32 rotary inverse frequencies on the device, kept by the caller
   */
  FusedDecode(ModelWeights weights, NDArray invFreq) {
    this.config = weights.config();
    this.device = weights.device();
    this.windows = config.slidingWindows();
    this.attentionPerWarp = perWarpAttentionByDefault && attentionPerWarp(config);
    this.manager = NDManager.newBaseManager(device);
    List<String> options = new ArrayList<>(List.of(
        "-DGROUP=" + config.groupSize(), "-DHEAD_DIM=" + config.headDim()));
    if (weights.precision() == Precision.BF16) {
      options.add("-DSPARKINFER_BF16");
    }
    try {
      this.module = new CudaKernels.Module(TorchScriptArchive.source(KERNELS), options, device);
      this.rmsNorm = module.kernel("rms_norm");
      this.rotaryCacheWrite = module.kernel("rotary_cache_write");
      this.siluMul = module.kernel("silu_mul");
      this.attention = module.kernel(attentionPerWarp ? "decode_attention" : "decode_attention_wide");
      this.attentionCombine = module.kernel("decode_attention_combine");
      this.ops = loadOps((PtNDManager) manager);
      this.embedTokens = keep(weights.embedTokens());
      this.lmHead = keep(weights.lmHead());
      this.normWeight = CudaKernels.dataPtr(weights.norm());
      this.invFreq = CudaKernels.dataPtr(invFreq);
      for (LayerWeights w : weights.layers()) {
        layers.add(new Layer(
            CudaKernels.dataPtr(w.inputLayernorm()), keep(w.qkvProj().weight()), keepBias(w.qkvProj()),
            keep(w.oProj().weight()), keepBias(w.oProj()),
            CudaKernels.dataPtr(w.postAttentionLayernorm()), keep(w.gateUpProj().weight()), keepBias(w.gateUpProj()),
            keep(w.downProj().weight()), keepBias(w.downProj())));
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  static PtSymbolBlock loadOps(PtNDManager manager) {
    return TorchScriptArchive.load(manager, OPS_CLASS, OPS);
  }

  /** Runs one of the TorchScript ops; the caller closes what it returns. */
  IValue call(String method, IValue... args) {
    return IValueUtils.runMethod(ops, method, args);
  }

  private IValue keep(NDArray tensor) {
    IValue v = IValue.from((PtNDArray) tensor);
    values.add(v);
    return v;
  }

  private IValue keepBias(Linear l) {
    return keep(l.bias() != null ? l.bias() : manager.zeros(new Shape(0), DataType.FLOAT32)); // empty: never read
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
