package io.sparkinfer.backend.fused;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.cuda.CudaKernels;
import io.sparkinfer.model.ModelConfig;
import io.sparkinfer.torchscript.ScriptedTensors;
import java.util.ArrayList;
import java.util.List;

/**
 * A decode step (one new token per row) over one batch's KV cache as our fused kernels between the
 * TorchScript ops of {@link FusedDecode}, for capture in that cache's CUDA graph ({@link DecodeGraphs}).
 * Per layer:
 *
 * <pre>
 *   h = rms_norm(x)                          kernel
 *   qkv = h @ Wqkv^T + b                     op (into a kept tensor)
 *   rotate q, k; write k, v to the cache     kernel
 *   x += attention(q, cache) @ Wo^T (+ b)    op (flash attention) or kernels + op
 *   h = rms_norm(x)                          kernel
 *   gate_up = h @ Wgu^T (+ b)                op
 *   act = silu(gate) * up                    kernel
 *   x += act @ Wdown^T (+ b)                 op
 * </pre>
 *
 * then the final norm (kernel) and the LM head (op). The kernels read and write tensors this step keeps
 * (and the cache), at addresses fixed for the graph's life.
 */
public final class FusedDecodeStep implements AutoCloseable {


  private final FusedDecode model;
  private final ModelConfig config;
  private final int batch;
  private final int capacity;
  private final NDManager manager;
  private final List<IValue> values = new ArrayList<>();
  // (B, H) residual stream and normed hidden states, (B, (N + 2K) * D), (B, 2I), (B, I), (B, N * D)
  private final NDArray x;
  private final NDArray h;
  private final NDArray qkv;
  private final NDArray gateUp;
  private final NDArray act;
  private final NDArray attentionOut;
  private final IValue xValue;
  private final IValue hValue;
  private final IValue qkvValue;
  private final IValue gateUpValue;
  private final IValue actValue;
  private final IValue attentionOutValue;
  private final QuantizedRows fp8; // fp8's quantized inputs of B rows; null in other precisions
  private final IValue[] keyValues;
  private final IValue[] valueValues;
  private final long[] keyPtrs;
  private final long[] valuePtrs;
  private final boolean float8; // the cache holds float8 e4m3 bytes: the _fp8 rotary and attention kernels
  private final IValue capacityValue;
  private final IValue numHeads;
  private final IValue numKvHeads;
  private final IValue headDim;
  private final IValue scale;
  private final IValue[] windowValues;
  private final LaunchPlan plan;
  // our attention kernels: (B, N, Z, D) partial outputs, (B, N, Z) maxima and sums, Z splits of plan.splitSize() slots
  private final int splits;
  private final NDArray partialOut;
  private final NDArray partialMax;
  private final NDArray partialSum;

