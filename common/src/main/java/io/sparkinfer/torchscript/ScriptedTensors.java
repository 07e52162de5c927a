package io.sparkinfer.torchscript;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;

/**
 * Zeros, casts and row copies in any dtype, bfloat16 included. DJL 0.33's JNI aborts the JVM when it
 * creates or casts a bf16 tensor ({@code DataType.BFLOAT16} has no case in its dtype switch), so bf16
 * tensors are made by a tiny TorchScript module ({@code tensor_ops.py}); other dtypes go through DJL
 * directly. DJL ops read the bf16 tensors made here, but DJL reports their dtype as {@code UNKNOWN}: code
 * holding them keeps the dtype it asked for itself. They are inference tensors (DJL runs modules in
 * inference mode), so in-place copies into them go through {@link #copyRows} as well.
 */
public final class ScriptedTensors {

  static final String SOURCE = "/io/sparkinfer/torchscript/tensor_ops.py";
  private static final long OP_CAST = 0;
  private static final long OP_ZEROS = 1;
  private static final long OP_COPY_ROWS = 2;
  private static final long OP_FP8_ROW_SCALES = 3;
  private static final long OP_FP8_QUANTIZE = 4;
  private static final long OP_WIDEN_FLOAT8 = 5;

  private static volatile Module module;

  private ScriptedTensors() {}

  /** A zero tensor of {@code shape} and {@code dataType} on {@code manager}'s device, attached to it. */
  public static NDArray zeros(NDManager manager, Shape shape, DataType dataType) {
    if (dataType != DataType.BFLOAT16) {
      return manager.zeros(shape, dataType);
    }
    try (NDManager scope = manager.newSubManager()) {
      NDArray like = scope.zeros(new Shape(1), DataType.FLOAT32); // where the result goes
      return module().call(OP_ZEROS, like, like, like, dataType, 0, shape.getShape(), manager);
    }
  }

  /**
   * In place: {@code dst[rows, :length] = src[:, :length]}, for (B, C, ...) tensors such as a KV cache layer.
   *
   * @param rows (R) int64: the rows of {@code dst} that the R rows of {@code src} go to
   */
  public static void copyRows(NDArray dst, NDArray rows, int length, NDArray src) {
    module().call(OP_COPY_ROWS, dst, src, rows, DataType.FLOAT32, length, new long[0], dst.getManager()).close();
  }

  /**
   * {@code array} cast to {@code dataType}, a new tensor attached to {@code array}'s manager. Casts to or
   * from bf16 (which DJL reports as {@code UNKNOWN}) run in the script.
   */
  public static NDArray cast(NDArray array, DataType dataType) {
    if (dataType != DataType.BFLOAT16 && array.getDataType() != DataType.UNKNOWN) {
      return array.toType(dataType, true);
    }
    return module().call(OP_CAST, array, array, array, dataType, 0, new long[0], array.getManager());
  }

  /**
   * A (out, in) weight as float8 e4m3 with a float32 scale per row (output channel): {q, scale}, q (out, in) with
   * {@code weight[r] ~ q[r] * scale[r]}, scale (1, out) = max|weight[r]| / 448 (e4m3's largest finite value), both
   * attached to {@code into}. DJL reports q's dtype as {@code UNKNOWN}; only TorchScript reads it.
   */
  public static NDArray[] quantizeFp8Rows(NDArray weight, NDManager into) {
    NDArray scale = module().call(OP_FP8_ROW_SCALES, weight, weight, weight, DataType.FLOAT32, 0, new long[0], into);
    NDArray q = module().call(OP_FP8_QUANTIZE, weight, scale, weight, DataType.FLOAT32, 0, new long[0], into);
    return new NDArray[] {q, scale};
  }

  /**
   * {@code tensor} in float8 e4m3 with one scale for the whole tensor, max|tensor| / 448: returns the float8 tensor
   * and its (1, 1) float32 scale ({@code torch._scaled_mm}'s tensor-wise scaling).
   */
  public static NDArray[] quantizeFp8Tensor(NDArray tensor, NDManager into) {
    try (NDArray rowScales = module().call(OP_FP8_ROW_SCALES, tensor, tensor, tensor, DataType.FLOAT32, 0,
        new long[0], into)) { // (1, rows)
      NDArray scale = rowScales.max().reshape(1, 1);
      scale.attach(into);
      NDArray q = module().call(OP_FP8_QUANTIZE, tensor, scale, tensor, DataType.FLOAT32, 0, new long[0], into);
      return new NDArray[] {q, scale};
    }
  }

  /**
   * Float8 e4m3 values held as uint8 bytes (a float8 KV cache, {@code io.sparkinfer.backend.KvCache#float8()}) as
   * {@code dataType} values, a new tensor attached to {@code bytes}' manager.
   */
  public static NDArray widenFloat8(NDArray bytes, DataType dataType) {
    if (bytes.getDataType() != DataType.UINT8) {
      throw new IllegalArgumentException("float8 bytes are uint8, not " + bytes.getDataType());
    }
    return module().call(OP_WIDEN_FLOAT8, bytes, bytes, bytes, dataType, 0, new long[0], bytes.getManager());
  }

  /** libtorch's ScalarType number for the dtypes the engine computes in. */
  static long scalarType(DataType dataType) {
    switch (dataType) {
      case FLOAT16:
        return 5;
      case FLOAT32:
        return 6;
      case BFLOAT16:
        return 15;
      default:
        throw new IllegalArgumentException("no scripted tensors of " + dataType);
    }
  }

  private static Module module() {
    Module m = module;
    if (m == null) {
      synchronized (ScriptedTensors.class) {
        m = module;
        if (m == null) {
          m = new Module();
          module = m;
        }
      }
    }
    return m;
  }

  /** The loaded module, kept for the JVM's life (it holds no tensors). */
  private static final class Module {
    private final PtSymbolBlock block;

    Module() {
      PtNDManager manager = (PtNDManager) NDManager.newBaseManager(ai.djl.Device.cpu());
      this.block = TorchScriptArchive.load(manager, "TensorOps", SOURCE);
    }

    NDArray call(long op, NDArray a, NDArray b, NDArray rows, DataType dataType, long length, long[] shape, NDManager into) {
      try (IValue ia = IValue.from((PtNDArray) a);
          IValue ib = IValue.from((PtNDArray) b);
          IValue ir = IValue.from((PtNDArray) rows);
          IValue iop = IValue.from(op);
          IValue idtype = IValue.from(scalarType(dataType));
          IValue ilength = IValue.from(length);
          IValue ishape = IValue.listFrom(shape);
          IValue out = block.forward(new IValue[] {ia, ib, ir, iop, idtype, ilength, ishape})) {
        return out.toTensor((PtNDManager) into);
      }
    }
  }
}
