package io.sparkinfer.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkinfer.model.ForwardBatch;
import java.nio.LongBuffer;

/**
 * The fixed input tensors that captured decode graphs read: each step's token ids and positions are
 * written into the same device memory, with one host-to-device copy of both.
 */
final class DecodeInputs {

  private static final NDIndex ALL = new NDIndex(":");

  private final NDArray packed; // (2, B) int64: token ids, then positions
  private final LongBuffer staged; // the same (2, B) on the host
  private final NDArray inputIds; // (B, 1) view of packed
  private final NDArray positions; // (B, 1) view of packed
  private final NDArray lastIndex; // (B) zeros: decode rows have one token

  DecodeInputs(NDManager manager, int batchSize) {
    this.packed = manager.zeros(new Shape(2, batchSize), DataType.INT64);
    this.staged = LongBuffer.allocate(2 * batchSize);
    this.inputIds = packed.get(0).reshape(batchSize, 1); // (2, B) -> (B) -> (B, 1), views of packed
    this.positions = packed.get(1).reshape(batchSize, 1);
    this.lastIndex = manager.zeros(new Shape(batchSize), DataType.INT64);
  }

  /**
   * Writes a step's inputs in place: one copy to the device, then a copy into the fixed tensor.
   * ({@code NDArray.set(Buffer)} would give the array new storage, which a captured graph never sees.)
   *
   * @param scope owns the temporary device copy
   */
  void write(NDManager scope, long[] tokenIds, long[] tokenPositions) {
    staged.clear();
    staged.put(tokenIds).put(tokenPositions).flip();
    packed.set(ALL, scope.create(staged, packed.getShape(), DataType.INT64));
  }

  /** A decode batch over the fixed tensors, reading {@code keyLength} cache slots. */
  ForwardBatch batch(int keyLength) {
    return new ForwardBatch(inputIds, positions, lastIndex, keyLength);
  }
}