  FusedDecodeStep(FusedDecode model, KvCache cache) {
    this.model = model;
    this.config = model.config;
    this.batch = cache.batchSize();
    this.capacity = cache.capacity();
    this.float8 = cache.float8();
    if (!model.reads(cache)) {
      throw new IllegalArgumentException("fused decode steps cannot read this float8 KV cache: "
          + model.float8CacheUnsupported().orElseThrow());
    }
    this.manager = NDManager.newBaseManager(model.device);
    DataType dtype = cache.dataType();
    int hidden = config.hiddenSize();
    int qSize = config.numAttentionHeads() * config.headDim();
    int qkvSize = (config.numAttentionHeads() + 2 * config.numKeyValueHeads()) * config.headDim();
    this.x = ScriptedTensors.zeros(manager, new Shape(batch, hidden), dtype);
    this.h = ScriptedTensors.zeros(manager, new Shape(batch, hidden), dtype);
    this.qkv = ScriptedTensors.zeros(manager, new Shape(batch, qkvSize), dtype);
    this.gateUp = ScriptedTensors.zeros(manager, new Shape(batch, 2L * config.intermediateSize()), dtype);
    this.act = ScriptedTensors.zeros(manager, new Shape(batch, config.intermediateSize()), dtype);
    this.attentionOut = ScriptedTensors.zeros(manager, new Shape(batch, qSize), dtype);
    this.xValue = keep(x);
    this.hValue = keep(h);
    this.qkvValue = keep(qkv);
    this.gateUpValue = keep(gateUp);
    this.actValue = keep(act);
    this.attentionOutValue = keep(attentionOut);
    this.fp8 = model.fp8 ? new QuantizedRows(model, manager, values, batch) : null;
    NDArray[] keys = cache.keyArrays();
    NDArray[] vals = cache.valueArrays();
    this.keyValues = new IValue[keys.length];
    this.valueValues = new IValue[keys.length];
    this.keyPtrs = new long[keys.length];
    this.valuePtrs = new long[keys.length];
    this.windowValues = new IValue[keys.length];
    for (int l = 0; l < keys.length; l++) {
      keyValues[l] = keep(keys[l]);
      valueValues[l] = keep(vals[l]);
      keyPtrs[l] = CudaKernels.dataPtr(keys[l]);
      valuePtrs[l] = CudaKernels.dataPtr(vals[l]);
      windowValues[l] = keep(IValue.from((long) model.windows[l]));
    }
    this.capacityValue = keep(IValue.from((long) capacity));
    this.numHeads = keep(IValue.from((long) config.numAttentionHeads()));
    this.numKvHeads = keep(IValue.from((long) config.numKeyValueHeads()));
    this.headDim = keep(IValue.from((long) config.headDim()));
    this.scale = keep(IValue.from(attentionScale()));
    this.plan = LaunchPlan.of(config, batch, capacity, model.attentionPerWarp, model.attentionBlocks);
    this.splits = plan.splits();
    if (model.ownAttention) {
      Shape partial = new Shape(batch, config.numAttentionHeads(), splits);
      this.partialOut = manager.zeros(new Shape(batch, config.numAttentionHeads(), splits, config.headDim()));
      this.partialMax = manager.zeros(partial);
      this.partialSum = manager.zeros(partial);
    } else {
      this.partialOut = null;
      this.partialMax = null;
      this.partialSum = null;
    }
  }

  /**
   * Device bytes a step keeps per batch row: the residual stream, normed hidden states, projections and the
   * attention output in the compute dtype, and one split's float32 partials.
   */
  public static long bytesPerRow(ModelConfig c, int dtypeBytes) {
    long n = c.numAttentionHeads();
    long d = c.headDim();
    long width = 2L * c.hiddenSize() + (n + 2L * c.numKeyValueHeads()) * d + 3L * c.intermediateSize() + n * d;
    return width * dtypeBytes + 4L * (n * d + 2 * n) + QuantizedRows.bytesPerRow(c); // fp8's, counted for all
  }

