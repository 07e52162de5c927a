package io.sparkinfer.safetensors;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.util.stream.IntStream;

/**
 * Turns safetensors tensors into DJL arrays of the compute precision, reading each byte once.
 *
 * <p>F32 and F16 bytes are handed to libtorch straight from the memory mapping (no copy on CPU; one
 * host-to-device copy on GPU). BF16 is widened to F32 on the way (DJL's JNI cannot hold bf16 tensors):
 * a bf16 value is the top half of the float32 with the same bits, so the conversion is a 16-bit shift.
 * Tensors over {@link #CHUNK_BYTES} are read in row blocks and joined on the device.
 */
public final class TensorLoader {

  /**
   * Largest block mapped at once (a mapping is limited to 2 GiB). A BF16 block maps half as many bytes: its
   * widened float32 copy is twice its size, and that copy's byte count must fit an int.
   */
  static final long CHUNK_BYTES = 1L << 30;

  private TensorLoader() {}

  /**
   * Loads a tensor as {@code target} (FLOAT32 or FLOAT16) on the manager's device.
   *
   * @throws SafetensorsException if the tensor's dtype is not a float type the engine computes with
   * @throws IllegalArgumentException if {@code target} is neither FLOAT32 nor FLOAT16
   */
  public static NDArray load(TensorInfo info, NDManager manager, DataType target) {
    return load(info, manager, target, CHUNK_BYTES);
  }

  /**
   * {@link #load(TensorInfo, NDManager, DataType)} with blocks of at most {@code chunkBytes} (half that for
   * BF16, see {@link #CHUNK_BYTES}); tests pass small values to reach the chunked path.
   */
  static NDArray load(TensorInfo info, NDManager manager, DataType target, long chunkBytes) {
    if (!info.dtype().isLoadableFloat()) {
      throw new SafetensorsException("tensor '" + info.name() + "' has dtype " + info.dtype()
          + "; weights must be F32, F16 or BF16");
    }
    if (target != null && target != DataType.FLOAT32 && target != DataType.FLOAT16) {
      // DJL's JNI aborts the whole JVM on a cast to BFLOAT16: refuse any other target here.
      throw new IllegalArgumentException("target dtype " + target + " is not supported (supported: float32, float16)");
    }
    long budget = info.dtype() == SafetensorsDtype.BF16 && target != null ? chunkBytes / 2 : chunkBytes;
    long[] shape = info.shape();
    long rowBytes = shape.length == 0 ? info.byteLength() : info.byteLength() / Math.max(shape[0], 1);
    if (info.byteLength() <= budget || shape.length == 0 || rowBytes > budget) {
      return loadRange(info, manager, target, 0, shape.length == 0 ? 1 : shape[0]);
    }
    long rowsPerChunk = budget / rowBytes;
    try (NDList parts = new NDList()) {
      for (long row = 0; row < shape[0]; row += rowsPerChunk) {
        parts.add(loadRange(info, manager, target, row, Math.min(rowsPerChunk, shape[0] - row)));
      }
      return NDArrays.concat(parts, 0);
    }
  }

  /**
   * Loads a BF16 tensor's bits unchanged, carried in a FLOAT16 array of its shape on the manager's device (DJL cannot
   * make bf16 arrays): 2 bytes a value copied straight from the memory mapping, nothing converted on the host. Its
   * values are not float16 ones; reinterpret them on the device ({@code ScriptedTensors.fromBf16Bits}).
   *
   * @throws IllegalArgumentException if the tensor is not BF16
   */
  public static NDArray loadBf16Bits(TensorInfo info, NDManager manager) {
    if (info.dtype() != SafetensorsDtype.BF16) {
      throw new IllegalArgumentException("tensor '" + info.name() + "' is " + info.dtype() + ", not BF16");
    }
    return load(info, manager, null, CHUNK_BYTES);
  }

  /** Loads rows {@code [firstRow, firstRow + rows)} of dimension 0; a null target keeps BF16's bits (see above). */
  private static NDArray loadRange(TensorInfo info, NDManager manager, DataType target, long firstRow, long rows) {
    long[] shape = info.shape();
    long[] partShape = shape.clone();
    long rowElements = 1;
    for (int i = 1; i < shape.length; i++) {
      rowElements *= shape[i];
    }
    if (shape.length > 0) {
      partShape[0] = rows;
    }
    long elements = shape.length == 0 ? 1 : rows * rowElements;
    int width = info.dtype().bytes();
    ByteBuffer bytes = SafetensorsFile.map(info, firstRow * rowElements * width, elements * width);
    Shape ndShape = new Shape(partShape);
    NDArray loaded;
    switch (info.dtype()) {
      case F32 -> loaded = manager.create(bytes, ndShape, DataType.FLOAT32);
      case F16 -> loaded = manager.create(bytes, ndShape, DataType.FLOAT16);
      case BF16 -> loaded = target == null ? manager.create(bytes, ndShape, DataType.FLOAT16) // the bits, carried
          : manager.create(bf16ToF32(bytes), ndShape, DataType.FLOAT32);
      default -> throw new IllegalStateException("unreachable: " + info.dtype());
    }
    if (target == null || loaded.getDataType() == target) {
      return loaded;
    }
    try (NDArray source = loaded) {
      return source.toType(target, false);
    }
  }

  /** Widens little-endian bf16 values to float32 in a new direct buffer. */
  static ByteBuffer bf16ToF32(ByteBuffer bf16) {
    int n = bf16.remaining() / 2;
    ByteBuffer out = ByteBuffer.allocateDirect(Math.multiplyExact(n, 4)).order(ByteOrder.nativeOrder());
    ShortBuffer in = bf16.duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    IntBuffer dst = out.asIntBuffer();
    int block = 1 << 20;
    int blocks = (n + block - 1) / block;
    IntStream.range(0, blocks).parallel().forEach(b -> {
      int end = Math.min(n, (b + 1) * block);
      for (int i = b * block; i < end; i++) {
        dst.put(i, (in.get(i) & 0xFFFF) << 16);
      }
    });
    return out;
  }
}
