package io.sparkinfer.backend.fused;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.jni.IValue;
import io.sparkinfer.cuda.CudaKernels;
import io.sparkinfer.model.ModelConfig;
import java.util.List;

/**
 * A fused step's float8 inputs in fp8 ({@link io.sparkinfer.model.Precision#FP8}): the norms' rows, quantized by
 * {@code rms_norm_fp8} for the q/k/v and gate/up projections, the attention's output, quantized by
 * {@code quantize_fp8} for the o projection, and the gate's, quantized by {@code silu_mul_fp8} for the down
 * projection, each with a float32 scale per row; and the projections that take them. Both the decode
 * step (its rows for the graph's life) and the prefill step (a line's tokens for one step) hold one.
 *
 * <p>The o and down projections write into {@code update}, which the next norm adds to the residual stream as it
 * reads it ({@code rms_norm_fp8}'s update): a step calls, per layer,
 *
 * <pre>
 *   normThenProject(x, input norm, q/k/v, added: l > 0)      x += update (the last layer's down); qkv = ...
 *   attentionThenProject(o)                                   update = attention @ Wo^T (+ b)
 *   normThenProject(x, post-attention norm, gate/up, true)    x += update; gate_up = ...
 *   gateThenProject(down)                                     update = act @ Wdown^T (+ b)
 * </pre>
 *
 * and {@link #addUpdate} after the last layer. A separate add read and wrote the (rows, H) stream once more after
 * each of the two projections (4 ms of a 32,768-token line's 28 layers on an H200, bench/prefill_kernels.py).
 */
final class QuantizedRows {

  private final FusedDecode model;
  private final ModelConfig config;
  private final NDArray hidden; // (rows, H) float8
  private final NDArray hiddenScale; // (rows) float32
  private final NDArray attended; // (rows, N*D) float8
  private final NDArray attendedScale; // (rows) float32
  private final NDArray act; // (rows, I) float8
  private final NDArray actScale; // (rows) float32
  private final NDArray update; // (rows, H) compute dtype: the last o or down projection, not yet in the stream
  private final IValue hiddenValue;
  private final IValue hiddenScaleValue;
  private final IValue attendedValue;
  private final IValue attendedScaleValue;
  private final IValue actValue;
  private final IValue actScaleValue;
  private final IValue updateValue;

  /**
   * Buffers for {@code rows} rows on {@code manager}'s device.
   *
   * @param owner where the IValues made here go; its owner closes them with the step
   */
  QuantizedRows(FusedDecode model, NDManager manager, List<IValue> owner, int rows) {
    this.model = model;
    this.config = model.config;
    this.hiddenValue = emptyFp8(owner, rows, config.hiddenSize());
    this.attendedValue = emptyFp8(owner, rows, attendedWidth(config));
    this.actValue = emptyFp8(owner, rows, config.intermediateSize());
    this.hidden = hiddenValue.toTensor((PtNDManager) manager);
    this.attended = attendedValue.toTensor((PtNDManager) manager);
    this.act = actValue.toTensor((PtNDManager) manager);
    this.hiddenScale = manager.zeros(new Shape(rows), DataType.FLOAT32);
    this.attendedScale = manager.zeros(new Shape(rows), DataType.FLOAT32);
    this.actScale = manager.zeros(new Shape(rows), DataType.FLOAT32);
    this.hiddenScaleValue = keep(owner, IValue.from((PtNDArray) hiddenScale));
    this.attendedScaleValue = keep(owner, IValue.from((PtNDArray) attendedScale));
    this.actScaleValue = keep(owner, IValue.from((PtNDArray) actScale));
    this.updateValue = keep(owner, model.call("empty", model.embedTokens, keep(owner, IValue.from((long) rows)),
        keep(owner, IValue.from((long) config.hiddenSize()))));
    this.update = updateValue.toTensor((PtNDManager) manager);
  }

  /**
   * x += update when {@code added}; out = RMSNorm(x) with {@code norm}, quantized by rows, @ weight^T + bias: the
   * q/k/v or gate/up projection.
   *
   * @param plan the step's launches (its {@code rmsNormFp8})
   * @param added whether an o or down projection's output waits in update (every norm but the first layer's input
   *     norm)
   * @param perStep where the op's result goes, closed after the step
   */
  void normThenProject(LaunchPlan plan, NDArray x, boolean added, long norm, IValue weight, IValue scale, IValue bias,
      IValue out, List<IValue> perStep) {
    model.rmsNormFp8.launch(plan.rmsNormFp8().grid(), plan.rmsNormFp8().block(), ptr(x), added ? ptr(update) : 0,
        norm, ptr(hidden), ptr(hiddenScale), config.hiddenSize(), config.hiddenSize(),
        CudaKernels.bits(config.rmsNormEps()));
    keep(perStep, model.call("project_quantized", hiddenValue, hiddenScaleValue, weight, scale, bias, out));
  }

  /**
   * update = attention output, quantized by rows, @ weight^T + bias: the o projection, added to the residual stream
   * by the next norm.
   *
   * @param plan the step's launches (its {@code quantizeFp8})
   * @param output the attention's (rows, N*D) output, contiguous
   */
  void attentionThenProject(LaunchPlan plan, NDArray output, IValue weight, IValue scale, IValue bias,
      List<IValue> perStep) {
    long width = attendedWidth(config);
    model.quantizeFp8.launch(plan.quantizeFp8().grid(), plan.quantizeFp8().block(), ptr(output), ptr(attended),
        ptr(attendedScale), width, width);
    keep(perStep, model.call("project_quantized", attendedValue, attendedScaleValue, weight, scale, bias,
        updateValue));
  }

  /**
   * update = silu(gate) * up, quantized by rows, @ weight^T + bias: the down projection, added to the residual stream
   * by the next norm (or {@link #addUpdate}).
   *
   * @param plan the step's launches (its {@code siluMulFp8})
   */
  void gateThenProject(LaunchPlan plan, NDArray gateUp, IValue weight, IValue scale, IValue bias,
      List<IValue> perStep) {
    model.siluMulFp8.launch(plan.siluMulFp8().grid(), plan.siluMulFp8().block(), ptr(gateUp), ptr(act), ptr(actScale),
        config.intermediateSize());
    keep(perStep, model.call("project_quantized", actValue, actScaleValue, weight, scale, bias, updateValue));
  }

  /** x += update: the last layer's down projection, before the final norm. */
  void addUpdate(IValue x, List<IValue> perStep) {
    keep(perStep, model.call("add_into", x, updateValue));
  }

  /**
   * Bytes a row holds: its normed, attended and gated inputs in float8, their float32 scales, and its update in the
   * 2-byte compute dtype.
   */
  static long bytesPerRow(ModelConfig c) {
    return c.hiddenSize() + attendedWidth(c) + c.intermediateSize() + 3L * Float.BYTES + 2L * c.hiddenSize();
  }

  private static int attendedWidth(ModelConfig c) {
    return c.numAttentionHeads() * c.headDim();
  }

  private IValue emptyFp8(List<IValue> owner, int rows, int cols) {
    return keep(owner, model.call("empty_fp8", model.embedTokens, keep(owner, IValue.from((long) rows)),
        keep(owner, IValue.from((long) cols))));
  }

  private static IValue keep(List<IValue> owner, IValue v) {
    owner.add(v);
    return v;
  }

  private static long ptr(NDArray a) {
    return CudaKernels.dataPtr(a);
  }
}
