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
  private final IValue hiddenValue;
  private final IValue hiddenScaleValue;
  private final IValue attendedValue;
  private final IValue attendedScaleValue;
  private final IValue actValue;
  private final IValue actScaleValue;

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
  }

  /**
   * out = RMSNorm(x) with {@code norm}, quantized by rows, @ weight^T + bias: the q/k/v or gate/up projection.
   *
   * @param rowBlocks a block per row (the plan's {@code rmsNorm})
   * @param perStep where the op's result goes, closed after the step
   */
  void normThenProject(LaunchPlan.Dims rowBlocks, NDArray x, long norm, IValue weight, IValue scale, IValue bias,
      IValue out, List<IValue> perStep) {
    model.rmsNormFp8.launch(rowBlocks.grid(), rowBlocks.block(), ptr(x), norm, ptr(hidden), ptr(hiddenScale),
        config.hiddenSize(), config.hiddenSize(), CudaKernels.bits(config.rmsNormEps()));
    keep(perStep, model.call("project_quantized", hiddenValue, hiddenScaleValue, weight, scale, bias, out));
  }

  /**
   * x += attention output, quantized by rows, @ weight^T + bias: the o projection added to the residual stream.
   *
   * @param rowBlocks a block per row (the plan's {@code rmsNorm})
   * @param output the attention's (rows, N*D) output, contiguous
   */
  void attentionThenAddProjection(LaunchPlan.Dims rowBlocks, NDArray output, IValue x, IValue weight, IValue scale,
      IValue bias, List<IValue> perStep) {
    long width = attendedWidth(config);
    model.quantizeFp8.launch(rowBlocks.grid(), rowBlocks.block(), ptr(output), ptr(attended), ptr(attendedScale),
        width, width);
    keep(perStep, model.call("add_projection_quantized", attendedValue, attendedScaleValue, x, weight, scale, bias));
  }

  /** Float8 bytes and float32 scales a row holds: its normed, attended and gated inputs. */
  static long bytesPerRow(ModelConfig c) {
    return c.hiddenSize() + attendedWidth(c) + c.intermediateSize() + 3L * Float.BYTES;
  }

  private static int attendedWidth(ModelConfig c) {
    return c.numAttentionHeads() * c.headDim();
  }

  /**
   * x += silu(gate) * up, quantized by rows, @ weight^T + bias: the down projection added to the residual stream.
   *
   * @param rowBlocks a block per row (the plan's {@code rmsNorm})
   */
  void gateThenAddProjection(LaunchPlan.Dims rowBlocks, NDArray gateUp, IValue x, IValue weight, IValue scale,
      IValue bias, List<IValue> perStep) {
    model.siluMulFp8.launch(rowBlocks.grid(), rowBlocks.block(), ptr(gateUp), ptr(act), ptr(actScale),
        config.intermediateSize());
    keep(perStep, model.call("add_projection_quantized", actValue, actScaleValue, x, weight, scale, bias));
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
