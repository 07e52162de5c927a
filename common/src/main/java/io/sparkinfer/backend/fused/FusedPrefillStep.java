package io.sparkinfer.backend.fused;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkinfer.backend.ForwardBatch;
import io.sparkinfer.backend.KvCache;
import io.sparkinfer.cuda.CudaKernels;
import io.sparkinfer.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * A packed prefill step ({@link ForwardBatch}'s packed form: R prompts back to back as one line of T tokens, row r
 * written to cache row {@code cacheRows[r]}, or row r) as our fused kernels between the TorchScript ops of
 * {@link FusedDecode}: the prefill counterpart of {@link FusedDecodeStep}, with the same layer:
 *
 * <pre>
 *   h = rms_norm(x)                                         kernel
 *   qkv = h @ Wqkv^T + b                                    op
 *   rotate q, k; write k, v to each token's row and slot    kernel (rotary_cache_write_packed)
 *   x += flash_attention(q, cache) @ Wo^T (+ b)             ops (variable-length, causal from the bottom right; a
 *                                                           float8 cache: over the line's own keys and values when
 *                                                           its rows start at 0, else its rows' slots widened)
 *   h = rms_norm(x)                                         kernel
 *   gate_up = h @ Wgu^T (+ b)                               op
 *   act = silu(gate) * up                                   kernel
 *   x += act @ Wdown^T (+ b)                                op
 * </pre>
 *
 * then each row's last token, the final norm (kernel) and the LM head (op). The TorchScript step
 * ({@code llama_step.py}) runs each norm, the rotary embedding and the gate as 3-8 PyTorch kernels over the whole
 * line, each reading and writing it again: at 32k tokens a line those passes took about as long as a third of the
 * step's matrix multiplications (PyTorch profile, {@code bench/profile_prefill.py}).
 *
 * <p>It runs as plain launches, not a CUDA graph: T changes from step to step, and at prefill sizes a step's
 * matrix multiplications take long enough that the ~10 launches and op calls of a layer cost little. Buffers are
 * made per step (uninitialised; every element is written before it is read) and freed with it, on the stream the
 * step runs on.
 */
public final class FusedPrefillStep {

  private FusedPrefillStep() {}

  /**
   * Queues one packed prefill step writing the line's keys and values into {@code cache}.
   *
   * @param batch packed: (1, T) ids and positions, (R) last indices, the R rows of {@code cache} it writes
   * @return (R, V) float32 logits of each row's last token, attached to {@code scope}
   */
  public static NDArray run(FusedDecode model, NDManager scope, ForwardBatch batch, KvCache cache) {
    ModelConfig c = model.config;
    int tokens = Math.toIntExact(batch.inputIds().getShape().get(1));
    int rows = Math.toIntExact(batch.lastIndex().getShape().get(0));
    int capacity = cache.capacity();
    int qkvSize = (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * c.headDim();
    LaunchPlan line = LaunchPlan.of(c, tokens, capacity, false, 1); // a kernel launch per token (norm, rotary), silu's grid
    LaunchPlan last = LaunchPlan.of(c, rows, capacity, false, 1);
    JniUtils.setGraphExecutorOptimize(false); // per thread: the ops as written, no profiling runs
    List<IValue> perStep = new ArrayList<>();
    try (NDManager step = scope.newSubManager()) {
      Buffers b = new Buffers(model, step, perStep, tokens);
      IValue positions = keep(perStep, IValue.from((PtNDArray) batch.positions())); // (1, T) int64
      IValue lastIndex = keep(perStep, IValue.from((PtNDArray) batch.lastIndex())); // (R) int64
      NDArray targets = batch.cacheRows() != null ? batch.cacheRows() : step.create(new long[0]); // (R) or none: 0..R-1
      IValue cacheRows = keep(perStep, IValue.from((PtNDArray) targets));
      IValue[] inputs = keep(perStep, model.call("packed_attention_inputs", positions, lastIndex, cacheRows,
          keep(perStep, IValue.from((long) capacity)), keep(perStep, IValue.from((long) cache.batchSize()))))
          .toIValueTuple(); // seqused, cu_q, cu_k, each token's cache row, each row's cache row
      for (IValue v : inputs) {
        keep(perStep, v);
      }
      long positionsPtr = CudaKernels.dataPtr(batch.positions());
      long tokenRows = CudaKernels.dataPtr(inputs[3].toTensor((PtNDManager) step)); // (T) int64
      IValue maxQ = keep(perStep, IValue.from((long) batch.keyLength())); // at least the longest row's own tokens
      IValue keyLength = maxQ; // 1 + the line's largest position: the slots a float8 cache's rows are widened over
      boolean float8 = cache.float8();
      IValue numHeads = keep(perStep, IValue.from((long) c.numAttentionHeads()));
      IValue numKvHeads = keep(perStep, IValue.from((long) c.numKeyValueHeads()));
      IValue headDim = keep(perStep, IValue.from((long) c.headDim()));
      IValue scale = keep(perStep, IValue.from(1.0 / Math.sqrt(c.headDim())));
      keep(perStep, model.call("embed", keep(perStep, IValue.from((PtNDArray) batch.inputIds())), model.embedTokens,
          b.xValue)); // (1, T) ids -> (T, H)
      NDArray[] keys = cache.keyArrays();
      NDArray[] values = cache.valueArrays();
      for (int l = 0; l < model.layers.size(); l++) {
        FusedDecode.Layer w = model.layers.get(l);
        if (b.fp8 != null) {
          b.fp8.normThenProject(line, b.x, l > 0, w.inputLayernorm(), w.qkvWeight(), w.qkvScale(), w.qkvBias(),
              b.qkvValue, perStep);
        } else {
          model.norm(line.rmsNorm(), b.x, w.inputLayernorm(), b.h);
          keep(perStep, model.call("project", b.hValue, w.qkvWeight(), w.qkvBias(), b.qkvValue));
        }
        launch(float8 ? model.rotaryCacheWritePackedFp8 : model.rotaryCacheWritePacked, line.rotaryCacheWrite(),
            ptr(b.qkv), positionsPtr, tokenRows, model.invFreq, ptr(keys[l]), ptr(values[l]), c.numAttentionHeads(),
            c.numKeyValueHeads(), c.headDim(), capacity);
        try (IValue k = IValue.from((PtNDArray) keys[l]);
            IValue v = IValue.from((PtNDArray) values[l]);
            IValue window = IValue.from((long) model.windows[l]);
            IValue attended = !float8
                ? model.call("packed_attend", b.qkvValue, k, v, inputs[0], inputs[1], inputs[2], maxQ, numHeads,
                    numKvHeads, headDim, window, scale)
                : batch.fresh() // the line holds every slot its rows attend to: its own keys and values
                ? model.call("packed_attend_line", b.qkvValue, inputs[1], maxQ, numHeads, numKvHeads, headDim, window,
                    scale)
                : model.call("packed_attend_float8", b.qkvValue, k, v, inputs[4], inputs[0], inputs[1], maxQ,
                    keyLength, numHeads, numKvHeads, headDim, window, scale)) { // (T, N*D), freed once projected
          if (b.fp8 != null) {
            b.fp8.attentionThenProject(line, attended.toTensor((PtNDManager) step), w.oWeight(), w.oScale(),
                w.oBias(), perStep);
          } else {
            model.call("add_projection", attended, b.xValue, w.oWeight(), w.oBias()).close(); // x in place
          }
        }
        if (b.fp8 != null) {
          b.fp8.normThenProject(line, b.x, true, w.postAttentionLayernorm(), w.gateUpWeight(), w.gateUpScale(),
              w.gateUpBias(), b.gateUpValue, perStep);
          b.fp8.gateThenProject(line, b.gateUp, w.downWeight(), w.downScale(), w.downBias(), perStep);
        } else {
          model.norm(line.rmsNorm(), b.x, w.postAttentionLayernorm(), b.h);
          keep(perStep, model.call("project", b.hValue, w.gateUpWeight(), w.gateUpBias(),
              b.gateUpValue));
          launch(model.siluMul, line.siluMul(), ptr(b.gateUp), ptr(b.act), c.intermediateSize(), tokens);
          keep(perStep, model.call("add_projection", b.actValue, b.xValue, w.downWeight(), w.downBias()));
        }
      }
      if (b.fp8 != null) {
        b.fp8.addUpdate(b.xValue, perStep); // the last down projection
      }
      NDArray lastX = keep(perStep, model.call("packed_last", b.xValue, lastIndex)).toTensor((PtNDManager) step); // (R, H)
      NDArray lastH = keep(perStep, model.call("empty", b.xValue, keep(perStep, IValue.from((long) rows)),
          keep(perStep, IValue.from((long) c.hiddenSize())))).toTensor((PtNDManager) step);
      model.norm(last.rmsNorm(), lastX, model.normWeight, lastH);
      try (IValue h = IValue.from((PtNDArray) lastH);
          IValue logits = model.call("logits", h, model.lmHead)) {
        return logits.toTensor((PtNDManager) scope); // (R, V) float32
      }
    } finally {
      perStep.forEach(IValue::close);
    }
  }

  /** A step's working tensors in the compute dtype, as NDArrays (for their addresses) and IValues (for the ops). */
  private static final class Buffers {
    final NDArray x; // (T, H) residual stream
    final NDArray h; // (T, H) normed hidden states
    final NDArray qkv; // (T, (N + 2K) * D)
    final NDArray gateUp; // (T, 2I)
    final NDArray act; // (T, I)
    final IValue xValue;
    final IValue hValue;
    final IValue qkvValue;
    final IValue gateUpValue;
    final IValue actValue;
    final QuantizedRows fp8; // fp8's quantized inputs of the line's T tokens; null in other precisions

    Buffers(FusedDecode model, NDManager step, List<IValue> perStep, int tokens) {
      ModelConfig c = model.config;
      xValue = empty(model, perStep, tokens, c.hiddenSize());
      hValue = model.fp8 ? null : empty(model, perStep, tokens, c.hiddenSize()); // fp8 norms write QuantizedRows
      qkvValue = empty(model, perStep, tokens, (c.numAttentionHeads() + 2 * c.numKeyValueHeads()) * c.headDim());
      gateUpValue = empty(model, perStep, tokens, 2 * c.intermediateSize());
      actValue = model.fp8 ? null : empty(model, perStep, tokens, c.intermediateSize());
      x = xValue.toTensor((PtNDManager) step);
      h = model.fp8 ? null : hValue.toTensor((PtNDManager) step);
      qkv = qkvValue.toTensor((PtNDManager) step);
      gateUp = gateUpValue.toTensor((PtNDManager) step);
      act = model.fp8 ? null : actValue.toTensor((PtNDManager) step);
      fp8 = model.fp8 ? new QuantizedRows(model, step, perStep, tokens) : null;
    }

    private static IValue empty(FusedDecode model, List<IValue> perStep, int rows, int cols) {
      return keep(perStep, model.call("empty", model.embedTokens, keep(perStep, IValue.from((long) rows)),
          keep(perStep, IValue.from((long) cols))));
    }
  }

  private static void launch(CudaKernels.Kernel kernel, LaunchPlan.Dims dims, long... args) {
    kernel.launch(dims.grid(), dims.block(), args);
  }

  private static long ptr(NDArray a) {
    return CudaKernels.dataPtr(a);
  }

  private static IValue keep(List<IValue> perStep, IValue v) {
    perStep.add(v);
    return v;
  }
}