  /**
   * Queues one decode step reading the fixed inputs and writing the step's keys and values into the cache.
   *
   * @return (B, V) logits in the compute dtype (float16 or bfloat16), attached to {@code scope}
   */
  public NDArray run(NDManager scope, ForwardBatch fixed) {
    JniUtils.setGraphExecutorOptimize(false); // per thread: no profiling runs or recompiles inside a capture
    List<IValue> perStep = new ArrayList<>();
    try {
      long positions = CudaKernels.dataPtr(fixed.positions()); // (B, 1) int64
      IValue ids = step(perStep, IValue.from((PtNDArray) fixed.inputIds()));
      step(perStep, model.call("embed", ids, model.embedTokens, xValue));
      IValue[] attentionInputs = null; // flash attention's seqused, cu_q, cu_k
      if (!model.ownAttention) {
        IValue tuple = step(perStep, model.call("attention_inputs",
            step(perStep, IValue.from((PtNDArray) fixed.positions())), capacityValue));
        attentionInputs = tuple.toIValueTuple();
        for (IValue v : attentionInputs) {
          step(perStep, v);
        }
      }
      for (int l = 0; l < model.layers.size(); l++) {
        FusedDecode.Layer w = model.layers.get(l);
        if (fp8 != null) {
          fp8.normThenProject(plan, x, l > 0, w.inputLayernorm(), w.qkvWeight(), w.qkvScale(), w.qkvBias(),
              qkvValue, perStep);
        } else {
          norm(w.inputLayernorm());
          step(perStep, model.call("project", hValue, w.qkvWeight(), w.qkvBias(), qkvValue));
        }
        launch(float8 ? model.rotaryCacheWriteFp8 : model.rotaryCacheWrite, plan.rotaryCacheWrite(), ptr(qkv),
            positions, model.invFreq, keyPtrs[l], valuePtrs[l], config.numAttentionHeads(), config.numKeyValueHeads(),
            config.headDim(), capacity);
        IValue attended;
        if (model.ownAttention) {
          attend(l, positions);
          attended = attentionOutValue;
        } else {
          attended = step(perStep, model.call("attend", qkvValue, keyValues[l], valueValues[l], attentionInputs[0],
              attentionInputs[1], attentionInputs[2], numHeads, numKvHeads, headDim, windowValues[l], scale));
        }
        if (fp8 != null) { // the o projection, then the MLP, each from rows quantized by our kernels
          fp8.attentionThenProject(plan, model.ownAttention ? attentionOut : attended.toTensor((PtNDManager) scope),
              w.oWeight(), w.oScale(), w.oBias(), perStep);
          fp8.normThenProject(plan, x, true, w.postAttentionLayernorm(), w.gateUpWeight(), w.gateUpScale(),
              w.gateUpBias(), gateUpValue, perStep);
          fp8.gateThenProject(plan, gateUp, w.downWeight(), w.downScale(), w.downBias(), perStep);
        } else {
          step(perStep, model.call("add_projection", attended, xValue, w.oWeight(), w.oBias()));
          norm(w.postAttentionLayernorm());
          step(perStep, model.call("project", hValue, w.gateUpWeight(), w.gateUpBias(), gateUpValue));
          launch(model.siluMul, plan.siluMul(), ptr(gateUp), ptr(act), config.intermediateSize(), batch);
          step(perStep, model.call("add_projection", actValue, xValue, w.downWeight(), w.downBias()));
        }
      }
      if (fp8 != null) {
        fp8.addUpdate(xValue, perStep); // the last down projection
      }
      norm(model.normWeight);
      IValue logits = step(perStep, model.call("head", hValue, model.lmHead));
      return logits.toTensor((PtNDManager) scope); // (B, V) in the compute dtype
    } finally {
      perStep.forEach(IValue::close);
    }
  }

  /**
   * Attention of layer {@code l} into attentionOut with our kernels: one launch when each row is one split of
   * {@code decode_attention}, else the splits' partials and the combine.
   */
  private void attend(int l, long positions) {
    long scaleBits = CudaKernels.bits(attentionScale());
    if (model.attentionPerWarp) {
      launch(float8 ? model.attentionFp8 : model.attention, plan.attention(), ptr(qkv), positions, keyPtrs[l], valuePtrs[l], ptr(partialOut),
          ptr(partialMax), ptr(partialSum), ptr(attentionOut), config.numKeyValueHeads(), capacity, model.windows[l],
          plan.splitSize(), scaleBits);
    } else {
      launch(model.attention, plan.attention(), ptr(qkv), positions, keyPtrs[l], valuePtrs[l], ptr(partialOut),
          ptr(partialMax), ptr(partialSum), config.numKeyValueHeads(), capacity, model.windows[l], plan.splitSize(),
          scaleBits);
    }
    if (plan.combines()) {
      launch(model.attentionCombine, plan.attentionCombine(), ptr(partialOut), ptr(partialMax), ptr(partialSum),
          ptr(attentionOut), splits, config.headDim());
    }
  }

  /** The attention scores' scale, 1 / sqrt(D), as llama_step.py and transformers use it. */
  private double attentionScale() {
    return 1.0 / Math.sqrt(config.headDim());
  }

  /** h = RMSNorm(x) with {@code weight}. */
  private void norm(long weight) {
    model.norm(plan.rmsNorm(), x, weight, h);
  }

  private static void launch(CudaKernels.Kernel kernel, LaunchPlan.Dims dims, long... args) {
    kernel.launch(dims.grid(), dims.block(), args);
  }

  private static long ptr(NDArray a) {
    return CudaKernels.dataPtr(a);
  }

  private static IValue step(List<IValue> perStep, IValue v) {
    perStep.add(v);
    return v;
  }

  private IValue keep(NDArray tensor) {
    return keep(IValue.from((PtNDArray) tensor));
  }

  private IValue keep(IValue v) {
    values.add(v);
    return v;
  }

  @Override
  public void close() {
    values.forEach(IValue::close);
    values.clear();
    manager.close();
  }
}
