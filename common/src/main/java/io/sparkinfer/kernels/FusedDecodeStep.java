package io.sparkinfer.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.model.ForwardBatch;
import io.sparkinfer.model.KvCache;
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
final class FusedDecodeStep implements AutoCloseable {

  private static final int NORM_THREADS = 256;
  private static final int SILU_THREADS = 256;
  private static final int ATTENTION_THREADS = 128;
  /** Splits are whole multiples of this many key slots. */
  private static final int ATTENTION_TILE = 64;
  /**
   * Attention blocks to aim for over the batch with {@code decode_attention}: about one per SM of an H100 (each
   * keeps its 4 warps' loads in flight), so from 64 rows of 2 key/value heads on, each row is one split and the
   * kernel writes the output itself (measured fastest at batch 64 and 256, bench/fused_step.py).
   */
  static final int PER_WARP_ATTENTION_BLOCKS = 128;
  /** The blocks steps made from now on aim for with {@code decode_attention} (tests lower it: one split per row). */
  static volatile int perWarpAttentionBlocks = PER_WARP_ATTENTION_BLOCKS;
  /** The same for {@code decode_attention_wide}: enough to fill an H100's 132 SMs several times. */
  static final int WIDE_ATTENTION_BLOCKS = 4096;

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
  private final IValue[] keyValues;
  private final IValue[] valueValues;
  private final long[] keyPtrs;
  private final long[] valuePtrs;
  private final IValue capacityValue;
  private final IValue numHeads;
  private final IValue numKvHeads;
  private final IValue headDim;
  private final IValue scale;
  private final IValue[] windowValues;
  // our attention kernels: (B, N, Z, D) partial outputs, (B, N, Z) maxima and sums, Z splits of splitSize slots
  private final int splits;
  private final int splitSize;
  private final NDArray partialOut;
  private final NDArray partialMax;
  private final NDArray partialSum;

  FusedDecodeStep(FusedDecode model, KvCache cache) {
    this.model = model;
    this.config = model.config;
    this.batch = cache.batchSize();
    this.capacity = cache.capacity();
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
    int[] split = attentionSplits(batch, config.numKeyValueHeads(), capacity,
        model.attentionPerWarp ? perWarpAttentionBlocks : WIDE_ATTENTION_BLOCKS);
    this.splitSize = split[0];
    this.splits = split[1];
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
   * How our attention kernels split each row's keys: {slots per split, splits}, at least {@code blocks} blocks
   * over the batch where the cache has enough tiles, each split a whole number of tiles.
   */
  static int[] attentionSplits(int batch, int kvHeads, int capacity, int blocks) {
    int tiles = (capacity + ATTENTION_TILE - 1) / ATTENTION_TILE;
    int wanted = Math.max(1, (blocks + batch * kvHeads - 1) / (batch * kvHeads));
    int splits = Math.min(tiles, wanted);
    int splitSize = (tiles + splits - 1) / splits * ATTENTION_TILE;
    return new int[] {splitSize, (capacity + splitSize - 1) / splitSize};
  }

  /**
   * Queues one decode step reading the fixed inputs and writing the step's keys and values into the cache.
   *
   * @return (B, V) logits in the compute dtype (float16 or bfloat16), attached to {@code scope}
   */
  NDArray run(NDManager scope, ForwardBatch fixed) {
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
        norm(w.inputLayernorm());
        step(perStep, model.call("project", hValue, w.qkvWeight(), w.qkvBias(), qkvValue));
        model.rotaryCacheWrite.launch(grid(batch, 1), block(rotaryThreads(config)), ptr(qkv), positions,
            model.invFreq, keyPtrs[l], valuePtrs[l], config.numAttentionHeads(), config.numKeyValueHeads(),
            config.headDim(), capacity);
        IValue attended;
        if (model.ownAttention) {
          attend(l, positions);
          attended = attentionOutValue;
        } else {
          attended = step(perStep, model.call("attend", qkvValue, keyValues[l], valueValues[l], attentionInputs[0],
              attentionInputs[1], attentionInputs[2], numHeads, numKvHeads, headDim, windowValues[l], scale));
        }
        step(perStep, model.call("add_projection", attended, xValue, w.oWeight(), w.oBias()));
        norm(w.postAttentionLayernorm());
        step(perStep, model.call("project", hValue, w.gateUpWeight(), w.gateUpBias(), gateUpValue));
        long siluThreads = ((long) batch * config.intermediateSize() + 7) / 8; // 8 outputs a thread
        model.siluMul.launch(grid((int) ((siluThreads + SILU_THREADS - 1) / SILU_THREADS), 1), block(SILU_THREADS),
            ptr(gateUp), ptr(act), config.intermediateSize(), batch);
        step(perStep, model.call("add_projection", actValue, xValue, w.downWeight(), w.downBias()));
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
    int[] grid = {batch, config.numKeyValueHeads(), splits};
    long scaleBits = CudaKernels.bits(attentionScale());
    if (model.attentionPerWarp) {
      model.attention.launch(grid, block(ATTENTION_THREADS), ptr(qkv), positions, keyPtrs[l], valuePtrs[l],
          ptr(partialOut), ptr(partialMax), ptr(partialSum), ptr(attentionOut), config.numKeyValueHeads(), capacity,
          model.windows[l], splitSize, scaleBits);
      if (splits == 1) {
        return;
      }
    } else {
      model.attention.launch(grid, block(ATTENTION_THREADS), ptr(qkv), positions, keyPtrs[l], valuePtrs[l],
          ptr(partialOut), ptr(partialMax), ptr(partialSum), config.numKeyValueHeads(), capacity, model.windows[l],
          splitSize, scaleBits);
    }
    model.attentionCombine.launch(grid(batch * config.numAttentionHeads(), 1), block(ATTENTION_THREADS),
        ptr(partialOut), ptr(partialMax), ptr(partialSum), ptr(attentionOut), splits, config.headDim());
  }

  /**
   * Threads of a rotary_cache_write block (one block per row): one per 16-byte work item of the row, in whole
   * warps, at most 256 (they loop over the rest); 128 when head dims are not a multiple of 16.
   */
  static int rotaryThreads(ModelConfig c) {
    if (c.headDim() % 16 != 0) {
      return 128;
    }
    int items = (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * (c.headDim() / 16);
    return Math.min(256, (items + 31) / 32 * 32);
  }

  /** The attention scores' scale, 1 / sqrt(D), as llama_step.py and transformers use it. */
  private double attentionScale() {
    return 1.0 / Math.sqrt(config.headDim());
  }

  /** h = RMSNorm(x) with {@code weight}. */
  private void norm(long weight) {
    model.rmsNorm.launch(grid(batch, 1), block(NORM_THREADS), ptr(x), weight, ptr(h), config.hiddenSize(),
        config.hiddenSize(), CudaKernels.bits(config.rmsNormEps()));
  }

  private static long ptr(NDArray a) {
    return CudaKernels.dataPtr(a);
  }

  private static int[] grid(int x, int y) {
    return new int[] {x, y, 1};
  }

  private static int[] block(int x) {
    return new int[] {x, 1, 1};
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
